//! Master-key identifiers, derived from the key itself.

use std::fmt;

/// Identifies a master key: 16 hex characters derived from the key (the first 8 bytes of AES-256
/// applied to a fixed block). The same key always has the same id, so an id doubles as a key
/// check value: a ring that does not hold the id recorded beside the data holds the wrong key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The longest id an envelope may carry.
    pub const MAX_LEN: usize = 64;

    pub(crate) fn from_check_block(block: &[u8]) -> Self {
        let mut hex = String::with_capacity(16);
        for byte in &block[..8] {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0x0f)]));
        }
        Self(hex)
    }

    /// Parses an id read from stored data.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`](crate::Error::InvalidKeyId) unless it is 1 to 64 characters of
    /// `a-z`, `0-9` and `-`.
    pub fn parse(text: &str) -> crate::Result<Self> {
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if valid { Ok(Self(text.to_owned())) } else { Err(crate::Error::InvalidKeyId) }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_derived_ids_and_refuses_hostile_ones() {
        assert!(KeyId::parse("0123456789abcdef").is_ok());
        for hostile in ["", "../etc", "A", "a b", &"a".repeat(65), "k\0"] {
            assert!(KeyId::parse(hostile).is_err(), "{hostile:?}");
        }
    }
}
