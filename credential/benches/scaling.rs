//! Per-operation cost as the store grows: `Manager::build` (start-up: the key check, the change
//! feed), a cold `get` (cache off), a cached `get` through a fresh context, and a save (create +
//! activate), over stores holding 1,000, 10,000 and 100,000 records (the file store 1,000 and
//! 10,000: filling it with 100,000 durable files takes minutes). Goal: each flat within 1.5× from
//! the smallest store to the largest.
//!
//! Cached reads are shown beside a bare `HashMap` of as many entries read in the same order: at
//! 100,000 entries both pay for memory that no longer fits the CPU caches.
//!
//! The stores are filled at the store level with records sealed for their ids (one write each),
//! as a manager would have written them.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use credential::audit::MemoryAuditSink;
use credential::hazmat::{self, SealContext};
use credential::kinds::ApiKey;
use credential::store::{FileStore, Record, RecordMeta, SealedVersion, Store};
use credential::{
    CacheConfig, Credential, KeyRing, LifecycleState, Manager, MemoryStore, Principal, SqliteStore,
    Utc, VersionState,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const ENVIRONMENT: &str = "default";

fn id(index: u64) -> String {
    format!("bench/{index:06}")
}

/// `count` active API keys, sealed for their ids, written straight to `store`.
async fn fill(store: &dyn Store, ring: &KeyRing, count: u64) {
    let plaintext = ApiKey::new("sk_live_scaling_bench_0123456789".into()).encode();
    let now = Utc::now();
    for index in 0..count {
        let storage_id = format!("{ENVIRONMENT}/{}", id(index));
        let sealed =
            hazmat::seal(ring, &SealContext::new(&storage_id, 1, ApiKey::KIND), &plaintext)
                .unwrap();
        let key_id = ring.current_id().to_string();
        let mut meta = RecordMeta::new(&storage_id, ApiKey::KIND, ENVIRONMENT, &key_id, now);
        meta.state = LifecycleState::Active;
        let version = SealedVersion::new(1, VersionState::Current, sealed, now);
        let record = Record::new(meta, vec![version]);
        store.put(record, credential::store::Precondition::Absent).await.unwrap();
    }
}

async fn manager(store: Arc<dyn Store>, ring: &KeyRing, cache: CacheConfig) -> Manager {
    Manager::builder()
        .store(store)
        .key_ring(ring.clone())
        .cache(cache)
        .audit(MemoryAuditSink::bounded(10_000))
        .build()
        .await
        .unwrap()
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir =
        std::env::temp_dir().join(format!("credential-scaling-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn scaling(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ring = KeyRing::generate().unwrap();
    let backends: [(&str, &[u64]); 3] = [
        ("memory", &[1_000, 10_000, 100_000]),
        ("sqlite", &[1_000, 10_000, 100_000]),
        ("file", &[1_000, 10_000]),
    ];
    for (backend, sizes) in backends {
        let mut group = c.benchmark_group(format!("scaling_{backend}"));
        group.sample_size(20);
        for &size in sizes {
            let dir = scratch(&format!("{backend}-{size}"));
            let store: Arc<dyn Store> = runtime.block_on(async {
                let store: Arc<dyn Store> = match backend {
                    "memory" => Arc::new(MemoryStore::new()),
                    "sqlite" => {
                        Arc::new(SqliteStore::open(dir.0.join("credentials.db")).await.unwrap())
                    }
                    _ => Arc::new(FileStore::open(dir.0.join("records")).await.unwrap()),
                };
                fill(store.as_ref(), &ring, size).await;
                store
            });

            group.bench_function(BenchmarkId::new("build", size), |b| {
                b.to_async(&runtime)
                    .iter(|| manager(Arc::clone(&store), &ring, CacheConfig::default()))
            });

            let uncached =
                runtime.block_on(manager(Arc::clone(&store), &ring, CacheConfig::disabled()));
            let next = AtomicU64::new(0);
            group.bench_function(BenchmarkId::new("cold_get", size), |b| {
                b.to_async(&runtime).iter(|| async {
                    let index = next.fetch_add(7919, Ordering::Relaxed) % size;
                    let ctx = uncached.context(Principal::named("bench"));
                    black_box(ctx.get::<ApiKey>(&id(index)).await.unwrap())
                })
            });

            // Every record cached, then reads of them in turn, each through a fresh context.
            let cached = runtime.block_on(async {
                let cache = CacheConfig::new(std::time::Duration::from_secs(3600), 200_000);
                let cached = manager(Arc::clone(&store), &ring, cache).await;
                let ctx = cached.context(Principal::named("bench"));
                for index in 0..size {
                    ctx.get::<ApiKey>(&id(index)).await.unwrap();
                }
                cached
            });
            group.bench_function(BenchmarkId::new("cached_get", size), |b| {
                b.to_async(&runtime).iter(|| async {
                    let index = next.fetch_add(7919, Ordering::Relaxed) % size;
                    let ctx = cached.context(Principal::named("bench"));
                    black_box(ctx.get::<ApiKey>(&id(index)).await.unwrap())
                })
            });

            // The floor at this size: a bare map of as many entries, read in the same order.
            let bare: HashMap<String, Arc<ApiKey>> = (0..size)
                .map(|index| (id(index), Arc::new(ApiKey::new("sk_live_bare".into()))))
                .collect();
            group.bench_function(BenchmarkId::new("bare_hashmap_get", size), |b| {
                b.iter(|| {
                    let index = next.fetch_add(7919, Ordering::Relaxed) % size;
                    black_box(Arc::clone(bare.get(&id(index)).unwrap()))
                })
            });
            drop(bare);

            let saved = AtomicU64::new(size);
            group.bench_function(BenchmarkId::new("save", size), |b| {
                b.to_async(&runtime).iter(|| async {
                    let index = saved.fetch_add(1, Ordering::Relaxed);
                    let key = ApiKey::new("sk_live_scaling_bench_new".into());
                    uncached.create(&id(index), key).await.unwrap().activate().await.unwrap()
                })
            });
            drop((uncached, cached, store));
            drop(dir);
        }
        group.finish();
    }
}

criterion_group!(benches, scaling);
criterion_main!(benches);
