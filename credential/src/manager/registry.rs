//! Credentials without their type: field access by name for templates, through a registry of the
//! kinds a manager knows how to decode.

use std::any::Any;
use std::sync::{Arc, PoisonError, RwLock};

use zeroize::Zeroizing;

use super::field_values::{FieldValues, encode_fields};
use crate::field::{FieldRef, FieldSchema};
use crate::util::IdMap;
use crate::{Credential, Result};

/// A decoded credential whose type is not known at the call site.
pub(crate) trait AnyCredential: Send + Sync {
    fn field(&self, name: &str) -> Option<FieldRef<'_>>;
    fn field_at(&self, index: usize) -> Option<FieldRef<'_>>;
    fn schema(&self) -> &'static [FieldSchema];
    fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>>;
}

impl<C: Credential> AnyCredential for C {
    fn field(&self, name: &str) -> Option<FieldRef<'_>> {
        Credential::field(self, name)
    }

    fn field_at(&self, index: usize) -> Option<FieldRef<'_>> {
        Credential::field_at(self, index)
    }

    fn schema(&self) -> &'static [FieldSchema] {
        C::FIELDS
    }

    fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        Credential::expires_at(self)
    }
}

/// A decoded credential, typed for `get` and erased for access by field name: one `Arc`, two
/// views of it.
#[derive(Clone)]
pub(crate) struct Decoded {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) fields: Arc<dyn AnyCredential>,
    pub(crate) kind: &'static str,
}

/// Decodes one kind from its storage encoding.
#[derive(Clone, Copy)]
pub(crate) struct Decoder {
    pub(crate) kind: &'static str,
    pub(crate) fields: &'static [FieldSchema],
    decode: fn(&[u8]) -> Result<Decoded>,
    validate: fn(&Decoded) -> Result<()>,
    encode_fields: fn(&FieldValues) -> Result<Zeroizing<Vec<u8>>>,
}

impl Decoder {
    /// The decoder of `C`.
    pub(crate) fn of<C: Credential>() -> Self {
        Self {
            kind: C::KIND,
            fields: C::FIELDS,
            decode: decode_erased::<C>,
            validate: validate_erased::<C>,
            encode_fields: encode_fields::<C>,
        }
    }

    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Decoded> {
        (self.decode)(bytes)
    }

    /// The storage encoding of a credential of this kind built from `values`, decoded back and
    /// validated: what a typed `create` would seal.
    pub(crate) fn encode_fields(
        &self,
        values: &FieldValues,
    ) -> Result<(Zeroizing<Vec<u8>>, Decoded)> {
        let encoded = (self.encode_fields)(values)?;
        // Decoding what was just encoded fails only on what the values lack: say which field.
        let decoded = self.decode(&encoded).map_err(|error| match error {
            crate::Error::Decode { kind, source } => crate::Error::InvalidFieldValue {
                kind,
                field: source.field().unwrap_or_default().to_owned(),
                reason: match source.reason() {
                    crate::encoding::DecodeReason::MissingField => {
                        "is required: give a value".into()
                    }
                    other => format!("does not read: {other}"),
                },
            },
            other => other,
        })?;
        self.validate(&decoded)?;
        Ok((encoded, decoded))
    }

    /// Runs the kind's validation rules on what this decoder decoded.
    pub(crate) fn validate(&self, decoded: &Decoded) -> Result<()> {
        (self.validate)(decoded)
    }
}

fn decode_erased<C: Credential>(bytes: &[u8]) -> Result<Decoded> {
    let credential = Arc::new(C::decode(bytes)?);
    Ok(Decoded {
        fields: Arc::clone(&credential) as Arc<dyn AnyCredential>,
        value: credential,
        kind: C::KIND,
    })
}

fn validate_erased<C: Credential>(decoded: &Decoded) -> Result<()> {
    Ok(decoded.typed::<C>()?.validate()?)
}

impl Decoded {
    /// The credential as a `C`.
    ///
    /// # Errors
    /// [`Error::KindMismatch`](crate::Error::KindMismatch) when it is of another kind.
    pub(crate) fn typed<C: Credential>(&self) -> Result<Arc<C>> {
        Value::of(self).typed()
    }
}

/// A decoded credential's value alone, with its kind: what a typed read keeps.
pub(crate) struct Value {
    value: Arc<dyn Any + Send + Sync>,
    kind: &'static str,
}

