//! `VaultStore` get and put next to the bare KV v2 calls on the store's own HTTP client, in one
//! run, against OpenBao on loopback.
//!
//! Needs a server: `eval "$(bash .ci/openbao.sh start)"` sets `CREDENTIAL_TEST_VAULT_ADDR` and
//! `CREDENTIAL_TEST_VAULT_TOKEN`. Works in the dev server's `secret/` mount under a prefix of its
//! own. Goals: get and put ≤ 1.3× the bare calls.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

#[path = "support/timed_puts.rs"]
mod timed_puts;

use std::time::Instant;

use credential::SecretString;
use credential::store::conformance::sample_record;
use credential::store::{Precondition, Store, VaultStore};
use criterion::{Criterion, criterion_group, criterion_main};
use timed_puts::timed_puts;

const ID: &str = "bench/github";
const RAW_ID: &str = "bench/raw";
const SEALED_LEN: usize = 200;

fn vault(c: &mut Criterion) {
    let (Ok(address), Ok(token)) =
        (std::env::var("CREDENTIAL_TEST_VAULT_ADDR"), std::env::var("CREDENTIAL_TEST_VAULT_TOKEN"))
    else {
        println!("skipped: CREDENTIAL_TEST_VAULT_ADDR is not set (see .ci/openbao.sh)");
        return;
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let prefix = format!("bench-{}", std::process::id());
    let store = runtime.block_on(async {
        let store = VaultStore::builder(&address)
            .token(SecretString::from(token))
            .prefix(&prefix)
            .connect()
            .await
            .unwrap();
        for id in [ID, RAW_ID] {
            let record = sample_record(id, "github", &[7; SEALED_LEN]);
            store.put(record, Precondition::Absent).await.unwrap();
        }
        store
    });

    let mut get = c.benchmark_group("vault_get");
    get.bench_function("raw_kv_read", |b| {
        b.to_async(&runtime).iter(|| async { store.raw_kv_read(RAW_ID).await.unwrap() })
    });
    get.bench_function("store", |b| {
        b.to_async(&runtime).iter(|| async { store.get(ID).await.unwrap().unwrap() })
    });
    get.finish();

    let mut put = c.benchmark_group("vault_put");
    put.bench_function("raw_kv_check_and_set", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let store = &store;
            async move {
                // About the size of the encoded record the store writes.
                let payload = vec![7u8; SEALED_LEN + 120];
                let mut version = store.raw_kv_read(RAW_ID).await.unwrap();
                let started = Instant::now();
                for _ in 0..iterations {
                    version = store.raw_kv_write(RAW_ID, version, &payload).await.unwrap();
                }
                started.elapsed()
            }
        })
    });
    put.bench_function("store", |b| {
        b.to_async(&runtime)
            .iter_custom(|iterations| timed_puts(&store, ID, SEALED_LEN, iterations))
    });
    put.finish();
}

criterion_group!(benches, vault);
criterion_main!(benches);
