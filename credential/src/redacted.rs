//! The redacted view of a credential: safe to print, log and serialize.

use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::Credential;
use crate::credential::RedactedField;

/// A credential with every secret replaced by `[REDACTED]` (or its masked hint).
///
/// `Display` and `Debug` print `kind { field: value, ... }` with stored field names; `Serialize`
/// writes a map of stored field names to values.
///
/// ```
/// use credential::prelude::*;
///
/// #[derive(Credential)]
/// struct Smtp {
///     host: String,
///     #[secret(reveal_last = 2)]
///     password: SecretString,
/// }
///
/// let smtp = Smtp { host: "mail.example.com".into(), password: "correct-horse-battery".into() };
/// assert_eq!(smtp.redacted().to_string(), "smtp { host: mail.example.com, password: ****ry }");
/// ```
pub struct Redacted<'a, C> {
    credential: &'a C,
}

impl<'a, C: Credential> Redacted<'a, C> {
    pub(crate) fn new(credential: &'a C) -> Self {
        Self { credential }
    }
}

impl<C: Credential> fmt::Display for Redacted<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {{", C::KIND)?;
        for (index, (schema, value)) in self.credential.fields().enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            write!(f, "{separator}{}: ", schema.name)?;
            match value.redacted() {
                RedactedField::Secret(secret) => fmt::Display::fmt(&secret, f)?,
                RedactedField::Plain(plain) => fmt::Display::fmt(plain, f)?,
            }
        }
        f.write_str(" }")
    }
}

impl<C: Credential> fmt::Debug for Redacted<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<C: Credential> Serialize for Redacted<'_, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(C::FIELDS.len()))?;
        for (schema, value) in self.credential.fields() {
            match value.redacted() {
                RedactedField::Secret(secret) => map.serialize_entry(schema.name, &secret)?,
                RedactedField::Plain(plain) => map.serialize_entry(schema.name, plain)?,
            }
        }
        map.end()
    }
}