impl Value {
    pub(crate) fn of(decoded: &Decoded) -> Self {
        Self { value: Arc::clone(&decoded.value), kind: decoded.kind }
    }

    /// The credential as a `C`.
    ///
    /// # Errors
    /// [`Error::KindMismatch`](crate::Error::KindMismatch) when it is of another kind.
    pub(crate) fn typed<C: Credential>(self) -> Result<Arc<C>> {
        let kind = self.kind;
        self.value.downcast::<C>().map_err(|_| crate::Error::KindMismatch {
            expected: C::KIND.to_owned(),
            found: kind.to_owned(),
        })
    }
}

/// Kind tag → decoder. Filled with every kind linked into the program (the derive submits each
/// non-generic type, built-in kinds included), then by `ManagerBuilder::register` and every type
/// a manager is used with.
#[derive(Default)]
pub(crate) struct KindRegistry {
    decoders: RwLock<IdMap<Decoder, &'static str>>,
}

impl KindRegistry {
    pub(crate) fn register<C: Credential>(&self) {
        self.register_decoder(Decoder::of::<C>());
    }

    /// Registers `decoder` for its kind, unless the kind has a decoder already.
    pub(crate) fn register_decoder(&self, decoder: Decoder) {
        let known =
            self.decoders.read().unwrap_or_else(PoisonError::into_inner).contains_key(decoder.kind);
        if !known {
            self.decoders
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(decoder.kind)
                .or_insert(decoder);
        }
    }

    pub(crate) fn decoder(&self, kind: &str) -> Option<Decoder> {
        self.decoders.read().unwrap_or_else(PoisonError::into_inner).get(kind).copied()
    }

    /// The kinds known, sorted.
    pub(crate) fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> =
            self.decoders.read().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// A registry that knows every kind linked into the program. Two types of one kind tag
    /// are a mistake the registry cannot settle: one of them is kept.
    pub(crate) fn with_linked_kinds() -> Self {
        let registry = Self::default();
        for linked in inventory::iter::<crate::derive_support::LinkedKind> {
            if let Some(decoder) = (linked.decoder)() {
                registry.register_decoder(decoder.0);
            }
        }
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{ApiKey, BasicAuth};

    #[test]
    fn every_kind_linked_into_the_program_is_known_without_being_named() {
        use crate::kinds::{Aws, BearerToken, OAuth2Client, OAuth2Token};
        #[derive(crate::Credential)]
        #[credential(kind = "only_linked", crate = "crate")]
        struct OnlyLinked {
            #[secret]
            key: crate::SecretString,
        }
        let registry = KindRegistry::with_linked_kinds();
        for kind in [ApiKey::KIND, Aws::KIND, BasicAuth::KIND, BearerToken::KIND] {
            assert!(registry.decoder(kind).is_some(), "{kind}");
        }
        assert!(registry.decoder(OAuth2Client::KIND).is_some());
        assert!(registry.decoder(OAuth2Token::KIND).is_some());
        assert!(registry.decoder("only_linked").is_some());
        assert!(registry.decoder("never_defined").is_none());
    }

    #[test]
    fn the_schema_says_which_fields_need_a_value() {
        use crate::kinds::{BasicAuth, OAuth2Client};
        let required = |fields: &[FieldSchema], name: &str| {
            fields.iter().find(|field| field.name == name).map(|field| field.required)
        };
        assert_eq!(required(BasicAuth::FIELDS, "password"), Some(true));
        // `scopes` has a default; an `Option` needs no value either.
        assert_eq!(required(OAuth2Client::FIELDS, "scopes"), Some(false));
        assert_eq!(required(ApiKey::FIELDS, "header"), Some(false));
        assert_eq!(required(ApiKey::FIELDS, "key"), Some(true));
    }

    #[test]
    fn registries_know_the_kinds_registered_with_them_and_no_others() {
        let (first, second) = (KindRegistry::default(), KindRegistry::default());
        first.register::<ApiKey>();
        first.register::<ApiKey>();
        assert!(first.decoder(ApiKey::KIND).is_some());
        assert!(second.decoder(ApiKey::KIND).is_none());

        second.register::<ApiKey>();
        second.register::<BasicAuth>();
        assert!(second.decoder(ApiKey::KIND).is_some());
        assert!(second.decoder(BasicAuth::KIND).is_some());
        assert!(first.decoder(BasicAuth::KIND).is_none());
    }
}
