//! The credential-id allowlist every store enforces.

use crate::{Error, Result};

/// The longest credential id.
pub const MAX_ID_LEN: usize = 200;

/// A byte an id may hold.
const ALLOWED: u8 = 1;
/// A byte a segment may not start with (`/` or `.`).
const NOT_FIRST: u8 = 2;
/// The separator, after which a segment starts.
const SEPARATOR: u8 = 4;

/// What each byte is, looked up once per byte (ids are checked on every miss and write).
const CLASSES: [u8; 256] = {
    let mut classes = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/') {
            classes[byte] |= ALLOWED;
        }
        if matches!(b, b'.' | b'/') {
            classes[byte] |= NOT_FIRST;
        }
        if b == b'/' {
            classes[byte] |= SEPARATOR;
        }
        byte += 1;
    }
    classes
};

/// Checks a credential id against the allowlist: 1 to [`MAX_ID_LEN`] bytes of `A-Z a-z 0-9 _ - .
/// /`, made of `/`-separated segments that are neither empty, nor `.` or `..`, nor start with
/// `.`. No traversal, no NUL, no hidden files.
///
/// ```
/// assert!(credential::check_id("github/main").is_ok());
/// assert!(credential::check_id("../etc/passwd").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidId`] saying what is wrong (the id itself is shown escaped and truncated).
pub fn check_id(id: &str) -> Result<()> {
    let invalid = |reason: &'static str| {
        Err(Error::InvalidId {
            id: id.chars().take(64).flat_map(char::escape_debug).collect(),
            reason,
        })
    };
    if id.is_empty() {
        return invalid("is empty");
    }
    if id.len() > MAX_ID_LEN {
        return invalid("is longer than 200 bytes");
    }
    // One pass without branches; the reason is looked for only once the id failed. A segment
    // starts at the start of the id and after each `/`.
    let (mut disallowed, mut bad_start, mut at_start) = (0, 0, SEPARATOR);
    for byte in id.bytes() {
        let class = CLASSES[usize::from(byte)];
        disallowed |= !class & ALLOWED;
        bad_start |= at_start & (class << 1);
        at_start = class & SEPARATOR;
    }
    if disallowed != 0 {
        return invalid("may only contain A-Z, a-z, 0-9, `_`, `-`, `.` and `/`");
    }
    if bad_start != 0 || at_start != 0 {
        return invalid("has an empty segment or one starting with `.`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_pass() {
        for id in ["a", "github/main", "prod/db.primary", "A-b_c/1.2.3", &"x".repeat(MAX_ID_LEN)] {
            check_id(id).unwrap();
        }
    }

    #[test]
    fn hostile_ids_fail() {
        for id in [
            "",
            "/abs",
            "trailing/",
            "a//b",
            "..",
            "../x",
            "a/../b",
            ".hidden",
            "a/.b",
            "nul\0",
            "back\\slash",
            "space d",
            "ünïcode",
            "new\nline",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(check_id(id).is_err(), "{id:?} accepted");
        }
    }
}
