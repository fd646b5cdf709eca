//! Credentials without their type: field access by name for templates, through a registry of the
//! kinds a manager knows how to decode.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::{Credential, FieldRef, FieldSchema, Result};

/// A decoded credential whose type is not known at the call site.
pub(crate) trait AnyCredential: Send + Sync {
    fn field(&self, name: &str) -> Option<FieldRef<'_>>;
    fn schema(&self) -> &'static [FieldSchema];
    fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>>;
}

impl<C: Credential> AnyCredential for C {
    fn field(&self, name: &str) -> Option<FieldRef<'_>> {
        Credential::field(self, name)
    }

    fn schema(&self) -> &'static [FieldSchema] {
        C::FIELDS
    }

    fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        Credential::expires_at(self)
    }
}

type Decoder = fn(&[u8]) -> Result<Arc<dyn AnyCredential>>;

fn decode_erased<C: Credential>(bytes: &[u8]) -> Result<Arc<dyn AnyCredential>> {
    Ok(Arc::new(C::decode(bytes)?))
}

/// Kind tag → decoder. Filled by `ManagerBuilder::register`, the built-in kinds, and every type a
/// manager is used with.
#[derive(Default)]
pub(crate) struct KindRegistry {
    decoders: RwLock<HashMap<&'static str, Decoder>>,
}

impl KindRegistry {
    pub(crate) fn register<C: Credential>(&self) {
        let known =
            self.decoders.read().unwrap_or_else(PoisonError::into_inner).contains_key(C::KIND);
        if !known {
            self.decoders
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(C::KIND, decode_erased::<C>);
        }
    }

    pub(crate) fn decoder(&self, kind: &str) -> Option<Decoder> {
        self.decoders.read().unwrap_or_else(PoisonError::into_inner).get(kind).copied()
    }

    /// A registry that knows the built-in kinds.
    pub(crate) fn with_builtin_kinds() -> Self {
        use crate::kinds::{
            ApiKey, Aws, BasicAuth, BearerToken, Certificate, Database, OAuth2Token, SshKey,
        };
        let registry = Self::default();
        registry.register::<ApiKey>();
        registry.register::<Aws>();
        registry.register::<BasicAuth>();
        registry.register::<BearerToken>();
        registry.register::<Certificate>();
        registry.register::<Database>();
        registry.register::<OAuth2Token>();
        registry.register::<SshKey>();
        registry
    }
}
