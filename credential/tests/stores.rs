//! Every backend passes the conformance suite; backend-specific guarantees and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use credential::store::conformance::{self, sample_record};
use credential::store::{CompositeStore, FileStore, Precondition, Store};
use credential::{Error, ListFilter, MemoryStore, SqliteStore};
use support::scratch_dir;

async fn seed(store: &dyn Store, id: &str, payload: &[u8]) {
    store.put(sample_record(id, "api_key", payload), Precondition::Absent).await.unwrap();
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_passes_the_conformance_suite() {
    let scratch = scratch_dir("file-conformance");
    let dir = scratch.join("store");
    conformance::run_all(Arc::new(FileStore::open(&dir).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_passes_the_conformance_suite() {
    let scratch = scratch_dir("sqlite-conformance");
    let path = scratch.join("credentials.db");
    conformance::run_all(Arc::new(SqliteStore::open(&path).await.unwrap())).await;
}

#[tokio::test(flavor = "current_thread")]
async fn sqlite_store_passes_the_conformance_suite_on_a_current_thread_runtime() {
    let scratch = scratch_dir("sqlite-conformance-current");
    let path = scratch.join("credentials.db");
    conformance::run_all(Arc::new(SqliteStore::open(&path).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn composite_store_passes_the_conformance_suite() {
    let store = CompositeStore::new(MemoryStore::new()).with_fallback(MemoryStore::new());
    conformance::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn composite_reads_fall_back_and_writes_go_to_the_primary() {
    let fallback = MemoryStore::new();
    seed(&fallback, "legacy/api", b"old").await;
    seed(&fallback, "shared/id", b"fallback").await;
    let primary = MemoryStore::new();
    seed(&primary, "shared/id", b"primary").await;
    let store = CompositeStore::new(primary).with_fallback(fallback);

    assert_eq!(store.get("legacy/api").await.unwrap().unwrap().versions[0].sealed, b"old");
    assert_eq!(store.get("shared/id").await.unwrap().unwrap().versions[0].sealed, b"primary");
    let ids: Vec<_> =
        store.list(&ListFilter::all()).await.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["legacy/api", "shared/id"]);
    // A write of a fallback-only record lands in the primary.
    seed(&store, "legacy/api", b"migrated").await;
    assert_eq!(store.get("legacy/api").await.unwrap().unwrap().versions[0].sealed, b"migrated");
}

#[tokio::test]
async fn file_store_creates_private_directory_and_files() {
    let scratch = scratch_dir("file-perms");
    let dir = scratch.join("nested/store");
    let store = FileStore::open(&dir).await.unwrap();
    seed(&store, "a/b", b"x").await;
    assert_eq!(mode(&dir), 0o700);
    for entry in std::fs::read_dir(&dir).unwrap() {
        assert_eq!(mode(&entry.unwrap().path()), 0o600);
    }
}

#[tokio::test]
async fn file_store_refuses_a_directory_others_can_read() {
    let scratch = scratch_dir("file-open-dir");
    let dir = scratch.join("store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(FileStore::open(&dir).await, Err(Error::InsecurePermissions { .. })));
}

#[tokio::test]
async fn file_store_ignores_and_cleans_leftovers_of_a_crashed_write() {
    let scratch = scratch_dir("file-leftovers");
    let dir = scratch.join("store");
    let store = FileStore::open(&dir).await.unwrap();
    seed(&store, "kept", b"x").await;
    let leftover = dir.join(".tmp-kept-999-0");
    std::fs::write(&leftover, b"half a record").unwrap();
    assert_eq!(store.list(&ListFilter::all()).await.unwrap().len(), 1);
    drop(store);
    let store = FileStore::open(&dir).await.unwrap();
    assert!(!leftover.exists());
    assert_eq!(store.get("kept").await.unwrap().unwrap().meta.revision, 1);
}

#[tokio::test]
async fn a_corrupted_record_file_is_a_clear_error_and_touches_nothing_else() {
    let scratch = scratch_dir("file-corrupt");
    let dir = scratch.join("store");
    let store = FileStore::open(&dir).await.unwrap();
    seed(&store, "good", b"x").await;
    seed(&store, "bad", b"y").await;
    let bad = dir.join("bad.rec");
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&bad, &bytes).unwrap();

    match store.get("bad").await {
        Err(Error::CorruptRecord { reason }) => assert!(reason.contains("bad.rec"), "{reason}"),
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
    assert!(store.get("good").await.unwrap().is_some());
    assert!(matches!(
        store.put(sample_record("bad", "api_key", b"z"), Precondition::Revision(1)).await,
        Err(Error::CorruptRecord { .. })
    ));
    assert_eq!(std::fs::read(&bad).unwrap(), bytes, "the corrupt file was modified");
}

#[tokio::test]
async fn a_database_from_a_newer_schema_is_refused_untouched() {
    let scratch = scratch_dir("sqlite-newer");
    let path = scratch.join("credentials.db");
    let store = SqliteStore::open(&path).await.unwrap();
    seed(&store, "keep/me", b"x").await;
    drop(store);
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match SqliteStore::open(&path).await {
        Err(Error::UnsupportedSchema { found, supported }) => {
            assert_eq!((found, supported), (99, 5))
        }
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn rows_from_before_the_key_usage_schema_are_not_vouched_for_until_rewritten() {
    let scratch = scratch_dir("sqlite-key-usage");
    let path = scratch.join("credentials.db");
    let store = SqliteStore::open(&path).await.unwrap();
    seed(&store, "old/row", b"x").await;
    let key_id = store.get("old/row").await.unwrap().unwrap().meta.key_id;
    let environment = "production";
    assert_eq!(store.key_ids_in_use(environment).await.unwrap(), Some([key_id.clone()].into()));
    // As a row written before the schema kept key ids looks after the migration.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE records SET key_id = '' WHERE id = 'old/row'", [])
        .unwrap();
    assert_eq!(store.key_ids_in_use(environment).await.unwrap(), None, "unknown: list instead");
    let record = store.get("old/row").await.unwrap().unwrap();
    let revision = record.meta.revision;
    store.put(record, Precondition::Revision(revision)).await.unwrap();
    assert_eq!(store.key_ids_in_use(environment).await.unwrap(), Some([key_id].into()));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let scratch = scratch_dir("sqlite-garbage");
    let path = scratch.join("credentials.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(error, Error::CorruptStore { backend: "sqlite", .. }), "{error:?}");
    assert_eq!(error.code(), "corrupt_store");
}

#[tokio::test]
async fn a_corrupted_row_is_a_clear_error_and_touches_nothing_else() {
    let scratch = scratch_dir("sqlite-corrupt");
    let path = scratch.join("credentials.db");
    let store = SqliteStore::open(&path).await.unwrap();
    seed(&store, "good", b"x").await;
    seed(&store, "bad", b"y").await;
    store
        .with_connection(|connection| {
            connection
                .execute("UPDATE records SET record = x'00010203' WHERE id = 'bad'", [])
                .map(drop)
                .map_err(|error| Error::storage("sqlite", false, error))
        })
        .await
        .unwrap();
    assert!(matches!(store.get("bad").await, Err(Error::CorruptRecord { .. })));
    assert!(store.get("good").await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_database_file_is_created_private() {
    let scratch = scratch_dir("sqlite-perms");
    let path = scratch.join("credentials.db");
    SqliteStore::open(&path).await.unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[derive(credential::Credential)]
#[credential(kind = "postgres")]
struct Postgres {
    #[secret]
    password: credential::SecretString,
    user: String,
    port: u16,
}

/// Runs in a child process whose environment the parent test sets.
#[tokio::test]
#[ignore = "run by env_store_reads_mapped_variables in a child process"]
async fn env_store_child() {
    // Run directly (`--include-ignored`), the parent has set nothing to read.
    if std::env::var_os("TEST_DB_PASSWORD").is_none() {
        return;
    }
    use credential::hazmat::{self, SealContext};
    use credential::{Credential, ExposeSecret, KeyRing};
    let ring = KeyRing::generate().unwrap();
    let env = credential::store::EnvStore::new(ring.clone(), "production")
        .credential("db/main", |env| {
            Ok(Postgres {
                password: env.secret("TEST_DB_PASSWORD")?,
                user: env.text("TEST_DB_USER")?,
                port: env.parse("TEST_DB_PORT")?,
            })
        })
        .unwrap()
        .credential("db/missing", |env| {
            Ok(Postgres { password: env.secret("TEST_DB_UNSET")?, user: "u".into(), port: 1 })
        })
        .unwrap();

    let record = env.get("production/db/main").await.unwrap().unwrap();
    assert_eq!(record.meta.kind, "postgres");
    let context = SealContext::new("production/db/main", 1, "postgres");
    let opened = hazmat::open(&ring, &context, &record.versions[0].sealed).unwrap();
    let db = Postgres::decode(&opened).unwrap();
    assert_eq!(
        (db.password.expose_secret(), db.user.as_str(), db.port),
        ("env-canary-pw", "app", 5432)
    );

    let missing = env.get("production/db/missing").await.unwrap_err().to_string();
    assert_eq!(missing, "environment variable `TEST_DB_UNSET` is not set");
    assert!(env.get("production/db/unmapped").await.unwrap().is_none());
    assert!(matches!(
        env.put(record.clone(), Precondition::Revision(1)).await,
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(env.delete("production/db/main", 1).await, Err(Error::ReadOnly { .. })));
    let listed: Vec<_> =
        env.list(&ListFilter::all()).await.unwrap().into_iter().map(|meta| meta.id).collect();
    assert_eq!(listed, ["production/db/main"]);
    assert!(!format!("{env:?}").contains("env-canary-pw"));

    // As the fallback of a manager's store: reads reach it through the manager.
    let composite = CompositeStore::new(MemoryStore::new()).with_fallback(env);
    let manager = credential::Manager::builder()
        .store(composite)
        .key_ring(ring)
        .environment("production")
        .build()
        .await
        .unwrap();
    let ctx = manager.context(credential::Principal::new("workflow/migrate", "action/read"));
    let db = ctx.get::<Postgres>("db/main").await.unwrap();
    assert_eq!(db.password.expose_secret(), "env-canary-pw");
}

#[test]
fn env_store_reads_mapped_variables() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            support::test_named(module_path!(), "env_store_child").as_str(),
        ])
        .env("TEST_DB_PASSWORD", "env-canary-pw")
        .env("TEST_DB_USER", "app")
        .env("TEST_DB_PORT", "5432")
        .env_remove("TEST_DB_UNSET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("1 passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_write_behind_another_process_lock_fails_after_its_busy_timeout_saying_so() {
    let scratch = scratch_dir("sqlite-busy");
    let path = scratch.join("credentials.db");
    let short = std::time::Duration::from_millis(100);
    let store = SqliteStore::open_with_busy_timeout(&path, short).await.unwrap();
    // Another process's store holds the write lock in an open transaction.
    let other = SqliteStore::open(&path).await.unwrap();
    let run = |sql: &'static str| {
        move |connection: &rusqlite::Connection| {
            connection.execute_batch(sql).map_err(|error| Error::storage("sqlite", false, error))
        }
    };
    other.with_connection(run("BEGIN EXCLUSIVE")).await.unwrap();

    let error = store
        .put(sample_record("default/busy", "api_key", b"x"), Precondition::Absent)
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("the database was busy"), "{error}");

    other.with_connection(run("COMMIT")).await.unwrap();
    store.put(sample_record("default/busy", "api_key", b"x"), Precondition::Absent).await.unwrap();
    assert_eq!(credential::store::DEFAULT_BUSY_TIMEOUT, std::time::Duration::from_secs(2));
}
