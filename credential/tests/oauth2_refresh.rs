//! OAuth 2.0 refresh against a real OpenID provider (`oidc-provider` on loopback: 5-second access
//! tokens, rotating refresh tokens whose reuse revokes the grant), counting the token requests the
//! provider served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use credential::audit::{AuditAction, AuditOutcome, AuditQuery, AuditSink, MemoryAuditSink};
use credential::kinds::{OAuth2Client, OAuth2Token};
use credential::oauth2::OAuth2Refresher;
use credential::store::Store;
use credential::{
    Error, ExposeSecret, KeyRing, Manager, MemoryStore, Principal, RefreshConfig, SqliteStore, Utc,
};
use sha2::Digest;
use support::oidc::{CLIENT_SECRET, OidcProvider};
use support::scratch_dir;

const CLIENT: &str = "idp/client";
const TOKEN: &str = "idp/token";

struct Fixture {
    manager: Manager,
    audit: Arc<MemoryAuditSink>,
    /// Every span and event while the fixture lives.
    spans: support::spans::Capture,
}

impl Fixture {
    async fn new(store: Arc<dyn Store>, ring: KeyRing, refresher: OAuth2Refresher) -> Self {
        Self::configured(store, ring, refresher, RefreshConfig::default()).await
    }

    async fn configured(
        store: Arc<dyn Store>,
        ring: KeyRing,
        refresher: OAuth2Refresher,
        config: RefreshConfig,
    ) -> Self {
        let spans = support::spans::capture();
        let audit = Arc::new(MemoryAuditSink::new());
        let manager = Manager::builder()
            .store(store)
            .key_ring(ring)
            .audit(Arc::clone(&audit))
            .refresher(refresher)
            .refresh_config(config)
            .build()
            .await
            .unwrap();
        Self { manager, audit, spans }
    }

    /// A provider, and a manager on a memory store whose client credential points at it.
    async fn on_a_provider() -> Option<(OidcProvider, Self)> {
        if !support::oidc::available() {
            return None;
        }
        let provider = OidcProvider::start();
        let refresher = OAuth2Refresher::new().unwrap();
        let fixture = Self::new(memory(), KeyRing::generate().unwrap(), refresher).await;
        fixture.client(&provider).await;
        Some((provider, fixture))
    }

    /// The client credential for `provider`, active.
    async fn client(&self, provider: &OidcProvider) {
        let client = OAuth2Client {
            token_endpoint: provider.token_endpoint(),
            client_id: support::oidc::CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.into(),
            scopes: vec!["api".to_owned()],
        };
        self.manager.create(CLIENT, client).await.unwrap().activate().await.unwrap();
    }

    /// Token `id`, active, with `refresh_token`, expiring `expires_in_seconds` from now.
    async fn token(&self, id: &str, refresh_token: Option<String>, expires_in_seconds: i64) {
        self.manager.create(id, stale_token(refresh_token, expires_in_seconds)).await.unwrap();
        self.manager
            .load::<OAuth2Token>(id)
            .await
            .unwrap()
            .into_draft()
            .unwrap()
            .activate()
            .await
            .unwrap();
    }

    async fn get(&self, id: &str) -> credential::Result<Arc<OAuth2Token>> {
        self.manager.context(Principal::named("workflow")).get::<OAuth2Token>(id).await
    }

    /// Everything the audit trail holds, as JSON.
    async fn audit_text(&self) -> String {
        serde_json::to_string(&self.audit.query(&AuditQuery::all()).await.unwrap()).unwrap()
    }

    async fn refresh_events(&self, outcome: AuditOutcome) -> usize {
        let events = self.audit.query(&AuditQuery::all().credential(TOKEN)).await.unwrap();
        events
            .iter()
            .filter(|event| event.action == AuditAction::Refresh && event.outcome == outcome)
            .count()
    }
}

