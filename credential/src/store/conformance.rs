//! The conformance suite every [`Store`] backend runs. A backend is done when it passes. Feature
//! `testing`.
//!
//! Each check uses its own id prefix, so all of them can run against one store. To check a store
//! of your own, run the suite from a test on a multi-threaded runtime (the concurrent writers
//! need one to race), against a fresh instance:
//!
//! ```
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
//! // In your crate: `#[tokio::test(flavor = "multi_thread")] async fn my_store_conforms()`.
//! let store = credential::MemoryStore::new(); // your store here
//! credential::store::conformance::run_all(Arc::new(store)).await;
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::DateTime;

use super::{
    LifecycleState, ListFilter, MAX_ID_LEN, Precondition, Record, RecordMeta, RefreshLease,
    RefreshMark, SealedVersion, Store, VersionState,
};
use crate::Error;
use crate::audit::TrailAnchor;

/// A record with one current version whose sealed bytes are `payload`.
pub fn sample_record(id: &str, kind: &str, payload: &[u8]) -> Record {
    let at = DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap_or_default();
    Record {
        meta: RecordMeta {
            id: id.to_owned(),
            kind: kind.to_owned(),
            environment: "production".to_owned(),
            state: LifecycleState::Active,
            revision: 0,
            created_at: at,
            updated_at: at,
            expires_at: Some(at + chrono::Duration::days(30)),
            tags: BTreeSet::from(["team-a".to_owned()]),
            key_id: "0123456789abcdef".to_owned(),
            refresh: RefreshMark {
                lease: Some(RefreshLease {
                    holder: "conformance/1".to_owned(),
                    until: at + chrono::Duration::seconds(30),
                }),
                reauth_required: false,
            },
            // Stores keep the tag as given, whatever its bytes.
            tag: vec![0x5A; 29],
            trail: Some(TrailAnchor::new(&"7".repeat(64), 42, &"e".repeat(64))),
        },
        versions: vec![SealedVersion {
            version: 1,
            state: VersionState::Current,
            created_at: at,
            changed_at: at,
            sealed: payload.to_vec(),
        }],
    }
}

fn with_revision(mut record: Record, revision: u64) -> Record {
    record.meta.revision = revision;
    record
}

/// Runs every check.
pub async fn run_all(store: Arc<dyn Store>) {
    crud(store.as_ref()).await;
    preconditions(store.as_ref()).await;
    listing_filters(store.as_ref()).await;
    large_records(store.as_ref()).await;
    many_records(store.as_ref()).await;
    edge_ids(store.as_ref()).await;
    clock(store.as_ref()).await;
    key_usage(store.as_ref()).await;
    concurrent_writers(store).await;
}

/// When the store keeps the set of key ids in use, it agrees with its records through creation,
/// a change of key, a revoke and a delete; other environments are not counted.
pub async fn key_usage(store: &dyn Store) {
    let with_key = |id: &str, key_id: &str, environment: &str| {
        let mut record = sample_record(id, "api_key", b"sealed");
        record.meta.key_id = key_id.to_owned();
        record.meta.environment = environment.to_owned();
        record
    };
    let truth = |metas: Vec<RecordMeta>| -> BTreeSet<String> {
        metas
            .into_iter()
            .filter(|meta| meta.state != LifecycleState::Revoked && !meta.key_id.is_empty())
            .map(|meta| meta.key_id)
            .collect()
    };
    let environment = "keys-in-use";
    let check = || async {
        let Some(kept) = store.key_ids_in_use(environment).await.unwrap() else { return };
        let listed = store.list(&ListFilter::all().environment(environment)).await.unwrap();
        assert_eq!(kept, truth(listed), "the key ids kept disagree with the records");
    };
    for (id, key) in [("keys/a", "aaaa"), ("keys/b", "aaaa"), ("keys/c", "bbbb")] {
        store.put(with_key(id, key, environment), Precondition::Absent).await.unwrap();
    }
    store.put(with_key("keys/other", "cccc", "elsewhere"), Precondition::Absent).await.unwrap();
    check().await;
    // keys/c moves to another key; keys/b is revoked; keys/a is deleted.
    store.put(with_key("keys/c", "dddd", environment), Precondition::Revision(1)).await.unwrap();
    check().await;
    let mut revoked = with_key("keys/b", "aaaa", environment);
    revoked.meta.state = LifecycleState::Revoked;
    store.put(revoked, Precondition::Revision(1)).await.unwrap();
    check().await;
    store.delete("keys/a", 1).await.unwrap();
    check().await;
    if let Some(kept) = store.key_ids_in_use(environment).await.unwrap() {
        assert_eq!(kept, BTreeSet::from(["dddd".to_owned()]));
    }
}

