//! Bounds on what callers put into audit events, so no input can make an event too large to
//! write or a trail too large to read.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::Error;

/// The longest principal name recorded as it is.
pub const MAX_AUDIT_PRINCIPAL_LEN: usize = 256;
/// The longest reason recorded as it is.
pub const MAX_AUDIT_REASON_LEN: usize = 1024;

/// The credential field of an event about `id`: the id itself once it passed its check, else
/// the escaped, truncated form its check error carries.
pub(crate) fn credential(id: &str, error: Option<&Error>) -> Arc<str> {
    match error {
        Some(Error::InvalidId { id: escaped, .. }) => Arc::from(escaped.as_str()),
        _ => Arc::from(id),
    }
}

/// The principal's name; a longer one is cut and tagged with a digest of the whole, so two long
/// names stay apart.
pub(crate) fn principal(name: &Arc<str>) -> Arc<str> {
    if name.len() <= MAX_AUDIT_PRINCIPAL_LEN {
        return Arc::clone(name);
    }
    let digest = Sha256::digest(name.as_bytes());
    let tag = base16ct::lower::encode_string(&digest[..8]);
    let kept = MAX_AUDIT_PRINCIPAL_LEN - tag.len() - 4;
    Arc::from(format!("{}…#{tag}", prefix(name, kept)))
}

/// The reason, cut to [`MAX_AUDIT_REASON_LEN`] bytes with a marker.
pub(crate) fn reason(reason: &str) -> String {
    if reason.len() <= MAX_AUDIT_REASON_LEN {
        return reason.to_owned();
    }
    format!("{}… (cut from {} bytes)", prefix(reason, MAX_AUDIT_REASON_LEN - 32), reason.len())
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_are_cut_on_character_boundaries() {
        let long = "é".repeat(5_000);
        let cut = reason(&long);
        assert!(cut.len() <= MAX_AUDIT_REASON_LEN);
        assert!(cut.ends_with("(cut from 10000 bytes)"));
        let name = principal(&Arc::from(long.as_str()));
        assert!(name.len() <= MAX_AUDIT_PRINCIPAL_LEN);
        let other = principal(&Arc::from(format!("{long}x")));
        assert_ne!(name, other, "distinct long names stay distinct");
        assert_eq!(&*principal(&Arc::from("ops")), "ops");
    }
}
