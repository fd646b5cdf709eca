//! OAuth 2.0 refresh for [`kinds::OAuth2Token`](crate::kinds::OAuth2Token) (feature `oauth2`):
//! the refresh-token grant (RFC 6749 §6) and the client-credentials grant (§4.4).
//!
//! Register [`OAuth2Refresher`] with
//! [`ManagerBuilder::refresher`](crate::ManagerBuilder::refresher). A token names the
//! [`OAuth2Client`] credential that refreshes it; the token endpoint,
//! client id and client secret come from there, never from code. A token with a refresh token is
//! refreshed with it (a rotated refresh token in the answer replaces the old one; otherwise the old
//! one is kept, as §6 allows); a token without one gets a new token by the client-credentials grant.
//!
//! The two grants are written here rather than taken from the `oauth2` crate, which pins
//! `reqwest` 0.12 and `thiserror` 1: every user would compile a second HTTP stack and a second
//! error derive for two form posts. The HTTP client is `reqwest` 0.13 over rustls on `ring`, with
//! Mozilla's roots, redirects off.
//!
//! Failures (§5.2): `invalid_grant` is [`RefreshError::InvalidGrant`](crate::RefreshError) and
//! the token is marked as needing reauthentication; other OAuth 2.0 error codes and unexpected
//! statuses are permanent failures; transport errors, 5xx and 429 are retried with exponential
//! backoff (100 ms doubling to 2 s) until the refresh's deadline. Errors name the status or the
//! OAuth 2.0 error code, never the response body. A circuit breaker per token endpoint opens after
//! [`DEFAULT_BREAKER_FAILURES`] consecutive transient failures and refuses requests at once for
//! [`DEFAULT_BREAKER_OPEN`]; then one request probes the endpoint, and its success closes the
//! breaker.

mod breaker;
mod token_endpoint;

use std::time::Duration;

use async_trait::async_trait;

use self::breaker::Breakers;
pub use self::breaker::{DEFAULT_BREAKER_FAILURES, DEFAULT_BREAKER_OPEN};
use self::token_endpoint::{Grant, TokenEndpoint};
use crate::kinds::{OAuth2Client, OAuth2Token};
use crate::{RefreshContext, RefreshError, Refresher, Result};

/// Refreshes [`OAuth2Token`]s against their provider's token endpoint. See the
/// [module docs](self) for the grants, retries and circuit breaker.
///
/// ```no_run
/// use credential::oauth2::OAuth2Refresher;
/// use credential::{KeyRing, Manager, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
/// let manager = Manager::builder()
///     .store(MemoryStore::new())
///     .key_ring(KeyRing::generate()?)
///     .refresher(OAuth2Refresher::new()?)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OAuth2Refresher {
    endpoint: TokenEndpoint,
    breakers: Breakers,
}

impl OAuth2Refresher {
    /// A refresher with the default circuit breaker.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the HTTP client cannot be built.
    pub fn new() -> Result<Self> {
        Ok(Self {
            endpoint: TokenEndpoint::new()?,
            breakers: Breakers::new(DEFAULT_BREAKER_FAILURES, DEFAULT_BREAKER_OPEN),
        })
    }

    /// With a circuit breaker that opens after `failures` consecutive transient failures of a
    /// token endpoint and stays open for `open_for`.
    pub fn breaker(mut self, failures: u32, open_for: Duration) -> Self {
        self.breakers = Breakers::new(failures.max(1), open_for);
        self
    }
}

#[async_trait]
impl Refresher for OAuth2Refresher {
    type Credential = OAuth2Token;

    async fn refresh(
        &self,
        current: &OAuth2Token,
        context: &RefreshContext,
    ) -> Result<OAuth2Token, RefreshError> {
        let client_id = current.client.as_deref().ok_or_else(|| RefreshError::Failed {
            reason: "the token names no OAuth 2.0 client credential".to_owned(),
        })?;
        let client = context.credential::<OAuth2Client>(client_id).await?;
        let grant = match &current.refresh_token {
            Some(refresh_token) => Grant::RefreshToken(refresh_token),
            None => Grant::ClientCredentials(&client.scopes),
        };
        let breaker = self.breakers.of(&client.token_endpoint);
        let issued = self
            .endpoint
            .request_with_retries(&client, &grant, &breaker, context.deadline())
            .await?;
        Ok(OAuth2Token {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token.or_else(|| current.refresh_token.clone()),
            token_type: issued.token_type,
            scopes: issued.scopes.unwrap_or_else(|| current.scopes.clone()),
            expires: issued.expires,
            client: current.client.clone(),
        })
    }
}
