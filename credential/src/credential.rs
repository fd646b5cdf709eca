//! The [`Credential`] trait and its field schema.

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::ValidationErrors;
use crate::field::{Mask, PlainValue, Redacted, RedactedSecret, SecretValue};

/// A typed credential: a struct of secret and plain fields with a stable kind tag.
///
/// Implemented by `#[derive(Credential)]`; see the crate docs for the attributes.
///
/// ```
/// use credential::prelude::*;
///
/// #[derive(Credential)]
/// #[credential(kind = "github")]
/// struct GitHub {
///     #[secret]
///     token: SecretString,
///     #[credential(validate(non_empty, length(max = 39)))]
///     username: String,
/// }
///
/// # fn main() -> credential::Result<()> {
/// let github = GitHub { token: "ghp_example".into(), username: "octocat".into() };
/// github.validate()?;
/// let stored = github.encode();
/// let loaded = GitHub::decode(&stored)?;
/// assert_eq!(loaded.token.expose_secret(), "ghp_example");
/// assert_eq!(format!("{:?}", loaded), r#"GitHub { token: [REDACTED], username: "octocat" }"#);
/// # Ok(())
/// # }
/// ```
pub trait Credential: Sized + Send + Sync + std::fmt::Debug + 'static {
    /// The stable type tag stored with each record (`#[credential(kind = "...")]`, by default the
    /// type name in snake case).
    const KIND: &'static str;

    /// The fields in declaration order.
    const FIELDS: &'static [FieldSchema];

    /// Checks every rule and returns all failures (field and rule, never the value).
    ///
    /// # Errors
    /// [`ValidationErrors`] listing each failed rule.
    fn validate(&self) -> Result<(), ValidationErrors>;

    /// When the credential stops being valid, from its `#[credential(expires_at)]` field.
    fn expires_at(&self) -> Option<DateTime<Utc>>;

    /// The storage encoding: the plaintext that gets sealed. Secrets are exposed only into this
    /// zeroizing buffer.
    fn encode(&self) -> Zeroizing<Vec<u8>>;

    /// Reads a credential back from [`encode`](Self::encode)'s output.
    ///
    /// # Errors
    /// [`Error::KindMismatch`](crate::Error::KindMismatch) for another kind's bytes,
    /// [`Error::Decode`](crate::Error::Decode) for malformed or truncated bytes. Never panics.
    fn decode(bytes: &[u8]) -> crate::Result<Self>;

    /// The field at `index` in [`FIELDS`](Self::FIELDS).
    #[doc(hidden)]
    fn field_at(&self, index: usize) -> Option<FieldRef<'_>>;

    /// How the field at `index` is written from text, for building a credential from field
    /// values without its type (operator tools).
    #[doc(hidden)]
    fn text_encoder(index: usize) -> Option<crate::codec::TextEncoder> {
        let _ = index;
        None
    }

    /// A field by its stored name, for template resolution.
    fn field(&self, name: &str) -> Option<FieldRef<'_>> {
        let index = Self::FIELDS.iter().position(|field| field.name == name)?;
        self.field_at(index)
    }

    /// Every field with its schema, in declaration order.
    fn fields(&self) -> impl Iterator<Item = (&'static FieldSchema, FieldRef<'_>)> {
        Self::FIELDS
            .iter()
            .enumerate()
            .filter_map(move |(index, schema)| Some((schema, self.field_at(index)?)))
    }

    /// A view safe to print, log or serialize: plain fields as they are, secrets redacted.
    fn redacted(&self) -> Redacted<'_, Self> {
        Redacted::new(self)
    }
}

/// The schema of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldSchema {
    /// The stored name (`rename`, else the Rust name).
    pub name: &'static str,
    /// The Rust field name.
    pub rust_name: &'static str,
    /// `Some` with its mask for a `#[secret]` field.
    pub secret: Option<Mask>,
    /// Whether a value must be given: `false` for an `Option` and for a field with
    /// `#[credential(default)]`.
    pub required: bool,
}

impl FieldSchema {
    #[doc(hidden)]
    pub const fn new(name: &'static str, rust_name: &'static str, secret: Option<Mask>) -> Self {
        Self { name, rust_name, secret, required: true }
    }

    /// This field, with no value required.
    #[doc(hidden)]
    #[must_use]
    pub const fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Whether the field is `#[secret]`.
    pub const fn is_secret(&self) -> bool {
        self.secret.is_some()
    }
}

/// A borrowed field value: secret (read only through `expose_secret`) or plain.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FieldRef<'a> {
    /// A `#[secret]` field.
    Secret(SecretValue<'a>, Mask),
    /// A plain field.
    Plain(PlainValue<'a>),
}

impl FieldRef<'_> {
    /// Whether the field is a secret.
    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Secret(..))
    }

    pub(crate) fn redacted(&self) -> RedactedField<'_> {
        match self {
            Self::Secret(value, mask) => RedactedField::Secret(RedactedSecret::new(*value, *mask)),
            Self::Plain(value) => RedactedField::Plain(value),
        }
    }
}

pub(crate) enum RedactedField<'a> {
    Secret(RedactedSecret<'a>),
    Plain(&'a PlainValue<'a>),
}
