//! Resolving templates through a context: `{{id.field}}` becomes the field's value, checked and
//! audited like [`Context::get`].

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::Context;
use super::core::Decode;
use super::registry::AnyCredential;
use super::template::{self, Piece};
use crate::audit::AuditAction;
use crate::field::{FieldRef, PlainValue, SecretValue};
use crate::{Error, Result};

/// How [`Context::resolve_with`] treats a placeholder whose credential or field does not exist,
/// or whose field holds no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ResolveOptions {
    /// Leave such placeholders as written instead of failing. A credential the principal may not
    /// read counts as missing too, so the output says nothing about what exists; so does a field
    /// with no value.
    pub keep_missing: bool,
}

impl ResolveOptions {
    /// Fail on any missing credential or field (the default).
    pub fn strict() -> Self {
        Self::default()
    }

    /// Leave placeholders of missing credentials or fields, and of fields with no value, as
    /// written.
    pub fn keep_missing() -> Self {
        Self { keep_missing: true }
    }
}

/// A resolved piece, borrowed until the output is assembled at its final size.
enum Part<'t> {
    Text(&'t str),
    Field(Arc<dyn AnyCredential>, String),
}

impl Part<'_> {
    fn with_text<T>(&self, use_text: impl FnOnce(&str) -> T) -> T {
        match self {
            Self::Text(text) => use_text(text),
            Self::Field(credential, field) => match credential.field(field) {
                Some(FieldRef::Secret(SecretValue::Text(secret), _)) => {
                    use_text(secret.expose_secret())
                }
                Some(FieldRef::Plain(plain)) => use_text(&plain.to_string()),
                _ => use_text(""),
            },
        }
    }
}

impl Context {
    /// Replaces each `{{id.field}}` in `template` with that field of credential `id`, and each
    /// `{{id}}` with the credential's only secret field. Every credential is checked (policy, state,
    /// expiry) and audited like [`get`](Self::get); values are never logged or audited.
    ///
    /// ```
    /// use credential::kinds::BearerToken;
    /// use credential::prelude::*;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::builder().store(MemoryStore::new()).key_ring(KeyRing::generate()?).build().await?;
    /// manager.create("github/main", BearerToken::new("ghp_example".into())).await?.activate().await?;
    /// let ctx = manager.context(Principal::new("workflow/release", "action/tag"));
    /// let header = ctx.resolve("Bearer {{github/main.token}}").await?;
    /// assert_eq!(header.expose_secret(), "Bearer ghp_example");
    /// assert_eq!(ctx.resolve("{{github/main}}").await?.expose_secret(), "ghp_example");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Template`] for a malformed template; for a placeholder, the errors of
    /// [`get`](Self::get), [`Error::UnknownField`], [`Error::AbsentField`] for a field with no
    /// value (never `none` or an empty string in its place), [`Error::AmbiguousField`] for `{{id}}` on a
    /// credential with several secret fields, and [`Error::UnknownKind`] for a kind the manager
    /// cannot decode by name (register it with [`ManagerBuilder::register`](crate::ManagerBuilder::register)).
    pub async fn resolve(&self, template: &str) -> Result<SecretString> {
        self.resolve_with(template, ResolveOptions::strict()).await
    }

