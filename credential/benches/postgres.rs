//! `PostgresStore` get and put next to the same statements run raw on one of the store's pooled
//! connections, in one run; and how long a write takes to reach another store's change feed.
//!
//! Needs a server: `eval "$(bash .ci/postgres.sh start)"` sets `CREDENTIAL_TEST_POSTGRES_URL`.
//! Works in a schema of its own, dropped at the end. Goals: get ≤ 1.3×, put ≤ 1.2× the raw
//! statements.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

#[path = "support/timed_puts.rs"]
mod timed_puts;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant, SystemTime};

use credential::store::conformance::sample_record;
use credential::store::{ChangeListener, PostgresStore, Precondition, Store};
use criterion::{Criterion, criterion_group, criterion_main};
use timed_puts::timed_puts;

const ID: &str = "bench/github";
const RAW_ID: &str = "bench/raw";
const SEALED_LEN: usize = 200;
/// Writes timed for the notification latency.
const LATENCY_SAMPLES: usize = 1_000;

fn schema_url(base: &str, schema: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{schema}")
}

/// Tells a channel when each change arrives.
struct Stopwatch(Mutex<Sender<Instant>>);

impl ChangeListener for Stopwatch {
    fn changed(&self, _: &str) {
        let _ = self.0.lock().unwrap().send(Instant::now());
    }

    fn lost(&self) {}

    fn caught_up(&self, _: SystemTime) {}
}

fn postgres(c: &mut Criterion) {
    let Ok(base) = std::env::var("CREDENTIAL_TEST_POSTGRES_URL") else {
        println!("skipped: CREDENTIAL_TEST_POSTGRES_URL is not set (see .ci/postgres.sh)");
        return;
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let schema = format!("credential_bench_{}", std::process::id());
    let url = schema_url(&base, &schema);
    let (store, other) = runtime.block_on(async {
        let admin = PostgresStore::connect(&base).await.unwrap();
        admin
            .pooled_client()
            .await
            .unwrap()
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let store = PostgresStore::connect(&url).await.unwrap();
        // Connections of its own (another application name), as another process would have:
        // stores on one URL share theirs and hear each other's writes without the server.
        let other =
            PostgresStore::connect(&format!("{url}&application_name=credential-bench-other"))
                .await
                .unwrap();
        for id in [ID, RAW_ID] {
            store
                .put(sample_record(id, "github", &[7; SEALED_LEN]), Precondition::Absent)
                .await
                .unwrap();
        }
        (store, other)
    });

    let mut get = c.benchmark_group("postgres_get");
    get.bench_function("raw_prepared_select", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let store = store.clone();
            async move {
                let client = store.pooled_client().await.unwrap();
                let statement = client
                    .prepare("SELECT record FROM credential_records WHERE id = $1")
                    .await
                    .unwrap();
                let started = Instant::now();
                for _ in 0..iterations {
                    let row = client.query_opt(&statement, &[&ID]).await.unwrap().unwrap();
                    std::hint::black_box(row.get::<_, Vec<u8>>(0));
                }
                started.elapsed()
            }
        })
    });
    get.bench_function("store", |b| {
        b.to_async(&runtime).iter(|| async { store.get(ID).await.unwrap().unwrap() })
    });
    get.finish();

    let mut put = c.benchmark_group("postgres_put");
    put.bench_function("raw_compare_and_swap_and_notify", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let (store, schema) = (store.clone(), schema.clone());
            async move {
                let client = store.pooled_client().await.unwrap();
                let statement = client
                    .prepare(&format!(
                        "WITH written AS (
                            UPDATE credential_records SET record = $2, revision = revision + 1
                            WHERE id = $1 AND revision = $3 RETURNING id, revision)
                         SELECT pg_notify('credential_changes/{schema}', revision || ' ' || id) FROM written"
                    ))
                    .await
                    .unwrap();
                let blob = vec![7u8; SEALED_LEN + 120];
                let mut revision: i64 = client
                    .query_one("SELECT revision FROM credential_records WHERE id = $1", &[&RAW_ID])
                    .await
                    .unwrap()
                    .get(0);
                let started = Instant::now();
                for _ in 0..iterations {
                    let rows = client.query(&statement, &[&RAW_ID, &blob, &revision]).await.unwrap();
                    assert_eq!(rows.len(), 1);
                    revision += 1;
                }
                started.elapsed()
            }
        })
    });
    put.bench_function("store", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let store = store.clone();
            async move { timed_puts(&store, ID, SEALED_LEN, iterations).await }
        })
    });
    put.finish();

    notification_latency(&runtime, &store, &other);

    runtime.block_on(async {
        drop((store, other));
        let admin = PostgresStore::connect(&base).await.unwrap();
        admin
            .pooled_client()
            .await
            .unwrap()
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    });
}

/// From the start of a write through one store to the moment another store's feed reports it.
fn notification_latency(
    runtime: &tokio::runtime::Runtime,
    writer: &PostgresStore,
    watcher: &PostgresStore,
) {
    let (told, heard) = channel();
    let _feed = watcher.watch(Arc::new(Stopwatch(Mutex::new(told)))).unwrap().unwrap();
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    runtime.block_on(async {
        let mut revision = writer.get(ID).await.unwrap().unwrap().meta.revision;
        let record = sample_record(ID, "github", &[7; SEALED_LEN]);
        // Let the feed connect and listen.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while heard.try_recv().is_ok() {}
        for _ in 0..LATENCY_SAMPLES {
            let started = Instant::now();
            revision = writer.put(record.clone(), Precondition::Revision(revision)).await.unwrap();
            let arrived = heard.recv_timeout(Duration::from_secs(5)).unwrap();
            latencies.push(arrived.duration_since(started));
        }
    });
    latencies.sort();
    let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction) as usize];
    println!(
        "postgres_notification/write_start_to_other_store_feed: median {:?}, p99 {:?}, max {:?} ({} writes)",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1],
        latencies.len()
    );
}

criterion_group!(benches, postgres);
criterion_main!(benches);
