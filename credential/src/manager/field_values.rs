//! Credentials built from field values given as text, for operators who do not have the Rust
//! type: each value is written straight into the storage encoding by its field's codec, then
//! decoded and validated as the type would be.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::{Credential, Error, Result};

/// One field's value as text. Secret fields take [`FieldInput::Secret`] and plain fields
/// [`FieldInput::Plain`]; a mix-up is refused, so a secret never travels as a plain `String`.
#[derive(Debug)]
#[non_exhaustive]
pub enum FieldInput {
    /// A plain field's value.
    Plain(String),
    /// A secret field's value.
    Secret(SecretString),
}

/// Field values by stored field name, to create or rotate a credential of a registered kind
/// without its Rust type ([`Manager::create_dyn`](crate::Manager::create_dyn),
/// [`DynManaged::rotate`](crate::DynManaged::rotate)).
///
/// Text spells values the way people write them: numbers and `true`/`false` as usual, times in
/// RFC 3339, bytes in standard base64, URLs absolute. A field left out takes its default
/// (`None` for an `Option`), or is reported missing.
///
/// ```
/// use credential::FieldValues;
///
/// let values = FieldValues::new().secret("token", "ghp_example".into()).plain("username", "octocat");
/// assert_eq!(values.len(), 2);
/// assert!(!format!("{values:?}").contains("ghp_example"));
/// ```
#[derive(Debug, Default)]
pub struct FieldValues {
    values: BTreeMap<String, FieldInput>,
}

impl FieldValues {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets plain field `name` to `value`.
    pub fn plain(mut self, name: &str, value: &str) -> Self {
        self.values.insert(name.to_owned(), FieldInput::Plain(value.to_owned()));
        self
    }

    /// Sets secret field `name` to `value`.
    pub fn secret(mut self, name: &str, value: SecretString) -> Self {
        self.values.insert(name.to_owned(), FieldInput::Secret(value));
        self
    }

    /// How many values are set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The storage encoding of a `C` built from `values`.
pub(crate) fn encode_fields<C: Credential>(values: &FieldValues) -> Result<Zeroizing<Vec<u8>>> {
    let invalid = |field: &str, reason: &'static str| Error::InvalidFieldValue {
        kind: C::KIND.to_owned(),
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(unknown) =
        values.values.keys().find(|name| !C::FIELDS.iter().any(|f| f.name == *name))
    {
        return Err(Error::UnknownField { id: C::KIND.to_owned(), field: unknown.clone() });
    }
    let mut fields = Vec::with_capacity(values.len());
    for (index, schema) in C::FIELDS.iter().enumerate() {
        let Some(input) = values.values.get(schema.name) else { continue };
        let text = match (input, schema.is_secret()) {
            (FieldInput::Secret(secret), true) => secret.expose_secret(),
            (FieldInput::Plain(plain), false) => plain.as_str(),
            (FieldInput::Plain(_), true) => {
                return Err(invalid(schema.name, "is secret: give it as a secret value"));
            }
            (FieldInput::Secret(_), false) => {
                return Err(invalid(schema.name, "is not secret: give it as a plain value"));
            }
        };
        let encoder = C::text_encoder(index)
            .ok_or_else(|| invalid(schema.name, "cannot be set from text"))?;
        fields.push((schema.name, encoder, text));
    }
    crate::encoding::encode_from_text(C::KIND, &fields).map_err(|error| {
        let field = error.field().unwrap_or_default();
        Error::InvalidFieldValue {
            kind: C::KIND.to_owned(),
            field: field.to_owned(),
            reason: error.reason().to_string(),
        }
    })
}
