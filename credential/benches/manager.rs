//! `Context::get` next to what it is made of, in one run.
//!
//! - Cached, with a 100-grant access policy and each audit sink (memory, JSONL file, SQLite
//!   table), next to a bare `HashMap<String, Arc<T>>` get + clone. Goals: memory ≤ 10×, durable
//!   sinks ≤ 20×. Durable sinks write read events in batches on their own thread; a read the
//!   queue refuses (the writer is behind) is retried, so the figure is the sustained cost.
//! - Uncached from `SqliteStore`, next to the sum of its parts measured raw: a `rusqlite` point
//!   select, opening the envelope, decoding the credential. Goal: ≤ 1.5×.
//! - A full cache that misses on every read (twice as many ids read in turn as it has room for),
//!   so each read loads, evicts an entry and installs, for caches of 1,000 and 10,000
//!   entries, next to the same reads with the cache off: eviction must not grow with the number
//!   of entries.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "support/hundred_grants.rs"]
mod hundred_grants;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use credential::audit::{AuditSink, JsonlAuditSink, MemoryAuditSink, SqliteAuditSink};
use credential::hazmat::{self, SealContext};
use credential::prelude::*;
use credential::store::{Record, Store};
use credential::{CacheConfig, Error, MemoryStore, VersionState};
use criterion::{Criterion, criterion_group, criterion_main};
use hundred_grants::hundred_grants;

#[derive(Credential)]
#[credential(kind = "github")]
struct GitHub {
    #[secret]
    token: SecretString,
    username: String,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

fn github() -> GitHub {
    GitHub {
        token: "ghp_16C7e42F292c6912E7710c838347Ae178B4a".into(),
        username: "octocat".into(),
        expires: None,
    }
}

/// A scratch directory, removed at the end of the run.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("credential-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gets(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = scratch("manager");
    let db = dir.join("credentials.db");
    let ring = KeyRing::generate().unwrap();
    let build = |cache: CacheConfig, audit: Arc<dyn AuditSink>| {
        let (db, ring) = (db.clone(), ring.clone());
        runtime.block_on(async move {
            Manager::builder()
                .store(SqliteStore::open(&db).await.unwrap())
                .key_ring(ring)
                .access_policy(hundred_grants("workflow/bench:*"))
                .audit(audit)
                .cache(cache)
                .build()
                .await
                .unwrap()
        })
    };
    let memory = build(CacheConfig::default(), Arc::new(MemoryAuditSink::bounded(100_000)));
    runtime.block_on(async {
        memory.create("github/main", github()).await.unwrap().activate().await.unwrap()
    });
    let sql_store = runtime.block_on(SqliteStore::open(&db)).unwrap();
    let sinks: [(&str, Arc<dyn AuditSink>); 3] = [
        ("memory_sink", Arc::new(MemoryAuditSink::bounded(100_000))),
        ("jsonl_sink", Arc::new(JsonlAuditSink::open(dir.join("audit.jsonl")).unwrap())),
        ("sqlite_sink", Arc::new(SqliteAuditSink::new(&sql_store).unwrap())),
    ];
    let uncached = build(CacheConfig::disabled(), Arc::new(MemoryAuditSink::bounded(100_000)));