    /// [`resolve`](Self::resolve) with `options`.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve).
    pub async fn resolve_with(
        &self,
        template: &str,
        options: ResolveOptions,
    ) -> Result<SecretString> {
        let mut parts = Vec::new();
        for piece in template::parse(template)? {
            match piece {
                Piece::Text(text) => parts.push(Part::Text(text)),
                Piece::Placeholder { id, field, written } => {
                    match self.placeholder(id, field).await {
                        Ok(part) => parts.push(part),
                        Err(
                            Error::NotFound { .. }
                            | Error::AccessDenied { .. }
                            | Error::UnknownField { .. }
                            | Error::AbsentField { .. },
                        ) if options.keep_missing => {
                            parts.push(Part::Text(written));
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        // Assembled at its final size: no partial copy of a secret is left behind.
        let len: usize = parts.iter().map(|part| part.with_text(str::len)).sum();
        let mut output = String::with_capacity(len);
        for part in &parts {
            part.with_text(|text| output.push_str(text));
        }
        Ok(SecretString::from(output))
    }

    /// Resolves every value of a header map.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), for the first value that fails.
    pub async fn resolve_headers<K, V>(
        &self,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<BTreeMap<String, SecretString>>
    where
        K: Into<String>,
        V: AsRef<str>,
    {
        let mut resolved = BTreeMap::new();
        for (name, value) in headers {
            resolved.insert(name.into(), self.resolve(value.as_ref()).await?);
        }
        Ok(resolved)
    }

    /// Resolves every value of a header map into an [`http::HeaderMap`](::http::HeaderMap), the
    /// type HTTP clients (`reqwest`, `hyper`) take, with every value marked sensitive so that
    /// their `Debug` output and HTTP/2 header compression leave it out. Feature `http`.
    ///
    /// The map's values are `http`'s own buffers, which are not wiped when dropped: build the map
    /// just before the request, and drop it with the request.
    ///
    /// ```
    /// use credential::{ExposeSecret, Manager, Principal, kinds::BearerToken};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::for_testing()?;
    /// let token = BearerToken { token: "tok_3f9a2c71".into(), expires: None };
    /// manager.create("api/main", token).await?.activate().await?;
    /// let ctx = manager.context(Principal::new("workflow/sync", "action/fetch"));
    /// let headers = ctx.resolve_header_map([("authorization", "Bearer {{api/main}}")]).await?;
    /// assert!(headers["authorization"].is_sensitive());
    /// assert!(!format!("{headers:?}").contains("tok_3f9a2c71"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), for the first value that fails;
    /// [`Error::InvalidHeader`](crate::Error::InvalidHeader) for a name that is not a header
    /// name or a resolved value that is not a header value (a line break, say).
    #[cfg(feature = "http")]
    pub async fn resolve_header_map<K, V>(
        &self,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<::http::HeaderMap>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let invalid = |name: &str, reason| Error::InvalidHeader {
            name: name.chars().take(64).collect(),
            reason,
        };
        let mut map = ::http::HeaderMap::new();
        for (name, template) in headers {
            let name = name.as_ref();
            let header = ::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(name, "not a header name"))?;
            let resolved = self.resolve(template.as_ref()).await?;
            let mut value =
                ::http::HeaderValue::from_str(resolved.expose_secret()).map_err(|_| {
                    invalid(name, "the resolved value is not a header value (a control character?)")
                })?;
            value.set_sensitive(true);
            map.append(header, value);
        }
        Ok(map)
    }

    /// Resolves every value of a query-parameter map.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), for the first value that fails.
    pub async fn resolve_params<K, V>(
        &self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Result<BTreeMap<String, SecretString>>
    where
        K: Into<String>,
        V: AsRef<str>,
    {
        self.resolve_headers(params).await
    }

    /// One placeholder: the credential through the read path (checked, audited, cached), and
    /// the field to take from it.
    async fn placeholder<'t>(&self, id: &str, field: Option<&str>) -> Result<Part<'t>> {
        let cached = self
            .core
            .read_current(&self.actor, id, AuditAction::Resolve, Decode::ByStoredKind)
            .await?;
        let fields = Arc::clone(&cached.credential.fields);
        let field = pick_field(id, fields.as_ref(), field)?;
        Ok(Part::Field(fields, field))
    }
}

/// The field a placeholder names, or the sole secret field.
fn pick_field(id: &str, credential: &dyn AnyCredential, field: Option<&str>) -> Result<String> {
    match field {
        Some(field) => match credential.field(field) {
            Some(FieldRef::Secret(SecretValue::Bytes(_), _)) => {
                Err(Error::NotText { id: id.to_owned(), field: field.to_owned() })
            }
            Some(FieldRef::Secret(SecretValue::Absent, _) | FieldRef::Plain(PlainValue::Null)) => {
                Err(Error::AbsentField { id: id.to_owned(), field: field.to_owned() })
            }
            Some(_) => Ok(field.to_owned()),
            None => Err(Error::UnknownField { id: id.to_owned(), field: field.to_owned() }),
        },
        None => {
            let mut secrets = credential.schema().iter().filter(|schema| schema.is_secret());
            match (secrets.next(), secrets.next()) {
                (Some(only), None) => pick_field(id, credential, Some(only.name)),
                _ => Err(Error::AmbiguousField { id: id.to_owned() }),
            }
        }
    }
}
