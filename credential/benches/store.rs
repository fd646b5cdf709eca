//! Get and durable put per backend, next to a raw `rusqlite` point select by primary key and a
//! raw single-row commit with the same durability (WAL, `synchronous = FULL`), in one run.
//!
//! Goals for `SqliteStore`: get ≤ 1.5× the raw select, put ≤ 1.2× the raw commit.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use credential::store::conformance::sample_record;
use credential::store::{FileStore, Precondition, Store};
use credential::{MemoryStore, SqliteStore};
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, params};

const ID: &str = "bench/github";
const SEALED_LEN: usize = 200;

/// The scratch directories this run uses; all removed at its end.
const SCRATCH: [&str; 4] = ["file", "sqlite", "raw-get", "raw-put"];

fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("credential-bench-{name}-{}", std::process::id()))
}

fn scratch(name: &str) -> PathBuf {
    let dir = scratch_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    dir
}

fn raw_connection(path: &std::path::Path) -> Connection {
    let connection = Connection::open(path).unwrap();
    connection.pragma_update(None, "journal_mode", "WAL").unwrap();
    connection.pragma_update(None, "synchronous", "FULL").unwrap();
    connection
        .execute_batch("CREATE TABLE records (id TEXT PRIMARY KEY NOT NULL, record BLOB NOT NULL) STRICT, WITHOUT ROWID;")
        .unwrap();
    connection
        .execute("INSERT INTO records VALUES (?1, ?2)", params![ID, vec![7u8; SEALED_LEN + 120]])
        .unwrap();
    connection
}

fn backends(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let file_dir = scratch("file");
    let sqlite_dir = scratch("sqlite");
    let stores: Vec<(&str, Arc<dyn Store>)> = runtime.block_on(async {
        vec![
            ("memory", Arc::new(MemoryStore::new()) as Arc<dyn Store>),
            ("file", Arc::new(FileStore::open(file_dir.join("store")).await.unwrap())),
            (
                "sqlite",
                Arc::new(SqliteStore::open(sqlite_dir.join("credentials.db")).await.unwrap()),
            ),
        ]
    });

    let mut get = c.benchmark_group("get");
    let raw = raw_connection(&scratch("raw-get").join("raw.db"));
    get.bench_function("raw_rusqlite_point_select", |b| {
        b.iter(|| {
            let mut statement =
                raw.prepare_cached("SELECT record FROM records WHERE id = ?1").unwrap();
            statement.query_row([ID], |row| row.get::<_, Vec<u8>>(0)).unwrap()
        })
    });
    for (name, store) in &stores {
        runtime
            .block_on(
                store.put(sample_record(ID, "github", &[7; SEALED_LEN]), Precondition::Absent),
            )
            .unwrap();
        get.bench_function(*name, |b| {
            b.to_async(&runtime).iter(|| async { store.get(ID).await.unwrap() })
        });
    }
    get.finish();

    let mut put = c.benchmark_group("durable_put");
    let raw = raw_connection(&scratch("raw-put").join("raw.db"));
    let mut payload = vec![9u8; SEALED_LEN + 120];
    let mut counter = 0u64;
    put.bench_function("raw_rusqlite_single_row_commit", |b| {
        b.iter(|| {
            // SQLite skips the write, and so the fsync, of an update that changes nothing.
            counter += 1;
            payload[..8].copy_from_slice(&counter.to_be_bytes());
            let mut statement =
                raw.prepare_cached("UPDATE records SET record = ?1 WHERE id = ?2").unwrap();
            statement.execute(params![payload, ID]).unwrap()
        })
    });
    for (name, store) in &stores {
        let record = runtime.block_on(store.get(ID)).unwrap().unwrap();
        let revision = std::sync::atomic::AtomicU64::new(record.meta.revision);
        put.bench_function(*name, |b| {
            b.to_async(&runtime).iter(|| async {
                let expected = revision.load(std::sync::atomic::Ordering::Relaxed);
                let written =
                    store.put(record.clone(), Precondition::Revision(expected)).await.unwrap();
                revision.store(written, std::sync::atomic::Ordering::Relaxed);
            })
        });
    }
    put.finish();
    for name in SCRATCH {
        let _ = std::fs::remove_dir_all(scratch_path(name));
    }
}

criterion_group!(benches, backends);
criterion_main!(benches);
