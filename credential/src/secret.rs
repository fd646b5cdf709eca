//! Secret fields: the types allowed under `#[secret]` and how they are shown (never in full).

use std::fmt;

use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::field::FieldCodec;

mod sealed {
    pub trait Sealed {}
    impl Sealed for secrecy::SecretString {}
    impl Sealed for secrecy::SecretSlice<u8> {}
    impl<T: Sealed> Sealed for Option<T> {}
}

/// The types a `#[secret]` field may have: [`SecretString`], [`SecretSlice<u8>`] and `Option` of
/// either. They redact themselves in `Debug`, have no `Display`, and wipe their memory on drop.
///
/// Sealed: a type outside this crate cannot promise that, so it cannot be a secret field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a secret type",
    label = "`#[secret]` needs a secret type here",
    note = "use `SecretString` for text and `SecretSlice<u8>` for bytes (or an `Option` of either): they are redacted and zeroized on drop"
)]
pub trait SecretField: FieldCodec + sealed::Sealed {
    /// A borrowed view of the secret that reveals nothing until exposed.
    fn secret_value(&self) -> SecretValue<'_>;
}

impl SecretField for SecretString {
    fn secret_value(&self) -> SecretValue<'_> {
        SecretValue::Text(self)
    }
}

impl SecretField for SecretSlice<u8> {
    fn secret_value(&self) -> SecretValue<'_> {
        SecretValue::Bytes(self)
    }
}

impl<T: SecretField> SecretField for Option<T> {
    fn secret_value(&self) -> SecretValue<'_> {
        self.as_ref().map_or(SecretValue::Absent, SecretField::secret_value)
    }
}

/// A borrowed secret field value. Reading it takes an explicit
/// [`expose_secret`](crate::ExposeSecret::expose_secret).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SecretValue<'a> {
    /// Secret text.
    Text(&'a SecretString),
    /// Secret bytes.
    Bytes(&'a SecretSlice<u8>),
    /// An optional secret that is not set.
    Absent,
}

/// How much of a secret its redacted form may hint at (`#[secret(reveal_first = N)]`,
/// `#[secret(reveal_last = N)]`).
///
/// A hint is shown only for text secrets at least four times as long as the characters it
/// reveals, so it never gives away more than a quarter of the secret; otherwise the value is
/// shown as `[REDACTED]`. The hidden part is always printed as `****`, whatever its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mask {
    /// Leading characters shown.
    pub reveal_first: u8,
    /// Trailing characters shown.
    pub reveal_last: u8,
}

impl Mask {
    /// No hint: the value is always `[REDACTED]`.
    pub const NONE: Self = Self { reveal_first: 0, reveal_last: 0 };

    const REVEAL_AT_MOST_ONE_IN: usize = 4;
}

/// The text shown in place of every secret.
pub const REDACTED: &str = "[REDACTED]";

/// A secret field as shown in `Debug` and redacted views: `[REDACTED]`, a masked hint such as
/// `****abcd`, or `None` for an absent optional secret.
pub struct RedactedSecret<'a> {
    value: SecretValue<'a>,
    mask: Mask,
}

impl<'a> RedactedSecret<'a> {
    /// The redacted form of `value` under `mask`.
    pub fn new(value: SecretValue<'a>, mask: Mask) -> Self {
        Self { value, mask }
    }

    /// Whether the secret is absent (an unset optional secret).
    pub fn is_absent(&self) -> bool {
        matches!(self.value, SecretValue::Absent)
    }

    fn write_hint(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SecretValue::Text(secret) = self.value else {
            return f.write_str(REDACTED);
        };
        let text = secret.expose_secret();
        let first = usize::from(self.mask.reveal_first);
        let last = usize::from(self.mask.reveal_last);
        let revealed = first + last;
        let total = text.chars().count();
        if revealed == 0 || total < revealed * Mask::REVEAL_AT_MOST_ONE_IN {
            return f.write_str(REDACTED);
        }
        for ch in text.chars().take(first) {
            fmt::Write::write_char(f, ch)?;
        }
        f.write_str("****")?;
        for ch in text.chars().skip(total - last) {
            fmt::Write::write_char(f, ch)?;
        }
        Ok(())
    }
}

impl fmt::Display for RedactedSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_absent() {
            return f.write_str("none");
        }
        self.write_hint(f)
    }
}

impl fmt::Debug for RedactedSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_absent() {
            return f.write_str("None");
        }
        self.write_hint(f)
    }
}

impl serde::Serialize for RedactedSecret<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_absent() {
            return serializer.serialize_none();
        }
        serializer.collect_str(&format_args!("{self}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(secret: &str, mask: Mask) -> String {
        let secret = SecretString::from(secret);
        RedactedSecret::new(secret.secret_value(), mask).to_string()
    }

    #[test]
    fn unmasked_secret_is_redacted() {
        assert_eq!(shown("hunter2-hunter2", Mask::NONE), REDACTED);
    }

    #[test]
    fn reveal_last_shows_only_the_tail() {
        let mask = Mask { reveal_first: 0, reveal_last: 4 };
        assert_eq!(shown("sk_live_0123456789abcd", mask), "****abcd");
    }

    #[test]
    fn reveal_first_and_last_count_characters_not_bytes() {
        let mask = Mask { reveal_first: 2, reveal_last: 2 };
        assert_eq!(shown("ééabcdefghijklmnopqrstuvwxyz✓✓", mask), "éé****✓✓");
    }

    #[test]
    fn short_secret_never_reveals_more_than_a_quarter() {
        let mask = Mask { reveal_first: 0, reveal_last: 4 };
        assert_eq!(shown("abcdefghijklmno", mask), REDACTED);
        assert_eq!(shown("abcdefghijklmnop", mask), "****mnop");
    }

    #[test]
    fn byte_secrets_never_show_a_hint() {
        let secret = SecretSlice::from(vec![1u8; 64]);
        let mask = Mask { reveal_first: 1, reveal_last: 1 };
        assert_eq!(RedactedSecret::new(secret.secret_value(), mask).to_string(), REDACTED);
    }

    #[test]
    fn absent_optional_secret_shows_none() {
        let secret: Option<SecretString> = None;
        assert_eq!(format!("{:?}", RedactedSecret::new(secret.secret_value(), Mask::NONE)), "None");
    }
}
