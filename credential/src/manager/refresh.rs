//! Refresh: the [`Refresher`] extension point, its settings, and when a credential is due.
//!
//! A refresher is registered per kind with [`ManagerBuilder::refresher`](crate::ManagerBuilder::refresher).
//! `get` serves a credential until its refresh window opens (by default 5 minutes before it
//! expires, at most half its lifetime, a little less in some processes than in others so that a
//! fleet does not start together); inside the window the valid credential is served while one
//! refresh runs in the background; once expired, callers wait for the refresh up to a bound. How
//! one refresh per fleet is kept is in `flight`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

mod flight;

pub(crate) use self::flight::Refreshing;
use super::core::{Core, Decode};
use super::registry::{Decoded, Decoder};
use crate::audit::AuditAction;
use crate::{Credential, Error, Result};

/// Turns a credential that is expired, or about to be, into a new one. Registered per kind with
/// [`ManagerBuilder::refresher`](crate::ManagerBuilder::refresher); the manager stores what it
/// returns as a new version through the commit path, audited as
/// [`AuditAction::Refresh`].
///
/// The manager calls it at most once at a time per credential across every process on the store
/// (a lease is taken by compare-and-swap first), so a provider that revokes a token family when a
/// refresh token is used twice never sees a second request.
///
/// ```
/// use async_trait::async_trait;
/// use credential::kinds::BearerToken;
/// use credential::{RefreshContext, RefreshError, Refresher};
///
/// /// Asks an internal token service for a new bearer token.
/// struct TokenService;
///
/// #[async_trait]
/// impl Refresher for TokenService {
///     type Credential = BearerToken;
///
///     async fn refresh(
///         &self,
///         current: &BearerToken,
///         context: &RefreshContext,
///     ) -> Result<BearerToken, RefreshError> {
///         let _ = (current, context.id());
///         Err(RefreshError::Unavailable { reason: "the token service is not wired up".into() })
///     }
/// }
/// ```
#[async_trait]
pub trait Refresher: Send + Sync + 'static {
    /// The kind it refreshes.
    type Credential: Credential;

    /// The credential that replaces `current`. Give up by
    /// [`RefreshContext::deadline`]: the lease other processes wait on lapses soon after.
    ///
    /// # Errors
    /// [`RefreshError::InvalidGrant`] when the provider refused the grant for good (the
    /// credential is then marked as needing reauthentication), [`RefreshError::Unavailable`]
    /// when trying later may help, [`RefreshError::Failed`] when it will not.
    async fn refresh(
        &self,
        current: &Self::Credential,
        context: &RefreshContext,
    ) -> Result<Self::Credential, RefreshError>;
}

/// Why a refresh produced nothing. Never holds a token or a response body.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The provider refused the grant (OAuth 2.0 `invalid_grant`): the refresh token is revoked,
    /// expired or was used twice. The credential is marked; reads fail with
    /// [`Error::ReauthRequired`] until an operator rotates in a new one.
    #[error("the provider refused the grant")]
    InvalidGrant,
    /// The provider could not be reached or asked us to wait (a transport failure, a 5xx, a 429,
    /// an open circuit breaker): trying later may help.
    #[error("{reason}")]
    Unavailable {
        /// What happened.
        reason: String,
    },
    /// The refresh cannot succeed without a change (a rejected client, a malformed response, a
    /// missing setting).
    #[error("{reason}")]
    Failed {
        /// What happened.
        reason: String,
    },
}

impl RefreshError {
    /// The [`Error`] a read of `id` reports for this failure.
    pub(crate) fn for_credential(&self, id: &str) -> Error {
        match self {
            Self::InvalidGrant => Error::ReauthRequired { id: id.to_owned() },
            Self::Unavailable { reason } => {
                Error::RefreshFailed { id: id.to_owned(), reason: reason.clone(), transient: true }
            }
            Self::Failed { reason } => {
                Error::RefreshFailed { id: id.to_owned(), reason: reason.clone(), transient: false }
            }
        }
    }
}

impl From<Error> for RefreshError {
    /// A failure to read what the refresh needs (its client credential, say).
    fn from(error: Error) -> Self {
        let reason = format!("reading what the refresh needs failed: {error}");
        if error.is_transient() { Self::Unavailable { reason } } else { Self::Failed { reason } }
    }
}

/// What a [`Refresher`] may use: the id being refreshed, its deadline, and the other credentials
/// of the manager (an OAuth 2.0 client's secret, say), read as the manager's operator.
pub struct RefreshContext {
    core: Arc<Core>,
    id: String,
    deadline: Instant,
}

impl std::fmt::Debug for RefreshContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshContext").field("id", &self.id).finish_non_exhaustive()
    }
}

impl RefreshContext {
    pub(crate) fn new(core: Arc<Core>, id: &str, deadline: Instant) -> Self {
        Self { core, id: id.to_owned(), deadline }
    }

    /// The id of the credential being refreshed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When to give up: retries and backoff stop here.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Credential `id` of the manager as a `C`, read as the manager's operator (checked against
    /// the access policy and audited like any read).
    ///
    /// # Errors
    /// As [`Context::get`](crate::Context::get).
    pub async fn credential<C: Credential>(&self, id: &str) -> Result<Arc<C>> {
        let decode = Decode::As(Decoder::of::<C>());
        let cached =
            self.core.read_current(self.core.operator(), id, AuditAction::Read, decode).await?;
        cached.credential.typed::<C>()
    }
}

