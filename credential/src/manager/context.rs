//! Reading credentials in actions: `Context::get`.

use std::sync::Arc;

use chrono::Utc;

use super::audit::AuditAction;
use super::cache::Cached;
use super::{Manager, Permission, Principal};
use crate::{Credential, Error, LifecycleState, Result, VersionState, check_id};

/// Reads credentials as one principal. Every read checks the access policy, the kind, the state
/// and the expiry, is audited, and is served from the cache when it can be.
///
/// A principal without a grant gets [`Error::AccessDenied`] for every id, existing or not, so a
/// denial says nothing about what exists.
#[derive(Debug, Clone)]
pub struct Context {
    manager: Manager,
    principal: Principal,
}

impl Context {
    pub(crate) fn new(manager: Manager, principal: Principal) -> Self {
        Self { manager, principal }
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
        match self.current::<C>(id).await {
            Ok((value, cached)) => {
                self.manager
                    .record_event_for(
                        &self.principal,
                        cached.id,
                        AuditAction::Read,
                        Some(cached.version),
                        None,
                        None,
                    )
                    .await?;
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

    async fn current<C: Credential>(&self, id: &str) -> Result<(Arc<C>, Cached)> {
        check_id(id)?;
        self.manager.authorize(&self.principal, id, Permission::Read)?;
        let cached = self.manager.inner_cache().get_or_load(id, self.load::<C>(id)).await?;
        if cached.kind != C::KIND {
            return Err(Error::KindMismatch {
                expected: C::KIND.to_owned(),
                found: cached.kind.to_owned(),
            });
        }
        if cached.expires_at.is_some_and(|expires_at| expires_at <= Utc::now()) {
            return Err(Error::Expired { id: id.to_owned() });
        }
        let value = Arc::clone(&cached.value).downcast::<C>().map_err(|_| Error::KindMismatch {
            expected: C::KIND.to_owned(),
            found: cached.kind.to_owned(),
        })?;
        Ok((value, cached))
    }

    async fn load<C: Credential>(&self, id: &str) -> Result<Cached> {
        let record = self.manager.fetch::<C>(id).await?;
        match record.meta.state {
            LifecycleState::Active | LifecycleState::Rotating => {}
            LifecycleState::Revoked => return Err(Error::Revoked { id: id.to_owned() }),
            state => return Err(Error::NotActive { id: id.to_owned(), state }),
        }
        let current = record
            .versions
            .iter()
            .rev()
            .find(|version| version.state == VersionState::Current)
            .ok_or_else(|| Error::CorruptRecord {
                reason: format!("credential `{id}` has no current version"),
            })?;
        let credential: C = self.manager.open_version(id, current)?;
        Ok(Cached {
            expires_at: credential.expires_at().or(record.meta.expires_at),
            value: Arc::new(credential),
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
        self.manager.authorize(&self.principal, id, Permission::Read)?;
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