fn stale_token(refresh_token: Option<String>, expires_in_seconds: i64) -> OAuth2Token {
    OAuth2Token {
        access_token: "issued-at-log-in".into(),
        refresh_token: refresh_token.map(Into::into),
        token_type: "Bearer".into(),
        scopes: vec![],
        expires: Some(Utc::now() + chrono::Duration::seconds(expires_in_seconds)),
        client: Some(CLIENT.to_owned()),
    }
}

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

fn secret(token: &OAuth2Token) -> String {
    token.access_token.expose_secret().to_owned()
}

/// Asserts that none of `secrets` is in any error, span or event, or the audit trail.
async fn assert_nowhere(fixture: &Fixture, secrets: &[&str], errors: &[Error]) {
    let errors: String = errors.iter().map(|error| format!("{error} {error:?}\n")).collect();
    let spans = fixture.spans.text.lock().unwrap().clone();
    let audit = fixture.audit_text().await;
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        assert!(!errors.contains(secret), "a secret in an error: {errors}");
        assert!(!spans.contains(secret), "a secret in a span or event");
        assert!(!audit.contains(secret), "a secret in the audit trail");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_fetches_a_new_token_once_the_old_one_expired() {
    let Some((provider, fixture)) = Fixture::on_a_provider().await else { return };
    fixture.token(TOKEN, None, -1).await;

    let fresh = fixture.get(TOKEN).await.unwrap();
    assert_ne!(secret(&fresh), "issued-at-log-in");
    assert!(fresh.expires.unwrap() > Utc::now());
    assert_eq!(fresh.scopes, ["api"]);
    assert_eq!(provider.successes("client_credentials"), 1);
    // Served from the cache now: no second request.
    assert_eq!(secret(&fixture.get(TOKEN).await.unwrap()), secret(&fresh));
    assert_eq!(provider.requests(), 1);
    assert_eq!(fixture.refresh_events(AuditOutcome::Success).await, 1);
    assert_eq!(fixture.manager.history(TOKEN).await.unwrap().len(), 2);
    assert_nowhere(&fixture, &[&secret(&fresh), CLIENT_SECRET], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_and_the_rotated_refresh_token_is_kept() {
    let Some((provider, fixture)) = Fixture::on_a_provider().await else { return };
    let first_refresh_token = provider.refresh_token();
    fixture.token(TOKEN, Some(first_refresh_token.clone()), -1).await;

    let fresh = fixture.get(TOKEN).await.unwrap();
    let rotated = fresh.refresh_token.as_ref().unwrap().expose_secret().to_owned();
    assert_ne!(rotated, first_refresh_token, "the provider rotates refresh tokens");
    assert_eq!(provider.successes("refresh_token"), 1);
    // What was stored is what a restart reads: the new refresh token, which the provider honours.
    let stored = fixture.manager.load::<OAuth2Token>(TOKEN).await.unwrap().into_active().unwrap();
    assert_eq!(stored.credential().refresh_token.as_ref().unwrap().expose_secret(), rotated);
    assert!(provider.redeem(&rotated).contains("access_token"));
    assert_nowhere(
        &fixture,
        &[&secret(&fresh), &rotated, &first_refresh_token, CLIENT_SECRET],
        &[],
    )
    .await;
    // What the refresh produced and what it replaced are secrets the manager served.
    let masker = fixture.manager.masker();
    for value in [secret(&fresh), rotated, first_refresh_token] {
        assert_eq!(masker.mask(&format!("token={value};")), "token=***;");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_the_window_the_valid_token_is_served_while_a_refresh_runs() {
    let Some((provider, fixture)) = Fixture::on_a_provider().await else { return };
    fixture.token(TOKEN, Some(provider.refresh_token()), -1).await;
    // A 5-second token from the provider: due after half its lifetime.
    let first = fixture.get(TOKEN).await.unwrap();
    let first_expires = first.expires.unwrap();
    let due = first_expires - chrono::Duration::milliseconds(2500);
    tokio::time::sleep((due - Utc::now()).to_std().unwrap_or_default()).await;

    // Every read is served at once with a valid token; one of them starts the refresh, and a
    // later one sees its result.
    let mut served = Vec::new();
    let next = loop {
        let token = fixture.get(TOKEN).await.unwrap();
        assert!(token.expires.unwrap() > Utc::now(), "an expired token was served");
        if secret(&token) != secret(&first) {
            break token;
        }
        served.push(Utc::now());
        tokio::task::yield_now().await;
    };
    assert!(!served.is_empty(), "the old token was served inside the window");
    assert!(next.expires.unwrap() > first_expires);
    assert_eq!(provider.successes("refresh_token"), 2);
    // The refresh was committed before the old token expired: ahead, not after the fact.
    let events = fixture.audit.query(&AuditQuery::all().credential(TOKEN)).await.unwrap();
    let ahead = events.iter().rfind(|event| event.action == AuditAction::Refresh).unwrap();
    assert!(ahead.time < first_expires, "refreshed at {}, expiry {first_expires}", ahead.time);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_reads_of_an_expired_token_make_one_token_request() {
    let Some((provider, fixture)) = Fixture::on_a_provider().await else { return };
    fixture.token(TOKEN, Some(provider.refresh_token()), -1).await;
    let fixture = Arc::new(fixture);
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (fixture, barrier) = (Arc::clone(&fixture), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                secret(&fixture.get(TOKEN).await.unwrap())
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for reader in readers {
        tokens.push(reader.await.unwrap());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every reader got the one new token");
    assert_eq!(provider.requests(), 1);
    assert_eq!(provider.successes("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_refresh_token_marks_the_credential_and_keeps_it() {
    let Some((provider, fixture)) = Fixture::on_a_provider().await else { return };
    let used = provider.refresh_token();
    assert!(provider.redeem(&used).contains("access_token"), "used once, elsewhere");
    fixture.token(TOKEN, Some(used.clone()), -1).await;

    let refused = fixture.get(TOKEN).await.unwrap_err();
    assert!(matches!(&refused, Error::ReauthRequired { id } if id == TOKEN), "{refused:?}");
    let again = fixture.get(TOKEN).await.unwrap_err();
    assert!(matches!(again, Error::ReauthRequired { .. }));
    assert_eq!(provider.requests(), 2, "the mark is read, the provider not asked again");
    assert_eq!(provider.stats()["error"]["refresh_token:invalid_grant"], 1);
    // Kept, marked, audited; an operator's rotation clears the mark.
    let marked = fixture.manager.load::<OAuth2Token>(TOKEN).await.unwrap().into_active().unwrap();
    assert!(marked.meta().refresh.reauth_required);
    assert_eq!(fixture.refresh_events(AuditOutcome::Success).await, 1);
    let replacement = stale_token(Some(provider.refresh_token()), 3600);
    marked.rotate(replacement).await.unwrap().commit().await.unwrap();
    let served = fixture.get(TOKEN).await.unwrap();
    assert_eq!(secret(&served), "issued-at-log-in");
    assert_nowhere(&fixture, &[&used, CLIENT_SECRET], &[refused, again]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_provider_down_the_breaker_opens_valid_tokens_are_served_expired_ones_refused() {
    if !support::oidc::available() {
        return;
    }
    let provider = OidcProvider::start();
    let refresher = OAuth2Refresher::new().unwrap().breaker(2, Duration::from_millis(500));
    let config = RefreshConfig::default()
        .wait(Duration::from_secs(5))
        .deadline(Duration::from_secs(1), Duration::from_secs(3));
    let fixture =
        Fixture::configured(memory(), KeyRing::generate().unwrap(), refresher, config).await;
    fixture.client(&provider).await;
    fixture.token("idp/valid", None, 3600).await;
    fixture.token(TOKEN, None, -1).await;
    let port = provider.stop();

    assert_eq!(secret(&fixture.get("idp/valid").await.unwrap()), "issued-at-log-in");
    let down = fixture.get(TOKEN).await.unwrap_err();
    assert!(matches!(&down, Error::RefreshFailed { transient: true, .. }), "{down:?}");
    // Once the failure is no longer the answer (a second later), the next refresh finds the
    // breaker open and does not reach for the provider.
    let open = loop {
        let error = fixture.get(TOKEN).await.unwrap_err();
        assert!(matches!(&error, Error::RefreshFailed { transient: true, .. }), "{error:?}");
        if error.to_string().contains("circuit breaker is open") {
            break error;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(secret(&fixture.get("idp/valid").await.unwrap()), "issued-at-log-in");

    let provider = OidcProvider::start_on(port);
    let recovered = loop {
        match fixture.get(TOKEN).await {
            Ok(token) => break token,
            Err(Error::RefreshFailed { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(other) => panic!("{other:?}"),
        }
    };
    assert!(recovered.expires.unwrap() > Utc::now());
    assert_eq!(provider.successes("client_credentials"), 1);
    assert_nowhere(&fixture, &[&secret(&recovered), CLIENT_SECRET], &[down, open]).await;
}

/// The second process of the two-process test: reads `TOKEN` from the SQLite file when told to
/// and prints a digest of the access token it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the test below"]
async fn second_process() {
    let Ok(dir) = std::env::var("REFRESH_DIR") else { return };
    let dir = Path::new(&dir);
    let store = Arc::new(SqliteStore::open(dir.join("credentials.db")).await.unwrap());
    let ring = KeyRing::from_file(dir.join("master.key")).unwrap();
    let fixture = Fixture::new(store, ring, OAuth2Refresher::new().unwrap()).await;
    println!("@@READY");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let token = fixture.get(TOKEN).await.unwrap();
    println!("@@GOT {}", digest(&token));
}

fn digest(token: &OAuth2Token) -> String {
    base16ct::lower::encode_string(&sha2::Sha256::digest(token.access_token.expose_secret()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_sqlite_file_make_one_token_request() {
    if !support::oidc::available() {
        return;
    }
    let provider = OidcProvider::start();
    let dir = scratch_dir("oauth2-two-processes");
    let key = credential::crypto::MasterKey::generate().unwrap();
    key.write_file(dir.join("master.key")).unwrap();
    let open = || async {
        let store = Arc::new(SqliteStore::open(dir.join("credentials.db")).await.unwrap());
        Fixture::new(
            store,
            KeyRing::from_file(dir.join("master.key")).unwrap(),
            OAuth2Refresher::new().unwrap(),
        )
        .await
    };
    let fixture = open().await;
    fixture.client(&provider).await;
    let refresh_token = provider.refresh_token();
    fixture.token(TOKEN, Some(refresh_token), -1).await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            support::test_named(module_path!(), "second_process").as_str(),
            "--nocapture",
        ])
        .env("REFRESH_DIR", &*dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map(Result::unwrap);
    let mut tagged =
        move || lines.find_map(|line| line.strip_prefix("@@").map(str::to_owned)).unwrap();
    assert_eq!(tagged(), "READY");
    // Both read the expired token at once.
    writeln!(stdin, "GO").unwrap();
    let mine = fixture.get(TOKEN).await.unwrap();
    let theirs = tagged();
    assert!(child.wait().unwrap().success());

    assert_eq!(theirs, format!("GOT {}", digest(&mine)), "both see the one new token");
    assert_eq!(provider.requests(), 1);
    assert_eq!(provider.successes("refresh_token"), 1);
    // The grant was not revoked: the stored refresh token still works.
    let rotated = mine.refresh_token.as_ref().unwrap().expose_secret().to_owned();
    assert!(provider.redeem(&rotated).contains("access_token"));
}
