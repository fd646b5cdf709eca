//! The credential-id allowlist every store enforces.

use crate::{Error, Result};

/// The longest credential id.
pub const MAX_ID_LEN: usize = 200;

/// Checks a credential id against the allowlist: 1 to [`MAX_ID_LEN`] bytes of `A-Z a-z 0-9 _ - .
/// /`, made of `/`-separated segments that are neither empty, nor `.` or `..`, nor start with
/// `.`. No traversal, no NUL, no hidden files.
///
/// ```
/// assert!(credential::store::check_id("github/main").is_ok());
/// assert!(credential::store::check_id("../etc/passwd").is_err());
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
    // One pass: a segment starts at the start and after each `/`; it may not be empty nor start
    // with `.` (which also rules out `.`, `..` and hidden files). A byte outside the allowlist is
    // reported before a bad segment.
    let (mut bad_byte, mut bad_segment, mut at_segment_start) = (false, false, true);
    for byte in id.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => at_segment_start = false,
            b'.' => {
                bad_segment |= at_segment_start;
                at_segment_start = false;
            }
            b'/' => {
                bad_segment |= at_segment_start;
                at_segment_start = true;
            }
            _ => bad_byte = true,
        }
    }
    if bad_byte {
        return invalid("may only contain A-Z, a-z, 0-9, `_`, `-`, `.` and `/`");
    }
    if bad_segment || at_segment_start {
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

    /// The allowlist as a regular expression, written apart from the check it verifies.
    #[cfg(feature = "pattern")]
    fn allowed_by_the_grammar(id: &str) -> bool {
        let segment = "[A-Za-z0-9_-][A-Za-z0-9_.-]*";
        let grammar = regex::Regex::new(&format!("^{segment}(/{segment})*$")).unwrap();
        id.len() <= MAX_ID_LEN && grammar.is_match(id)
    }

    #[cfg(feature = "pattern")]
    proptest::proptest! {
        #[test]
        fn the_check_accepts_exactly_what_the_grammar_allows(
            id in "[a/.Z0_\\-]{0,12}|[a/.\\x00 ü\\\\]{0,6}|[a-z/.]{195,205}"
        ) {
            proptest::prop_assert_eq!(check_id(&id).is_ok(), allowed_by_the_grammar(&id), "{:?}", id);
        }
    }
}
