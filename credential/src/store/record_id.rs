//! The credential-id allowlist every store enforces.

use crate::{Error, Result};

/// The longest credential id.
pub const MAX_ID_LEN: usize = 200;

/// The bytes an id may hold, looked up once per byte (ids are checked on every miss and write).
const ALLOWED: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        allowed[byte] = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/');
        byte += 1;
    }
    allowed
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
    // One pass: `previous` is the byte before, `/` at the start of the id.
    let mut previous = b'/';
    for byte in id.bytes() {
        if !ALLOWED[usize::from(byte)] {
            return invalid("may only contain A-Z, a-z, 0-9, `_`, `-`, `.` and `/`");
        }
        if previous == b'/' && matches!(byte, b'/' | b'.') {
            return invalid("has an empty segment or one starting with `.`");
        }
        previous = byte;
    }
    if previous == b'/' {
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