/// The store's clock (which refresh leases lapse on) runs, and agrees with this machine's within
/// a minute: a store shared by machines whose clocks drift further apart needs fixing first.
pub async fn clock(store: &dyn Store) {
    let first = store.now().await.unwrap();
    let second = store.now().await.unwrap();
    assert!(second >= first, "the store's clock went back");
    let drift = (chrono::Utc::now() - first).abs();
    assert!(drift < chrono::Duration::minutes(1), "the store's clock is {drift} off");
}

/// Create, read, update, delete.
pub async fn crud(store: &dyn Store) {
    let id = "conformance/crud/one";
    assert!(store.get(id).await.unwrap().is_none());
    let record = sample_record(id, "api_key", b"sealed-1");
    assert_eq!(store.put(record.clone(), Precondition::Absent).await.unwrap(), 1);
    assert_eq!(store.get(id).await.unwrap(), Some(with_revision(record.clone(), 1)));

    let mut updated = record.clone();
    updated.meta.state = LifecycleState::Rotating;
    updated.versions.push(SealedVersion {
        version: 2,
        state: VersionState::Pending,
        created_at: record.meta.created_at,
        changed_at: record.meta.created_at,
        sealed: b"sealed-2".to_vec(),
    });
    assert_eq!(store.put(updated.clone(), Precondition::Revision(1)).await.unwrap(), 2);
    assert_eq!(store.get(id).await.unwrap(), Some(with_revision(updated, 2)));

    store.delete(id, 2).await.unwrap();
    assert!(store.get(id).await.unwrap().is_none());
    // Created again from scratch after a delete.
    assert_eq!(store.put(record, Precondition::Absent).await.unwrap(), 1);
}

/// A write or delete whose precondition fails is a conflict and changes nothing.
pub async fn preconditions(store: &dyn Store) {
    let id = "conformance/preconditions/one";
    let record = sample_record(id, "api_key", b"original");
    store.put(record.clone(), Precondition::Absent).await.unwrap();
    let stored = store.get(id).await.unwrap();

    let mut rival = record.clone();
    rival.versions[0].sealed = b"rival".to_vec();
    for precondition in [Precondition::Absent, Precondition::Revision(0), Precondition::Revision(2)]
    {
        match store.put(rival.clone(), precondition).await {
            Err(Error::Conflict { id: conflicted }) => assert_eq!(conflicted, id),
            other => panic!("{precondition:?} on revision 1 gave {other:?}"),
        }
    }
    assert!(matches!(store.delete(id, 7).await, Err(Error::Conflict { .. })));
    assert_eq!(store.get(id).await.unwrap(), stored, "a failed precondition changed the record");

    let absent = sample_record("conformance/preconditions/absent", "api_key", b"x");
    assert!(matches!(
        store.put(absent, Precondition::Revision(1)).await,
        Err(Error::Conflict { .. })
    ));
    assert!(store.get("conformance/preconditions/absent").await.unwrap().is_none());
    assert!(matches!(
        store.delete("conformance/preconditions/absent", 1).await,
        Err(Error::Conflict { .. })
    ));
}

/// Listing filters by kind, state, environment, tag and id prefix, ordered by id.
pub async fn listing_filters(store: &dyn Store) {
    let prefix = "conformance/list/";
    let specs = [
        ("c", "github", LifecycleState::Active, "production", "team-a"),
        ("a", "github", LifecycleState::Draft, "staging", "team-b"),
        ("b", "aws", LifecycleState::Active, "production", "team-b"),
        ("d/nested", "aws", LifecycleState::Revoked, "dev", "team-a"),
    ];
    for (name, kind, state, environment, tag) in specs {
        let mut record = sample_record(&format!("{prefix}{name}"), kind, name.as_bytes());
        record.meta.state = state;
        record.meta.environment = environment.to_owned();
        record.meta.tags = BTreeSet::from([tag.to_owned(), "shared".to_owned()]);
        store.put(record, Precondition::Absent).await.unwrap();
    }
    let ids = |metas: Vec<RecordMeta>| {
        metas
            .into_iter()
            .map(|meta| meta.id.trim_start_matches(prefix).to_owned())
            .collect::<Vec<_>>()
    };
    let scoped = || ListFilter::all().id_prefix(prefix);

    assert_eq!(ids(store.list(&scoped()).await.unwrap()), ["a", "b", "c", "d/nested"]);
    assert_eq!(ids(store.list(&scoped().kind("github")).await.unwrap()), ["a", "c"]);
    assert_eq!(ids(store.list(&scoped().state(LifecycleState::Active)).await.unwrap()), ["b", "c"]);
    assert_eq!(ids(store.list(&scoped().environment("dev")).await.unwrap()), ["d/nested"]);
    assert_eq!(ids(store.list(&scoped().tag("team-b")).await.unwrap()), ["a", "b"]);
    assert_eq!(
        ids(store
            .list(&scoped().tag("shared").kind("aws").state(LifecycleState::Active))
            .await
            .unwrap()),
        ["b"]
    );
    assert_eq!(
        ids(store.list(&ListFilter::all().id_prefix(format!("{prefix}d/"))).await.unwrap()),
        ["d/nested"]
    );
    assert!(store.list(&scoped().tag("nobody")).await.unwrap().is_empty());
    let listed = store.list(&scoped().kind("aws")).await.unwrap();
    assert!(listed.iter().all(|meta| meta.revision == 1 && meta.key_id == "0123456789abcdef"));
}

