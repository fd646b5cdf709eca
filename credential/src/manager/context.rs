//! Reading credentials in actions: `Context::get`.

use std::sync::Arc;

use chrono::Utc;

use super::audit::AuditAction;
use super::cache::Cached;
use super::registry::AnyCredential;
use super::{DecisionMemo, Manager, Permission, Principal};
use crate::{Credential, Error, LifecycleState, Result, VersionState, check_id};

/// Reads credentials as one principal. Every read checks the access policy, the kind, the state
/// and the expiry, is audited, and is served from the cache when it can be.
///
/// A principal without a grant gets [`Error::AccessDenied`] for every id, existing or not, so a
/// denial says nothing about what exists.
#[derive(Debug, Clone)]
pub struct Context {
    pub(super) manager: Manager,
    pub(super) principal: Principal,
    pub(super) decisions: Arc<DecisionMemo>,
}

impl Context {
    pub(crate) fn new(manager: Manager, principal: Principal) -> Self {
        Self { manager, principal, decisions: Arc::default() }
    }

    /// Who this context reads as.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The current version of credential `id` as a `C`.
    ///
    /// # Errors
    /// [`Error::AccessDenied`], [`Error::NotFound`], [`Error::KindMismatch`],
    /// [`Error::NotActive`] for a draft, [`Error::Revoked`], [`Error::Expired`],
    /// [`Error::Decrypt`], [`Error::Audit`], or a store error.
    pub async fn get<C: Credential>(&self, id: &str) -> Result<Arc<C>> {
        let now = Utc::now();
        // The common case, a cache hit, runs without awaiting anything; a miss loads through the
        // cache in a boxed future so the hit path stays small.
        let found = match self.authorized_hit(id, now) {
            Err(error) => Err(error),
            Ok(Some(hit)) => Ok(hit),
            Ok(None) => Box::pin(self.load_through_cache::<C>(id)).await,
        };
        match found.and_then(|cached| typed::<C>(id, cached, now)) {
            Ok((value, shared_id, version)) => {
                let event = self.manager.event(
                    now,
                    &self.principal,
                    shared_id,
                    AuditAction::Read,
                    Some(version),
                    None,
                    None,
                );
                self.manager.emit(event).await?;
                Ok(value)
            }
            Err(error) => {
                self.manager
                    .record_event(&self.principal, id, AuditAction::Read, None, Some(&error), None)
                    .await?;
                Err(error)
            }
        }
    }

    /// Checks the policy, then looks in the cache. Denials come first, so they say nothing about
    /// what exists.
    fn authorized_hit(&self, id: &str, now: chrono::DateTime<Utc>) -> Result<Option<Cached>> {
        self.manager.authorize_with(&self.decisions, &self.principal, id, Permission::Read, now)?;
        Ok(self.manager.inner_cache().get(id, now))
    }

    async fn load_through_cache<C: Credential>(&self, id: &str) -> Result<Cached> {
        check_id(id)?;
        self.manager.inner_cache().get_or_load(id, self.load::<C>(id)).await
    }

    async fn load<C: Credential>(&self, id: &str) -> Result<Cached> {
        let record = self.manager.fetch::<C>(id).await?;
        let current = super::served_version(id, &record)?;
        let credential: Arc<C> = Arc::new(self.manager.open_version(id, current)?);
        Ok(Cached {
            expires_at: credential.expires_at().or(record.meta.expires_at),
            fields: Arc::clone(&credential) as Arc<dyn AnyCredential>,
            value: credential,
            kind: C::KIND,
            id: Arc::from(id),
            version: current.version,
        })
    }

    /// Version `version` of credential `id`: the current or pending version, or a deprecated one
    /// during the manager's grace period. Not cached.
    ///
    /// # Errors
    /// As [`get`](Self::get), and [`Error::VersionUnavailable`] for an unknown, destroyed or
    /// out-of-grace version.
    pub async fn get_version<C: Credential>(&self, id: &str, version: u64) -> Result<Arc<C>> {
        let result = self.version::<C>(id, version).await;
        let error = result.as_ref().err();
        self.manager
            .record_event(&self.principal, id, AuditAction::Read, Some(version), error, None)
            .await?;
        result
    }

    async fn version<C: Credential>(&self, id: &str, version: u64) -> Result<Arc<C>> {
        check_id(id)?;
        self.manager.authorize_with(
            &self.decisions,
            &self.principal,
            id,
            Permission::Read,
            Utc::now(),
        )?;
        let record = self.manager.fetch::<C>(id).await?;
        if record.meta.state == LifecycleState::Revoked {
            return Err(Error::Revoked { id: id.to_owned() });
        }
        let unavailable = || Error::VersionUnavailable { id: id.to_owned(), version };
        let found = record
            .versions
            .iter()
            .find(|candidate| candidate.version == version)
            .ok_or_else(unavailable)?;
        let readable = match found.state {
            VersionState::Current | VersionState::Pending => true,
            VersionState::Deprecated => Utc::now() < found.changed_at + self.manager.grace_period(),
            _ => false,
        };
        if !readable {
            return Err(unavailable());
        }
        self.manager.open_version(id, found).map(Arc::new)
    }
}

/// The cached value as a `C`, after the kind and expiry checks.
fn typed<C: Credential>(
    id: &str,
    cached: Cached,
    now: chrono::DateTime<Utc>,
) -> Result<(Arc<C>, Arc<str>, u64)> {
    let Cached { value, kind, id: shared_id, version, expires_at, .. } = cached;
    let mismatch = || Error::KindMismatch { expected: C::KIND.to_owned(), found: kind.to_owned() };
    if kind != C::KIND {
        return Err(mismatch());
    }
    if expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(Error::Expired { id: id.to_owned() });
    }
    let value = value.downcast::<C>().map_err(|_| mismatch())?;
    Ok((value, shared_id, version))
}
