//! `Context::get` next to what it is made of, in one run.
//!
//! - Cached, with a 100-grant access policy and the audit sink on, next to a bare
//!   `HashMap<String, Arc<T>>` get + clone. Goal: ≤ 10×.
//! - Uncached from `SqliteStore`, next to the sum of its parts measured raw: a `rusqlite` point
//!   select, opening the envelope, decoding the credential. Goal: ≤ 1.5×.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use credential::hazmat::{self, SealContext};
use credential::prelude::*;
use credential::{AccessPolicy, CacheConfig, Grant, MemoryAuditSink, Record, Store, VersionState};
use criterion::{Criterion, criterion_group, criterion_main};

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

fn policy() -> AccessPolicy {
    let mut policy = AccessPolicy::new().grant(Grant::admin("operator", "*"));
    for team in 0..98 {
        policy = policy
            .grant(Grant::read(&format!("workflow/team-{team}:*"), &format!("team-{team}/*")));
    }
    policy.grant(Grant::read("workflow/bench:*", "github/*"))
}

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
    let build = |cache: CacheConfig| {
        let (db, ring) = (db.clone(), ring.clone());
        runtime.block_on(async move {
            Manager::builder()
                .store(SqliteStore::open(&db).await.unwrap())
                .key_ring(ring)
                .access_policy(policy())
                .audit(MemoryAuditSink::bounded(100_000))
                .cache(cache)
                .build()
                .await
                .unwrap()
        })
    };
    let cached = build(CacheConfig::default());
    runtime.block_on(async {
        cached.create("github/main", github()).await.unwrap().activate().await.unwrap()
    });
    let uncached = build(CacheConfig::disabled());

    let mut group = c.benchmark_group("get_cached");
    let map: HashMap<String, Arc<GitHub>> =
        HashMap::from([("github/main".to_owned(), Arc::new(github()))]);
    group.bench_function("bare_hashmap_get_clone", |b| {
        b.iter(|| Arc::clone(map.get(black_box("github/main")).unwrap()))
    });
    let ctx = cached.context(Principal::new("workflow/bench", "action/read"));
    group.bench_function("context_get", |b| {
        b.to_async(&runtime)
            .iter(|| async { ctx.get::<GitHub>(black_box("github/main")).await.unwrap() })
    });
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
}

criterion_group!(benches, gets);
criterion_main!(benches);