/// Records with several large versions round-trip exactly.
pub async fn large_records(store: &dyn Store) {
    let id = "conformance/large/one";
    let mut record = sample_record(id, "certificate", &vec![0xAB; 1 << 20]);
    for version in 2..=3u8 {
        record.versions.push(SealedVersion {
            version: u64::from(version),
            state: VersionState::Deprecated,
            created_at: record.meta.created_at,
            changed_at: record.meta.created_at,
            sealed: (0..(1 << 20)).map(|i: u32| (i % 251) as u8 ^ version).collect(),
        });
    }
    record.meta.tags = (0..100).map(|i| format!("tag-{i}")).collect();
    store.put(record.clone(), Precondition::Absent).await.unwrap();
    assert_eq!(store.get(id).await.unwrap(), Some(with_revision(record, 1)));
}

/// Hundreds of records are all listed and readable.
pub async fn many_records(store: &dyn Store) {
    let prefix = "conformance/many/";
    for i in 0..300 {
        let id = format!("{prefix}{i:04}");
        store
            .put(sample_record(&id, "api_key", id.as_bytes()), Precondition::Absent)
            .await
            .unwrap();
    }
    let listed = store.list(&ListFilter::all().id_prefix(prefix)).await.unwrap();
    assert_eq!(listed.len(), 300);
    assert!(listed.windows(2).all(|pair| pair[0].id < pair[1].id));
    let last = store.get(&format!("{prefix}0299")).await.unwrap().unwrap();
    assert_eq!(last.versions[0].sealed, format!("{prefix}0299").as_bytes());
}

/// Ids at the edge of the allowlist work; ids outside it are refused by every method.
pub async fn edge_ids(store: &dyn Store) {
    let longest =
        format!("conformance/edge/{}", "x".repeat(MAX_ID_LEN - "conformance/edge/".len()));
    for id in [longest.as_str(), "conformance/edge/A-Z_a.z-0.9", "conformance/edge/a/b/c/d/e/f"] {
        store.put(sample_record(id, "api_key", b"edge"), Precondition::Absent).await.unwrap();
        assert_eq!(store.get(id).await.unwrap().unwrap().meta.id, id);
    }
    let too_long = format!("{longest}x");
    for id in [
        "",
        "../escape",
        "conformance/../x",
        "/abs",
        "a//b",
        ".hidden",
        "nul\0byte",
        "sp ace",
        too_long.as_str(),
    ] {
        assert!(matches!(store.get(id).await, Err(Error::InvalidId { .. })), "get {id:?}");
        assert!(matches!(store.delete(id, 1).await, Err(Error::InvalidId { .. })), "delete {id:?}");
        let result = store.put(sample_record(id, "api_key", b"x"), Precondition::Absent).await;
        assert!(matches!(result, Err(Error::InvalidId { .. })), "put {id:?}");
    }
}

/// 8 tasks each add 1 fifty times with compare-and-swap: exactly 400. A compare-and-swap that is
/// not atomic loses an increment whenever two writers race, and eight writers on one record race
/// on most of their writes, so a few hundred writes show it.
pub async fn concurrent_writers(store: Arc<dyn Store>) {
    const TASKS: u64 = 8;
    const INCREMENTS: u64 = 50;
    let id = "conformance/concurrent/counter";
    store
        .put(sample_record(id, "counter", &0u64.to_be_bytes()), Precondition::Absent)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { increment(store.as_ref(), id, INCREMENTS).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!(counter_value(&record), TASKS * INCREMENTS);
    assert_eq!(record.meta.revision, 1 + TASKS * INCREMENTS);
}

/// Adds 1 to the counter record `id`, `times` times, retrying each lost race; returns how many
/// races it lost.
pub async fn increment(store: &dyn Store, id: &str, times: u64) -> u64 {
    let (mut done, mut conflicts) = (0, 0);
    while done < times {
        let mut record = store.get(id).await.unwrap().unwrap();
        let revision = record.meta.revision;
        let next = counter_value(&record) + 1;
        record.versions[0].sealed = next.to_be_bytes().to_vec();
        match store.put(record, Precondition::Revision(revision)).await {
            Ok(_) => done += 1,
            Err(Error::Conflict { .. }) => {
                conflicts += 1;
                tokio::task::yield_now().await;
            }
            Err(other) => panic!("increment failed: {other}"),
        }
    }
    conflicts
}

/// The value of a counter record written by [`increment`].
pub fn counter_value(record: &Record) -> u64 {
    u64::from_be_bytes(record.versions[0].sealed.as_slice().try_into().unwrap())
}
