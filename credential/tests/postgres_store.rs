//! The PostgreSQL store against a real server (`.ci/postgres.sh start`): conformance, schema
//! migration, TLS and login errors, the change feed, the audit table, and that the server never
//! sees a secret. Each test works in a schema of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::support;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use credential::audit::{AuditAction, AuditQuery, AuditSink, PostgresAuditSink};
use credential::kinds::ApiKey;
use credential::store::conformance::{self, sample_record};
use credential::store::{ChangeListener, FeedKind, PostgresStore, Precondition, Store};
use credential::{Error, ExposeSecret, KeyRing, Manager, Principal};
use support::{PgDatabase, PgSchema, feed_backends, postgres_state_dir, psql};

/// How long a test waits for something that should take milliseconds before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// `url` under another application name: the same database through connections of their own, as
/// another process would have (stores in one process on the same URL share their connections).
fn elsewhere(url: &str) -> String {
    format!("{url}&application_name=credential-elsewhere")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let Some(schema) = PgSchema::create("conformance") else { return };
    conformance::run_all(Arc::new(PostgresStore::connect(&schema.url).await.unwrap())).await;
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_store_passes_the_conformance_suite_on_a_current_thread_runtime() {
    let Some(schema) = PgSchema::create("conformance_current") else { return };
    conformance::run_all(Arc::new(PostgresStore::connect(&schema.url).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_behind_pgbouncer_passes_the_conformance_suite() {
    let Some(database) = PgDatabase::create("conformance_pgbouncer") else { return };
    let store = PostgresStore::builder(&database.pooled_url)
        .behind_pooler(&database.url)
        .connect()
        .await
        .unwrap();
    conformance::run_all(Arc::new(store.clone())).await;

    // Its writes, made through the pooler, reach a listener on the server; the store's own feed
    // listens there directly and hears writes made elsewhere.
    let direct = PostgresStore::connect(&database.url).await.unwrap();
    let (heard_directly, directly) = hearing();
    let _direct_feed = direct.watch(heard_directly).unwrap().unwrap();
    let (heard_behind, behind) = hearing();
    let _pooled_feed = store.watch(heard_behind).unwrap().unwrap();
    directly.caught_up_after(SystemTime::now());
    behind.caught_up_after(SystemTime::now());
    store.put(sample_record("pooled/one", "api_key", b"x"), Precondition::Absent).await.unwrap();
    direct.put(sample_record("direct/one", "api_key", b"x"), Precondition::Absent).await.unwrap();
    let both = SystemTime::now();
    directly.caught_up_after(both);
    behind.caught_up_after(both);
    assert!(directly.changed.try_iter().any(|id| id == "pooled/one"));
    assert!(behind.changed.try_iter().any(|id| id == "direct/one"));

    // The audit table is written and read through the pooler too.
    let audit = PostgresAuditSink::new(&store).unwrap();
    let manager = Manager::builder()
        .store(store.clone())
        .key_ring(KeyRing::new(credential::crypto::MasterKey::generate().unwrap()))
        .audit(audit.clone())
        .build()
        .await
        .unwrap();
    manager.create("pooled/key", ApiKey::new("sk_pooled".into())).await.unwrap();
    manager.shutdown().await.unwrap();
    let created = audit.query(&AuditQuery::all().credential("pooled/key")).await.unwrap();
    assert!(created.iter().any(|event| event.action == AuditAction::Create), "{created:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooler_that_finds_another_schema_than_the_direct_url_is_refused() {
    let Some(database) = PgDatabase::create("pooler_schema") else { return };
    psql(&database.url, "CREATE SCHEMA elsewhere");
    // The direct URL keeps the tables in `elsewhere`; the pooler's connections would use `public`.
    let direct = format!("{}&options=-csearch_path%3Delsewhere", database.url);
    let refused =
        PostgresStore::builder(&database.pooled_url).behind_pooler(&direct).connect().await;
    match refused {
        Err(Error::Config { reason }) => assert!(reason.contains("another schema"), "{reason}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_in_one_process_on_one_url_share_one_pool_and_one_listener() {
    let Some(schema) = PgSchema::create("shared_pool") else { return };
    let name = format!("credential-shared-{}", std::process::id());
    let url = format!("{}&application_name={name}", schema.url);
    let key = credential::crypto::MasterKey::generate().unwrap();
    let mut managers = Vec::new();
    for _ in 0..8 {
        let manager = Manager::builder()
            .store(PostgresStore::connect(&url).await.unwrap())
            .key_ring(KeyRing::new(key.clone()))
            .cache(credential::CacheConfig::disabled())
            .build()
            .await
            .unwrap();
        managers.push(manager);
    }
    managers[0].create("shared/key", ApiKey::new("sk_shared".into())).await.unwrap();
    let reading: Vec<_> = managers
        .iter()
        .flat_map(|manager| (0..8).map(move |_| manager.clone()))
        .map(|manager| {
            tokio::spawn(async move {
                for _ in 0..20 {
                    manager.load::<ApiKey>("shared/key").await.unwrap();
                }
            })
        })
        .collect();
    for task in reading {
        task.await.unwrap();
    }
    let pooled = |name: &str| {
        // Not psql's own connection, which the URL names alike.
        let count = format!(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = '{name}' AND pid <> pg_backend_pid()"
        );
        psql(&url, &count).trim().parse::<usize>().unwrap()
    };
    assert!(
        pooled(&name) <= PostgresStore::DEFAULT_POOL_SIZE,
        "{} pooled connections for 8 managers",
        pooled(&name)
    );
    assert_eq!(feed_backends(&url, std::process::id()).len(), 1, "one listener for 8 managers");

    // A store that asks for a bigger pool makes the shared one bigger.
    let bigger = PostgresStore::connect_with_pool_size(&url, 6).await.unwrap();
    assert_eq!(bigger.pool_size(), 6);
    drop(bigger);

    // The connections close with the last handle on them.
    drop(managers);
    let deadline = std::time::Instant::now() + PATIENCE;
    while pooled(&name) > 0 || !feed_backends(&url, std::process::id()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "connections left open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_connection_made_on_a_runtime_that_is_not_running_still_serves_the_pool() {
    let Some(schema) = PgSchema::create("runtime_idle") else { return };
    let current = || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // One connection, made by a call on a runtime that then stops running but stays (as a
    // writer thread's runtime between batches).
    let idle = current();
    let store = idle.block_on(async {
        let store = PostgresStore::connect_with_pool_size(&schema.url, 1).await.unwrap();
        store.put(sample_record("idle/one", "api_key", b"x"), Precondition::Absent).await.unwrap();
        store
    });
    // The same connection serves calls on another runtime.
    current().block_on(async {
        let reads = async {
            for _ in 0..20 {
                assert!(store.get("idle/one").await.unwrap().is_some());
            }
        };
        tokio::time::timeout(PATIENCE, reads).await.expect("the pooled connection stalled");
    });
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_at_once_migrate_one_after_the_other() {
    let Some(schema) = PgSchema::create("migrate_at_once") else { return };
    let connecting: Vec<_> = (0..6)
        .map(|_| {
            let url = schema.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    for store in connecting {
        store.await.unwrap().unwrap();
    }
    assert_eq!(schema.psql("SELECT version FROM credential_schema"), "3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_schema_is_refused_untouched() {
    let Some(schema) = PgSchema::create("newer_schema") else { return };
    let store = PostgresStore::connect(&schema.url).await.unwrap();
    store.put(sample_record("newer/one", "api_key", b"x"), Precondition::Absent).await.unwrap();
    drop(store);
    schema.psql("UPDATE credential_schema SET version = 99");
    let before = schema.psql("SELECT id, revision, md5(record) FROM credential_records");
    match PostgresStore::connect(&schema.url).await {
        Err(Error::UnsupportedSchema { found: 99, supported: 3 }) => {}
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
    assert_eq!(schema.psql("SELECT version FROM credential_schema"), "99\n");
    assert_eq!(schema.psql("SELECT id, revision, md5(record) FROM credential_records"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_from_before_the_key_usage_schema_are_not_vouched_for_until_rewritten() {
    let Some(schema) = PgSchema::create("key_usage_upgrade") else { return };
    let store = PostgresStore::connect(&schema.url).await.unwrap();
    store.put(sample_record("old/row", "api_key", b"x"), Precondition::Absent).await.unwrap();
    let record = store.get("old/row").await.unwrap().unwrap();
    let key_id = record.meta.key_id.clone();
    assert_eq!(store.key_ids_in_use("production").await.unwrap(), Some([key_id.clone()].into()));
    // As a row written before the schema kept key ids looks after the migration.
    schema.psql("UPDATE credential_records SET key_id = '' WHERE id = 'old/row'");
    assert_eq!(store.key_ids_in_use("production").await.unwrap(), None, "unknown: list instead");
    store.put(record, Precondition::Revision(1)).await.unwrap();
    assert_eq!(store.key_ids_in_use("production").await.unwrap(), Some([key_id].into()));
}

/// The test server's URL with the password replaced.
fn with_password(url: &str, password: &str) -> String {
    let (scheme_user, rest) = url.split_once(':').unwrap();
    let (user, rest) = rest.split_once(':').unwrap();
    let (_, host) = rest.split_once('@').unwrap();
    format!("{scheme_user}:{user}:{password}@{host}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_error_that_does_not_repeat_it() {
    let Some(schema) = PgSchema::create("wrong_password") else { return };
    let url = with_password(&schema.url, "hunter2-canary");
    let error = PostgresStore::connect(&url).await.unwrap_err();
    let shown = format!("{error} {error:?} {}", std::error::Error::source(&error).unwrap());
    assert!(matches!(error, Error::Storage { backend: "postgres", .. }), "{error:?}");
    assert!(!error.is_transient(), "a wrong password does not get better by retrying");
    assert!(shown.contains("password authentication failed"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");

    // The right password is not shown either, by the store or its audit sink.
    let password = schema.url.split_once("://").unwrap().1.split_once('@').unwrap().0;
    let password = password.split_once(':').unwrap().1;
    let store = PostgresStore::connect(&schema.url).await.unwrap();
    let audit = PostgresAuditSink::new(&store).unwrap();
    let shown = format!("{store:?} {audit:?}");
    assert!(shown.contains("localhost"), "{shown}");
    assert!(!shown.contains(password), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused() {
    let Some(schema) = PgSchema::create("bad_certificate") else { return };
    let trusted = postgres_state_dir().join("ca.crt");
    let untrusted = postgres_state_dir().join("other-ca.crt");
    let url = schema.url.replace(trusted.to_str().unwrap(), untrusted.to_str().unwrap());
    assert_ne!(url, schema.url);
    let error = PostgresStore::connect(&url).await.unwrap_err();
    let shown = format!("{error} {}", std::error::Error::source(&error).unwrap());
    assert!(matches!(error, Error::Storage { backend: "postgres", .. }), "{error:?}");
    assert!(shown.contains("certificate"), "{shown}");

    // Without a CA file `verify-full` checks against the public roots, which do not know ours
    // either; `require` encrypts without checking, as libpq does.
    let public_roots = schema.url.replace(&format!("&sslrootcert={}", trusted.display()), "");
    assert!(PostgresStore::connect(&public_roots).await.is_err());
    let unchecked = public_roots.replace("sslmode=verify-full", "sslmode=require");
    PostgresStore::connect(&unchecked).await.unwrap();
    let missing = schema.url.replace("ca.crt", "missing-ca.crt");
    assert!(matches!(
        PostgresStore::connect(&missing).await,
        Err(Error::InvalidCertificate { .. })
    ));
}

/// A listener that passes what the feed reports into channels.
struct Heard {
    changed: Mutex<Sender<String>>,
    lost: Mutex<Sender<()>>,
    caught_up: Mutex<Sender<SystemTime>>,
}

struct Hearing {
    changed: Receiver<String>,
    lost: Receiver<()>,
    caught_up: Receiver<SystemTime>,
}

fn hearing() -> (Arc<Heard>, Hearing) {
    let (changed, changed_rx) = channel();
    let (lost, lost_rx) = channel();
    let (caught_up, caught_up_rx) = channel();
    let heard = Heard {
        changed: Mutex::new(changed),
        lost: Mutex::new(lost),
        caught_up: Mutex::new(caught_up),
    };
    (Arc::new(heard), Hearing { changed: changed_rx, lost: lost_rx, caught_up: caught_up_rx })
}

impl ChangeListener for Heard {
    fn changed(&self, id: &str) {
        let _ = self.changed.lock().unwrap().send(id.to_owned());
    }

    fn lost(&self) {
        let _ = self.lost.lock().unwrap().send(());
    }

    fn caught_up(&self, as_of: SystemTime) {
        let _ = self.caught_up.lock().unwrap().send(as_of);
    }
}

impl Hearing {
    /// Waits until the feed vouches for a moment after `after`.
    fn caught_up_after(&self, after: SystemTime) {
        loop {
            let as_of = self.caught_up.recv_timeout(PATIENCE).expect("the feed never caught up");
            if as_of > after {
                return;
            }
        }
    }

    fn drain(&self) {
        while self.changed.try_recv().is_ok() {}
        while self.lost.try_recv().is_ok() {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_reports_other_handles_writes_before_it_vouches_for_a_later_moment() {
    let Some(schema) = PgSchema::create("feed_reports") else { return };
    let watched = PostgresStore::connect(&schema.url).await.unwrap();
    let other = PostgresStore::connect(&elsewhere(&schema.url)).await.unwrap();
    let (heard, hearing) = hearing();
    let feed = watched.watch(heard).unwrap().unwrap();
    assert_eq!(feed.kind(), FeedKind::Polled);
    hearing.caught_up_after(SystemTime::now());
    hearing.drain();

    for round in 0..20 {
        let id = format!("feed/round-{round}");
        other.put(sample_record(&id, "api_key", b"x"), Precondition::Absent).await.unwrap();
        let committed = SystemTime::now();
        // Once the feed vouches for a moment after the commit, it has reported the write.
        hearing.caught_up_after(committed);
        let reported: Vec<String> = hearing.changed.try_iter().collect();
        assert!(reported.contains(&id), "round {round}: {reported:?}");
    }

    // A write that loses its compare-and-swap changes nothing and notifies nothing.
    let conflict = other.put(sample_record("feed/round-0", "api_key", b"y"), Precondition::Absent);
    assert!(matches!(conflict.await, Err(Error::Conflict { .. })));
    hearing.caught_up_after(SystemTime::now());
    assert_eq!(hearing.changed.try_iter().count(), 0);
    drop(feed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_listener_is_reported_lost_and_the_feed_comes_back() {
    let Some(schema) = PgSchema::create("feed_terminated") else { return };
    let watched = PostgresStore::connect(&schema.url).await.unwrap();
    let (heard, hearing) = hearing();
    let _feed = watched.watch(heard).unwrap().unwrap();
    hearing.caught_up_after(SystemTime::now());
    hearing.drain();
    let backends = feed_backends(&schema.url, std::process::id());
    assert_eq!(backends.len(), 1, "{backends:?}");
    psql(&schema.url, &format!("SELECT pg_terminate_backend({})", backends[0]));
    hearing.lost.recv_timeout(PATIENCE).expect("the loss was never reported");
    let terminated = SystemTime::now();
    hearing.caught_up_after(terminated);
    let now_listening = feed_backends(&schema.url, std::process::id());
    assert_eq!(now_listening.len(), 1);
    assert_ne!(now_listening, backends);

    // And it hears writes again.
    hearing.drain();
    let other = PostgresStore::connect(&elsewhere(&schema.url)).await.unwrap();
    other.put(sample_record("feed/after", "api_key", b"x"), Precondition::Absent).await.unwrap();
    hearing.caught_up_after(SystemTime::now());
    assert!(hearing.changed.try_iter().any(|id| id == "feed/after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sees_sealed_records_and_audit_rows_never_a_secret() {
    const CANARY: &str = "sk_live_CANARY_6a1f0c3e";
    let Some(schema) = PgSchema::create("sealed_only") else { return };
    let store = PostgresStore::connect(&schema.url).await.unwrap();
    let audit = PostgresAuditSink::new(&store).unwrap();
    let manager = Manager::builder()
        .store(store)
        .key_ring(KeyRing::generate().unwrap())
        .audit(audit.clone())
        .build()
        .await
        .unwrap();
    let active = manager
        .create("payments/stripe", ApiKey::new(CANARY.into()))
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();
    // A mutation's audit event is committed before the mutation returns.
    assert_eq!(
        schema.psql("SELECT count(*) FROM credential_audit WHERE action = 'activate'"),
        "1\n"
    );
    let ctx = manager.context(Principal::named("billing"));
    for _ in 0..3 {
        assert_eq!(
            ctx.get::<ApiKey>("payments/stripe").await.unwrap().key.expose_secret().len(),
            CANARY.len()
        );
    }
    active.rotate(ApiKey::new(format!("{CANARY}-2").into())).await.unwrap().commit().await.unwrap();

    let events = audit.query(&AuditQuery::all().credential("payments/stripe")).await.unwrap();
    let mut actions: Vec<AuditAction> = events.iter().map(|event| event.action).collect();
    // Identical reads queued together are recorded as one event with a count.
    actions.dedup();
    assert_eq!(
        actions,
        [
            AuditAction::Create,
            AuditAction::Activate,
            AuditAction::Read,
            AuditAction::Rotate,
            AuditAction::Commit
        ],
        "{events:?}"
    );
    let reads: u64 = events
        .iter()
        .filter(|event| event.action == AuditAction::Read)
        .map(|event| event.count)
        .sum();
    assert_eq!(reads, 3);

    let everything = schema.psql(
        "SELECT encode(record, 'escape') FROM credential_records
         UNION ALL SELECT row_to_json(a)::text FROM credential_audit a",
    );
    assert!(everything.contains("payments/stripe"));
    assert!(!everything.contains("CANARY"), "a secret reached the server");
}

/// A role that may hold one connection at a time, owning a schema of its own: a server "full" for
/// that role alone (PostgreSQL refuses it as it refuses a client past `max_connections`), without
/// touching the other tests' connections. Dropped with its schema.
struct OneConnectionRole {
    admin_url: String,
    name: String,
    /// The role's URL, with its schema as the search path.
    url: String,
}

impl OneConnectionRole {
    fn create(test: &str) -> Option<Self> {
        let admin_url = support::postgres_server_or_skip(test)?;
        let name = format!("full_{test}_{}", std::process::id());
        let password = "one-connection-role";
        psql(
            &admin_url,
            &format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; DROP ROLE IF EXISTS {name};
                 CREATE ROLE {name} LOGIN PASSWORD '{password}' CONNECTION LIMIT 1;
                 CREATE SCHEMA {name} AUTHORIZATION {name}"
            ),
        );
        let (scheme, rest) = admin_url.split_once("://").unwrap();
        let server = &rest[rest.find('@').unwrap() + 1..];
        let url = format!("{scheme}://{name}:{password}@{server}&options=-csearch_path%3D{name}");
        Some(Self { admin_url, name, url })
    }
}

impl Drop for OneConnectionRole {
    fn drop(&mut self) {
        let name = &self.name;
        let _ = std::process::Command::new("psql")
            .args([self.admin_url.as_str(), "-qAtc"])
            .arg(format!("DROP SCHEMA IF EXISTS {name} CASCADE; DROP ROLE IF EXISTS {name}"))
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_too_full_to_connect_is_waited_out_then_named_in_a_transient_error() {
    let Some(role) = OneConnectionRole::create("wait") else { return };
    let spans = support::spans::capture();
    // The one connection the role may have, kept by a store's pool.
    let holder = PostgresStore::connect(&role.url).await.unwrap();
    holder.put(sample_record("full/one", "api_key", b"x"), Precondition::Absent).await.unwrap();

    // Another store (on a URL of its own, so with connections of its own) refused for it waits,
    // and says so; given the connection back, it goes on.
    let other_url = format!("{}&application_name=credential-other", role.url);
    let waiting = tokio::spawn({
        let url = other_url.clone();
        async move {
            let store = PostgresStore::connect(&url).await?;
            store.get("full/one").await
        }
    });
    let said = "the server refuses new connections (too many clients); waiting";
    while !spans.text.lock().unwrap().contains(said) && !waiting.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(holder);
    assert!(waiting.await.unwrap().unwrap().is_some(), "the waiting store read the record");

    // Held for longer than a store waits: the server's refusal is the error, transient, and says
    // what happened.
    let holder = PostgresStore::connect(&role.url).await.unwrap();
    assert!(holder.get("full/one").await.unwrap().is_some());
    let refused = PostgresStore::connect(&other_url).await.unwrap_err();
    assert!(refused.is_transient(), "{refused:?}");
    assert!(refused.to_string().contains("too many connections"), "{refused}");
    drop(holder);
}
