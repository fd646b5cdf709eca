//! The credential-id allowlist every store enforces.

use crate::{Error, Result};

/// The longest credential id.
pub const MAX_ID_LEN: usize = 200;

/// After a byte: the next one starts a segment.
const AT_START: u8 = 1;
/// The byte breaks a rule.
const BAD: u8 = 2;

/// What each byte does, looked up once per byte (ids are checked on every miss and write): the
/// first 256 entries for a byte inside a segment, the next 256 for a byte that starts one. A byte
/// outside `A-Z a-z 0-9 _ - . /` is bad anywhere, `/` and `.` are bad at a segment's start, and a
/// segment starts after each `/`.
const TRANSITIONS: [u8; 512] = {
    let mut transitions = [0; 512];
    let mut index = 0;
    while index < 512 {
        let byte = (index % 256) as u8;
        let starts_segment = index >= 256;
        let allowed = byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b'/');
        if !allowed || (starts_segment && matches!(byte, b'.' | b'/')) {
            transitions[index] |= BAD;
        }
        if byte == b'/' {
            transitions[index] |= AT_START;
        }
        index += 1;
    }
    transitions
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
    // One pass without branches, a lookup per byte; the reason is looked for only once the id
    // failed. A segment starts at the start of the id and after each `/`.
    let (mut bad, mut at_start) = (0, AT_START);
    for byte in id.bytes() {
        let transition = TRANSITIONS[(usize::from(at_start) << 8) | usize::from(byte)];
        bad |= transition;
        at_start = transition & AT_START;
    }
    let bad = bad & BAD != 0;
    if bad && id.bytes().any(|byte| TRANSITIONS[usize::from(byte)] & BAD != 0) {
        return invalid("may only contain A-Z, a-z, 0-9, `_`, `-`, `.` and `/`");
    }
    if bad || at_start != 0 {
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

    #[test]
    fn a_failure_says_which_rule_it_broke() {
        let reason = |id: &str| match check_id(id) {
            Err(Error::InvalidId { reason, .. }) => reason,
            other => panic!("{id:?}: {other:?}"),
        };
        for id in ["a b", ".a b", "a/ü", "/a\\b", "x\0"] {
            assert!(reason(id).starts_with("may only contain"), "{id:?}");
        }
        for id in ["/a", "a/", "a//b", ".a", "a/.b", "a/..", "/"] {
            assert!(reason(id).starts_with("has an empty segment"), "{id:?}");
        }
        assert_eq!(reason(""), "is empty");
    }
}
