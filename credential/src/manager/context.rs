//! Reading credentials in actions: `Context::get` and `Context::get_version`, thin layers over
//! the core's read path.

use std::sync::Arc;

use chrono::Utc;

use super::Principal;
use super::core::{Core, Decode, check_unexpired, versions};
use super::registry::Decoder;
#[cfg(doc)]
use crate::Error;
use crate::audit::AuditAction;
use crate::{Credential, Result};

/// Reads credentials as one principal. Every read checks the access policy, the kind, the state
/// and the expiry, is audited, and is served from the cache when it can be.
///
/// A principal without a grant gets [`Error::AccessDenied`] for every id, existing or not, so a
/// denial says nothing about what exists.
#[derive(Clone)]
pub struct Context {
    pub(super) core: Arc<Core>,
    pub(super) actor: Principal,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("principal", &self.actor).finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(core: Arc<Core>, actor: Principal) -> Self {
        Self { core, actor }
    }

    /// Who this context reads as.
    pub fn principal(&self) -> &Principal {
        &self.actor
    }

    /// The current version of credential `id` as a `C`.
    ///
    /// A credential with a [`Refresher`](crate::Refresher) is refreshed when due: inside its
    /// refresh window the valid credential is returned while a refresh runs in the background;
    /// once expired, the call waits for the refresh (up to
    /// [`RefreshConfig::wait`](crate::RefreshConfig::wait)).
    ///
    /// # Errors
    /// [`Error::AccessDenied`], [`Error::NotFound`], [`Error::KindMismatch`],
    /// [`Error::NotActive`] for a draft, [`Error::Revoked`], [`Error::Expired`],
    /// [`Error::ReauthRequired`] or [`Error::RefreshFailed`] for a credential whose refresh
    /// failed, [`Error::Decrypt`], [`Error::Audit`] or [`Error::AuditBackpressure`], or a store
    /// error.
    pub async fn get<C: Credential>(&self, id: &str) -> Result<Arc<C>> {
        self.core.read_value(&self.actor, id, Decoder::of::<C>()).await?.typed::<C>()
    }

    /// Version `version` of credential `id`: the current version, the pending version of a
    /// rotation, or a deprecated one during the manager's grace period. Not cached.
    ///
    /// # Errors
    /// As [`get`](Self::get) (a draft is [`Error::NotActive`], an expired version
    /// [`Error::Expired`]), and [`Error::VersionUnavailable`] for an unknown, destroyed or
    /// out-of-grace version.
    pub async fn get_version<C: Credential>(&self, id: &str, version: u64) -> Result<Arc<C>> {
        let decoder = Decoder::of::<C>();
        let core = &self.core;
        let decoded = core
            .read_record(&self.actor, id, AuditAction::Read, |record| {
                let decoder = core.decoder(record, Decode::As(decoder))?;
                let now = Utc::now();
                let found = versions::readable(id, record, version, core.rules(), now)?;
                let decoded = core.open_as(id, record, found, decoder)?;
                check_unexpired(id, decoded.fields.expires_at(), now)?;
                Ok((decoded, version))
            })
            .await?;
        decoded.typed::<C>()
    }
}