    let mut group = c.benchmark_group("get_cached");
    let map: HashMap<String, Arc<GitHub>> =
        HashMap::from([("github/main".to_owned(), Arc::new(github()))]);
    group.bench_function("bare_hashmap_get_clone", |b| {
        b.iter(|| Arc::clone(map.get(black_box("github/main")).unwrap()))
    });
    // As engines use it: a context made for each action, then one read.
    let fresh = build(CacheConfig::default(), Arc::new(MemoryAuditSink::bounded(100_000)));
    group.bench_function("memory_sink_fresh_context_per_read", |b| {
        b.to_async(&runtime).iter(|| async {
            let ctx = fresh.context(Principal::new("workflow/bench", "action/read"));
            ctx.get::<GitHub>(black_box("github/main")).await.unwrap()
        })
    });
    for (name, sink) in sinks {
        let manager = build(CacheConfig::default(), sink);
        let ctx = manager.context(Principal::new("workflow/bench", "action/read"));
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                loop {
                    match ctx.get::<GitHub>(black_box("github/main")).await {
                        Ok(github) => break github,
                        // The writer is behind: wait for it, as a caller retrying would.
                        Err(Error::AuditBackpressure) => tokio::task::yield_now().await,
                        Err(other) => panic!("{other}"),
                    }
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("get_uncached_sqlite");
    let raw = rusqlite::Connection::open(&db).unwrap();
    let store = runtime.block_on(SqliteStore::open(&db)).unwrap();
    let record: Record = runtime.block_on(store.get("default/github/main")).unwrap().unwrap();
    let current = record.versions.iter().find(|v| v.state == VersionState::Current).unwrap();
    let (sealed, version) = (current.sealed.clone(), current.version);
    group.bench_function("raw_select_open_decode", |b| {
        b.iter(|| {
            let mut statement =
                raw.prepare_cached("SELECT record FROM records WHERE id = ?1").unwrap();
            let blob: Vec<u8> =
                statement.query_row(["default/github/main"], |row| row.get(0)).unwrap();
            black_box(blob);
            let plaintext = hazmat::open(
                &ring,
                &SealContext::new("default/github/main", version, "github"),
                &sealed,
            )
            .unwrap();
            GitHub::decode(&plaintext).unwrap()
        })
    });
    let ctx = uncached.context(Principal::new("workflow/bench", "action/read"));
    group.bench_function("context_get", |b| {
        b.to_async(&runtime)
            .iter(|| async { ctx.get::<GitHub>(black_box("github/main")).await.unwrap() })
    });
    group.finish();
    drop((memory, uncached, sql_store));
    let _ = std::fs::remove_dir_all(&dir);
    full_cache(c, &runtime, &ring);
}

fn full_cache(c: &mut Criterion, runtime: &tokio::runtime::Runtime, ring: &KeyRing) {
    const IDS: usize = 20_000;
    let store = Arc::new(MemoryStore::new());
    let build = |cache: CacheConfig| {
        let (store, ring) = (Arc::clone(&store), ring.clone());
        runtime.block_on(async move {
            Manager::builder().store(store).key_ring(ring).cache(cache).build().await.unwrap()
        })
    };
    let writer = build(CacheConfig::disabled());
    let ids: Vec<String> = (0..IDS).map(|n| format!("github/{n}")).collect();
    runtime.block_on(async {
        for id in &ids {
            writer.create(id, github()).await.unwrap().activate().await.unwrap();
        }
    });
    // Each case reads twice as many ids as its cache holds, in turn: every read misses, loads,
    // evicts an entry and installs. The cost must not grow with the cache's size.
    let hour = std::time::Duration::from_secs(3600);
    let mut group = c.benchmark_group("get_missing_memory_store");
    for (name, cache, read) in [
        ("cache_off", CacheConfig::disabled(), 2_000),
        ("full_cache_of_1000_evicting", CacheConfig::new(hour, 1_000), 2_000),
        ("full_cache_of_10000_evicting", CacheConfig::new(hour, 10_000), 20_000),
    ] {
        let manager = build(cache);
        let ctx = manager.context(Principal::new("workflow/bench", "action/read"));
        let mut next = 0;
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| {
                next = (next + 1) % read;
                let id = &ids[next];
                let ctx = &ctx;
                async move { ctx.get::<GitHub>(id).await.unwrap() }
            })
        });
    }
    group.finish();
}

/// The memory store's cold read and save next to their raw parts, in one run: a read with the
/// cache off against fetching the record, opening the envelope and decoding (goal ≤ 1.5×); a
/// create + activate against one seal and one encode (goal ≤ 2×). No policy, a memory audit sink
/// of 100,000 events; the cold read also with the sink's default 10,000, to show what a sink
/// that outgrows the CPU caches adds to every read.
fn memory_floors(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ring = KeyRing::generate().unwrap();
    let store = Arc::new(MemoryStore::new());
    let build = |audit: MemoryAuditSink| {
        Manager::builder()
            .store(Arc::clone(&store))
            .key_ring(ring.clone())
            .cache(CacheConfig::disabled())
            .audit(audit)
            .build()
    };
    let (manager, default_sink) = runtime.block_on(async {
        let manager = build(MemoryAuditSink::bounded(100_000)).await.unwrap();
        manager.create("github/cold", github()).await.unwrap().activate().await.unwrap();
        (manager, build(MemoryAuditSink::new()).await.unwrap())
    });
    let storage_id = "default/github/cold";

    let mut cold = c.benchmark_group("cold_get_memory_store");
    cold.bench_function("raw_fetch_open_decode", |b| {
        b.to_async(&runtime).iter(|| async {
            let record = store.get(black_box(storage_id)).await.unwrap().unwrap();
            let current =
                record.versions.iter().rfind(|v| v.state == VersionState::Current).unwrap();
            let context = SealContext::new(storage_id, current.version, GitHub::KIND);
            let plaintext = hazmat::open(&ring, &context, &current.sealed).unwrap();
            Arc::new(GitHub::decode(&plaintext).unwrap())
        })
    });
    cold.bench_function("context_get", |b| {
        b.to_async(&runtime).iter(|| async {
            let ctx = manager.context(Principal::new("workflow/bench", "action/read"));
            ctx.get::<GitHub>(black_box("github/cold")).await.unwrap()
        })
    });
    cold.bench_function("context_get_default_sink", |b| {
        b.to_async(&runtime).iter(|| async {
            let ctx = default_sink.context(Principal::new("workflow/bench", "action/read"));
            ctx.get::<GitHub>(black_box("github/cold")).await.unwrap()
        })
    });
    cold.finish();

    let mut save = c.benchmark_group("save_memory_store");
    save.bench_function("raw_encode_seal", |b| {
        b.iter(|| {
            let plaintext = github().encode();
            let context = SealContext::new(storage_id, 1, GitHub::KIND);
            hazmat::seal(&ring, &context, &plaintext).unwrap()
        })
    });
    let next = std::sync::atomic::AtomicU64::new(0);
    save.bench_function("create_activate", |b| {
        b.to_async(&runtime).iter(|| async {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let id = format!("github/saved-{index}");
            manager.create(&id, github()).await.unwrap().activate().await.unwrap()
        })
    });
    save.finish();
}

criterion_group!(benches, gets, memory_floors);
criterion_main!(benches);
