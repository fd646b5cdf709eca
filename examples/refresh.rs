//! Refresh: a short-lived session token renewed by a `Refresher` of our own. Fifty reads of the
//! expired token make one refresh; the new token is a new version, audited as a refresh; a refused
//! refresh marks the credential until an operator puts in a new one. (For OAuth 2.0 providers,
//! `credential::oauth2::OAuth2Refresher` with the `oauth2` feature does the same over HTTP.)
//!
//! Run with `cargo run --example refresh`.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use credential::audit::{AuditAction, AuditQuery};
use credential::prelude::*;
use credential::{Error, MemoryStore, RefreshContext, RefreshError, Refresher};

#[derive(Credential)]
#[credential(kind = "session")]
struct Session {
    #[secret(reveal_last = 4)]
    token: SecretString,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

/// A session token that expires `lifetime` from now, or expired `lifetime` ago when `expired`.
fn session(token: String, lifetime: Duration, expired: bool) -> Session {
    let expires = if expired { Utc::now() - lifetime } else { Utc::now() + lifetime };
    Session { token: token.into(), expires: Some(expires) }
}

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

/// Stands in for a token service: issues numbered one-hour tokens, and refuses once told to.
struct TokenService {
    issued: AtomicUsize,
    refusing: Arc<AtomicBool>,
}

#[async_trait]
impl Refresher for TokenService {
    type Credential = Session;

    async fn refresh(&self, _: &Session, _: &RefreshContext) -> Result<Session, RefreshError> {
        if self.refusing.load(Ordering::SeqCst) {
            return Err(RefreshError::InvalidGrant);
        }
        let number = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(session(format!("session-token-{number:04}"), HOUR, false))
    }
}

#[tokio::main]
async fn main() -> credential::Result<()> {
    let refusing = Arc::new(AtomicBool::new(false));
    let service = TokenService { issued: AtomicUsize::new(0), refusing: Arc::clone(&refusing) };
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate()?)
        .refresher(service)
        .build()
        .await?;
    // Created already expired, as a token left over from yesterday would be.
    manager
        .create("api/session", session("session-token-0000".into(), MINUTE, true))
        .await?
        .activate()
        .await?;

    let ctx = manager.context(Principal::new("workflow/sync", "action/fetch"));
    let reads: Vec<_> = (0..50)
        .map(|_| {
            let ctx = ctx.clone();
            tokio::spawn(async move { ctx.get::<Session>("api/session").await })
        })
        .collect();
    for read in reads {
        let token = read.await.map_err(|_| Error::TaskFailed)??;
        assert_eq!(token.token.expose_secret(), "session-token-0001");
    }
    let history = manager.history("api/session").await?;
    let refreshes = manager
        .audit()
        .query(&AuditQuery::all().credential("api/session"))
        .await?
        .into_iter()
        .filter(|event| event.action == AuditAction::Refresh)
        .count();
    println!("50 reads of the expired token: {refreshes} refresh, now version {}", history.len());

    // The service stops honouring the grant: the credential is kept, and reads say why they fail.
    refusing.store(true, Ordering::SeqCst);
    let active = manager.load::<Session>("api/session").await?.into_active()?;
    let expired =
        active.rotate(session("session-token-9999".into(), MINUTE, true)).await?.commit().await?;
    match ctx.get::<Session>("api/session").await {
        Err(error @ Error::ReauthRequired { .. }) => println!("refused: {error}"),
        other => panic!("expected ReauthRequired, got {:?}", other.map(|_| ())),
    }
    // An operator puts in a new session; reads work again.
    let marked = manager.load::<Session>("api/session").await?.into_active()?;
    assert_eq!(marked.version(), expired.version());
    marked.rotate(session("session-token-from-login".into(), HOUR, false)).await?.commit().await?;
    let token = ctx.get::<Session>("api/session").await?;
    println!("after the operator's rotation: {token:?}");
    manager.shutdown().await?;
    Ok(())
}
