//! A read-only store of credentials taken from environment variables, for migrating from them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::Utc;
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::{
    LifecycleState, ListFilter, Precondition, Record, RecordMeta, SealedVersion, Store,
    VersionState, check_id,
};
use crate::hazmat::SealContext;
use crate::{Credential, Error, KeyRing, Result};

type Loader = Box<dyn Fn(&EnvVars) -> Result<Loaded> + Send + Sync>;

struct Loaded {
    encoded: Zeroizing<Vec<u8>>,
    expires_at: Option<chrono::DateTime<Utc>>,
}

/// Credentials read from environment variables at each `get`, through an explicit mapping from
/// credential id to the variables that fill its fields. It seals what it reads with the key ring
/// it is given, so it fits anywhere a [`Store`] does, typically as the last fallback of a
/// [`CompositeStore`](crate::store::CompositeStore); give it the same key ring as the manager. Writes
/// and deletes are [`Error::ReadOnly`].
///
/// ```
/// use credential::prelude::*;
/// use credential::store::EnvStore;
/// use credential::KeyRing;
///
/// #[derive(Credential)]
/// struct GitHub {
///     #[secret]
///     token: SecretString,
///     username: String,
/// }
///
/// # fn main() -> credential::Result<()> {
/// let ring = KeyRing::generate()?;
/// let store = EnvStore::new(ring.clone(), "production").credential("github/main", |env| {
///     Ok(GitHub { token: env.secret("GITHUB_TOKEN")?, username: env.text("GITHUB_USER")? })
/// })?;
/// # Ok(())
/// # }
/// ```
pub struct EnvStore {
    ring: KeyRing,
    environment: String,
    entries: BTreeMap<String, (&'static str, Loader)>,
}

impl fmt::Debug for EnvStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvStore")
            .field("environment", &self.environment)
            .field("ids", &self.entries.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl EnvStore {
    /// An empty mapping whose records are sealed with `ring` and belong to `environment`.
    pub fn new(ring: KeyRing, environment: impl Into<String>) -> Self {
        Self { ring, environment: environment.into(), entries: BTreeMap::new() }
    }

    /// Maps credential `id` (as a manager of this store's environment names it) to what `build`
    /// makes of the environment. The record is stored as `<environment>/<id>`, the way managers
    /// namespace ids.
    ///
    /// # Errors
    /// [`Error::InvalidId`] for an id outside the allowlist.
    pub fn credential<C: Credential>(
        mut self,
        id: &str,
        build: impl Fn(&EnvVars) -> Result<C> + Send + Sync + 'static,
    ) -> Result<Self> {
        check_id(id)?;
        // Stored under the environment's namespace, as a manager of that environment asks for it.
        let storage_id = format!("{}/{id}", self.environment);
        check_id(&storage_id)?;
        let loader: Loader = Box::new(move |env| {
            let credential = build(env)?;
            credential.validate()?;
            Ok(Loaded { encoded: credential.encode(), expires_at: credential.expires_at() })
        });
        self.entries.insert(storage_id, (C::KIND, loader));
        Ok(self)
    }

    fn meta(&self, id: &str, kind: &str, loaded: &Loaded) -> RecordMeta {
        let now = Utc::now();
        RecordMeta {
            id: id.to_owned(),
            kind: kind.to_owned(),
            environment: self.environment.clone(),
            state: LifecycleState::Active,
            revision: 1,
            created_at: now,
            updated_at: now,
            expires_at: loaded.expires_at,
            tags: ["env".to_owned()].into(),
            key_id: self.ring.current_id().to_string(),
            refresh: Default::default(),
            tag: Vec::new(),
            trail: None,
        }
    }
}

#[async_trait]
impl Store for EnvStore {
    async fn get(&self, id: &str) -> Result<Option<Record>> {
        check_id(id)?;
        let Some((kind, load)) = self.entries.get(id) else {
            return Ok(None);
        };
        let loaded = load(&EnvVars { _private: () })?;
        let sealed = self.ring.seal(&SealContext::new(id, 1, kind), &loaded.encoded)?;
        let meta = self.meta(id, kind, &loaded);
        let created_at = meta.created_at;
        Ok(Some(Record {
            meta,
            versions: vec![SealedVersion {
                version: 1,
                state: VersionState::Current,
                created_at,
                changed_at: created_at,
                sealed,
            }],
        }))
    }

    async fn put(&self, _: Record, _: Precondition) -> Result<u64> {
        Err(Error::ReadOnly { store: "environment" })
    }

    async fn delete(&self, _: &str, _: u64) -> Result<()> {
        Err(Error::ReadOnly { store: "environment" })
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let env = EnvVars { _private: () };
        Ok(self
            .entries
            .iter()
            .filter_map(|(id, (kind, load))| {
                load(&env).ok().map(|loaded| self.meta(id, kind, &loaded))
            })
            .filter(|meta| filter.matches(meta))
            .collect())
    }
}

/// Reads environment variables for an [`EnvStore`] mapping. Errors name the variable, never its
/// value.
pub struct EnvVars {
    _private: (),
}

impl EnvVars {
    fn raw(&self, var: &str) -> Result<Zeroizing<Vec<u8>>> {
        let value: OsString =
            std::env::var_os(var).ok_or_else(|| Error::MissingEnv { var: var.to_owned() })?;
        Ok(Zeroizing::new(value.into_encoded_bytes()))
    }

    fn utf8<'a>(var: &str, bytes: &'a [u8]) -> Result<&'a str> {
        std::str::from_utf8(bytes)
            .map_err(|_| Error::InvalidEnv { var: var.to_owned(), expected: "UTF-8 text" })
    }

    /// A secret from `var`, copied once into its final allocation.
    ///
    /// # Errors
    /// [`Error::MissingEnv`], or [`Error::InvalidEnv`] when it is not UTF-8.
    pub fn secret(&self, var: &str) -> Result<SecretString> {
        let raw = self.raw(var)?;
        Ok(SecretString::new(Box::from(Self::utf8(var, &raw)?)))
    }

    /// Plain text from `var`.
    ///
    /// # Errors
    /// [`Error::MissingEnv`], or [`Error::InvalidEnv`] when it is not UTF-8.
    pub fn text(&self, var: &str) -> Result<String> {
        let raw = self.raw(var)?;
        Self::utf8(var, &raw).map(str::to_owned)
    }

    /// Plain text from `var`, or `None` when it is unset.
    ///
    /// # Errors
    /// [`Error::InvalidEnv`] when it is set but not UTF-8.
    pub fn optional_text(&self, var: &str) -> Result<Option<String>> {
        match self.text(var) {
            Err(Error::MissingEnv { .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// A value parsed from `var` (a port number, say).
    ///
    /// # Errors
    /// [`Error::MissingEnv`], or [`Error::InvalidEnv`] when it does not parse as `T`.
    pub fn parse<T: FromStr>(&self, var: &str) -> Result<T> {
        self.text(var)?.trim().parse().map_err(|_| Error::InvalidEnv {
            var: var.to_owned(),
            expected: std::any::type_name::<T>(),
        })
    }
}