/// When credentials are refreshed and how long callers wait.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RefreshConfig {
    /// How long before expiry a refresh starts, capped at half the credential's lifetime.
    /// Default: 5 minutes.
    pub window: Duration,
    /// How long a `get` of an expired credential waits for its refresh. Default: 10 seconds.
    pub wait: Duration,
    /// How long one refresh may take, retries included. Default: 20 seconds.
    pub deadline: Duration,
    /// How long a lease lasts, on the store's clock: a process that crashed while refreshing
    /// holds the others back this long. Longer than `deadline`. Default: 30 seconds.
    pub lease: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(5 * 60),
            wait: Duration::from_secs(10),
            deadline: Duration::from_secs(20),
            lease: Duration::from_secs(30),
        }
    }
}

impl RefreshConfig {
    /// With `window` before expiry.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// With callers of an expired credential waiting up to `wait`.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// With each refresh given `deadline`, and the lease `lease` (which must be longer).
    pub fn deadline(mut self, deadline: Duration, lease: Duration) -> Self {
        self.deadline = deadline;
        self.lease = lease;
        self
    }
}

/// What a refresher produced, encoded for sealing.
pub(crate) struct Refreshed {
    pub(crate) encoded: Zeroizing<Vec<u8>>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// A refresher without its type.
#[async_trait]
pub(crate) trait AnyRefresher: Send + Sync {
    async fn refresh(
        &self,
        current: &Decoded,
        context: &RefreshContext,
    ) -> Result<Refreshed, RefreshError>;
}

struct Typed<R>(R);

#[async_trait]
impl<R: Refresher> AnyRefresher for Typed<R> {
    async fn refresh(
        &self,
        current: &Decoded,
        context: &RefreshContext,
    ) -> Result<Refreshed, RefreshError> {
        let current = current.typed::<R::Credential>()?;
        let next = self.0.refresh(&current, context).await?;
        next.validate().map_err(|errors| RefreshError::Failed {
            reason: format!("the refreshed credential is invalid: {errors}"),
        })?;
        context.core.learn(&next);
        Ok(Refreshed { encoded: next.encode(), expires_at: next.expires_at() })
    }
}

/// The refreshers of a manager, by kind, and when their credentials fall due.
pub(crate) struct Refreshers {
    by_kind: HashMap<&'static str, Arc<dyn AnyRefresher>>,
    pub(crate) config: RefreshConfig,
    /// This process's share of the window, from 0.8 to 1: spreads a fleet's refreshes out.
    jitter: f64,
}

impl Refreshers {
    pub(crate) fn new(config: RefreshConfig) -> Self {
        let mut random = [0u8; 2];
        // Without randomness every process uses the whole window; nothing else depends on it.
        let _ = getrandom::fill(&mut random);
        let jitter = 0.8 + 0.2 * f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
        Self { by_kind: HashMap::new(), config, jitter }
    }

    pub(crate) fn register<R: Refresher>(&mut self, refresher: R) {
        self.by_kind.insert(R::Credential::KIND, Arc::new(Typed(refresher)));
    }

    pub(crate) fn of(&self, kind: &str) -> Option<Arc<dyn AnyRefresher>> {
        self.by_kind.get(kind).cloned()
    }

    /// When a credential of `kind`, sealed at `issued` and expiring at `expires_at`, falls due:
    /// `None` when nothing refreshes it.
    pub(crate) fn due_at(
        &self,
        kind: &str,
        issued: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let expires_at = expires_at?;
        if !self.by_kind.contains_key(kind) {
            return None;
        }
        let window = self.config.window.mul_f64(self.jitter);
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let half_life = (expires_at - issued).max(chrono::Duration::zero()) / 2;
        Some(expires_at - window.min(half_life))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{ApiKey, OAuth2Token};

    struct Never;

    #[async_trait]
    impl Refresher for Never {
        type Credential = OAuth2Token;

        async fn refresh(
            &self,
            _: &OAuth2Token,
            _: &RefreshContext,
        ) -> Result<OAuth2Token, RefreshError> {
            Err(RefreshError::Failed { reason: "never".to_owned() })
        }
    }

    #[test]
    fn the_window_is_capped_at_half_the_lifetime_and_jittered_down_only() {
        let mut refreshers = Refreshers::new(RefreshConfig::default());
        refreshers.register(Never);
        let issued = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let hour = issued + chrono::Duration::hours(1);
        let due = refreshers.due_at(OAuth2Token::KIND, issued, Some(hour)).unwrap();
        assert!(due >= hour - chrono::Duration::minutes(5), "{due}");
        assert!(due <= hour - chrono::Duration::minutes(4), "{due}");
        // A 10-second token is due after 5 seconds, whatever the window.
        let short = issued + chrono::Duration::seconds(10);
        let due = refreshers.due_at(OAuth2Token::KIND, issued, Some(short)).unwrap();
        assert_eq!(due, issued + chrono::Duration::seconds(5));
        // Nothing refreshes an API key, and nothing is due without an expiry.
        assert_eq!(refreshers.due_at(ApiKey::KIND, issued, Some(hour)), None);
        assert_eq!(refreshers.due_at(OAuth2Token::KIND, issued, None), None);
    }

    #[test]
    fn failures_become_the_contract_errors_and_keep_transience() {
        assert!(matches!(
            RefreshError::InvalidGrant.for_credential("a"),
            Error::ReauthRequired { id } if id == "a"
        ));
        let down = RefreshError::Unavailable { reason: "HTTP 503".to_owned() }.for_credential("a");
        assert!(down.is_transient());
        assert_eq!(down.to_string(), "refreshing credential `a` failed: HTTP 503");
        let bad = RefreshError::Failed { reason: "invalid_client".to_owned() }.for_credential("a");
        assert!(!bad.is_transient());
    }
}
