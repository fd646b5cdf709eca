//! Cached reads the way a workflow engine makes them, next to a bare map read the same way:
//! a fresh `Context` per read, a policy of 100 grants, every read audited to a durable (JSONL)
//! sink, 10,000 credentials read in a scattered order, one thread per core. Goal (issue "hot
//! paths"): ≤ 2× the bare `HashMap` get + `Arc` clone.
//!
//! The figure is wall time over all threads divided by the reads: the cost per read at full
//! load. The threads live through the whole bench, as an engine's worker threads do. A read the audit queue refuses (its writer is behind) is retried, so the figure is the
//! sustained cost, audit included.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "support/hundred_grants.rs"]
mod hundred_grants;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use credential::audit::{AuditSink, JsonlAuditSink, MemoryAuditSink};
use credential::kinds::ApiKey;
use credential::prelude::*;
use credential::{CacheConfig, Error, MemoryStore};
use criterion::{Criterion, criterion_group, criterion_main};
use hundred_grants::hundred_grants;

const IDS: usize = 10_000;

fn api_key() -> ApiKey {
    ApiKey::new("sk_live_0123456789abcdef0123456789abcdef".into())
}

/// The `n`-th id a thread reads: scattered over all of them, differently per thread.
fn scattered(ids: &[String], thread: usize, n: u64) -> &str {
    let n = usize::try_from(n).unwrap_or_default();
    &ids[(n.wrapping_mul(7_919) + thread * 1_237) % ids.len()]
}

/// Worker threads that live as long as the bench function, as an engine's do: each sample hands
/// every thread its share of the reads and is timed from a common start to the last one's end.
struct Workers {
    shares: Vec<mpsc::Sender<u64>>,
    barrier: Arc<Barrier>,
}

impl Workers {
    /// `threads` threads, each with the state `prepare` makes, running `reads(state, thread,
    /// count)` for each sample, until the scope ends.
    fn start<'scope, S>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        threads: usize,
        prepare: impl Fn() -> S + Send + Sync + 'scope,
        reads: impl Fn(&S, usize, u64) + Send + Sync + 'scope,
    ) -> Self {
        let barrier = Arc::new(Barrier::new(threads + 1));
        let (prepare, reads) = (Arc::new(prepare), Arc::new(reads));
        let shares = (0..threads)
            .map(|thread| {
                let (share, shares) = mpsc::channel::<u64>();
                let (barrier, prepare, reads) =
                    (Arc::clone(&barrier), Arc::clone(&prepare), Arc::clone(&reads));
                scope.spawn(move || {
                    let state = prepare();
                    while let Ok(count) = shares.recv() {
                        barrier.wait();
                        reads(&state, thread, count);
                        barrier.wait();
                    }
                });
                share
            })
            .collect();
        Self { shares, barrier }
    }

    /// Runs `iters` reads over the threads; the wall time from their common start to the end.
    fn run(&self, iters: u64) -> Duration {
        let per_thread = iters.div_ceil(self.shares.len() as u64);
        for share in &self.shares {
            share.send(per_thread).unwrap();
        }
        self.barrier.wait();
        let started = Instant::now();
        self.barrier.wait();
        started.elapsed()
    }
}

/// `count` reads of scattered ids, each through a context made for it, as engines read.
async fn read_scattered(manager: &Manager, ids: &[String], thread: usize, count: u64) {
    for n in 0..count {
        let ctx = manager.context(Principal::new("workflow/engine", "action/read"));
        let id = scattered(ids, thread, n);
        loop {
            match ctx.get::<ApiKey>(id).await {
                Ok(key) => {
                    black_box(key);
                    break;
                }
                // The audit writer is behind: the read is refused; retry, as a caller would.
                Err(Error::AuditBackpressure) => std::thread::yield_now(),
                Err(other) => panic!("{other}"),
            }
        }
    }
}

fn engine_reads(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("credential-bench-engine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(MemoryStore::new());
    let ring = KeyRing::generate().unwrap();
    let ids: Vec<String> = (0..IDS).map(|n| format!("github/{n:05}")).collect();
    let readers = setup.block_on(async {
        let writer = Manager::builder()
            .store(Arc::clone(&store))
            .key_ring(ring.clone())
            .build()
            .await
            .unwrap();
        for id in &ids {
            writer.create(id, api_key()).await.unwrap().activate().await.unwrap();
        }
        let mut readers = Vec::new();
        let sinks: [Arc<dyn AuditSink>; 2] = [
            Arc::new(JsonlAuditSink::open(dir.join("audit.jsonl")).unwrap()),
            Arc::new(MemoryAuditSink::bounded(100_000)),
        ];
        for sink in sinks {
            let reader = Manager::builder()
                .store(Arc::clone(&store))
                .key_ring(ring.clone())
                .access_policy(hundred_grants("workflow/engine:*"))
                .audit(sink)
                .cache(CacheConfig::new(Duration::from_secs(3600), 2 * IDS))
                .build()
                .await
                .unwrap();
            let ctx = reader.context(Principal::new("workflow/engine", "action/warm"));
            for id in &ids {
                ctx.get::<ApiKey>(id).await.unwrap();
            }
            readers.push(reader);
        }
        readers
    });
    let map: HashMap<String, Arc<ApiKey>> =
        ids.iter().map(|id| (id.clone(), Arc::new(api_key()))).collect();

    let mut group = c.benchmark_group(format!("engine_reads_{threads}_threads"));
    std::thread::scope(|scope| {
        let bare = Workers::start(
            scope,
            threads,
            || (),
            |(), thread, count| {
                for n in 0..count {
                    black_box(Arc::clone(map.get(scattered(&ids, thread, n)).unwrap()));
                }
            },
        );
        group.bench_function("bare_hashmap_get_clone", |b| b.iter_custom(|iters| bare.run(iters)));
        drop(bare);
        for (name, manager) in
            ["fresh_context_get_policy_jsonl_sink", "fresh_context_get_policy_memory_sink"]
                .into_iter()
                .zip(&readers)
        {
            let ids = &ids;
            let ours = Workers::start(
                scope,
                threads,
                || tokio::runtime::Builder::new_current_thread().build().unwrap(),
                move |runtime, thread, count| {
                    runtime.block_on(read_scattered(manager, ids, thread, count));
                },
            );
            group.bench_function(name, |b| b.iter_custom(|iters| ours.run(iters)));
        }
    });
    group.finish();
    drop(readers);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, engine_reads);
criterion_main!(benches);
