//! Master-key rotation over a real store: resumable, safe to interrupt, old key retired at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use credential::conformance::sample_record;
use credential::{
    Error, KeyRing, ListFilter, MasterKey, Precondition, Record, RecordMeta, SealContext,
    SealedVersion, SqliteStore, Store, VersionState, rekey,
};
use support::scratch_dir;

/// Passes everything through, but fails every write after the first `allowed`: a rotation that
/// dies halfway.
struct FailingAfter {
    inner: Arc<dyn Store>,
    allowed: usize,
    writes: AtomicUsize,
}

#[async_trait]
impl Store for FailingAfter {
    async fn get(&self, id: &str) -> credential::Result<Option<Record>> {
        self.inner.get(id).await
    }

    async fn put(&self, record: Record, precondition: Precondition) -> credential::Result<u64> {
        if self.writes.fetch_add(1, Ordering::SeqCst) >= self.allowed {
            return Err(Error::Storage { backend: "test", message: "disk full".into() });
        }
        self.inner.put(record, precondition).await
    }

    async fn delete(&self, id: &str, revision: u64) -> credential::Result<()> {
        self.inner.delete(id, revision).await
    }

    async fn list(&self, filter: &ListFilter) -> credential::Result<Vec<RecordMeta>> {
        self.inner.list(filter).await
    }
}

fn payload(id: &str, version: u64) -> Vec<u8> {
    format!("{id}@{version}").into_bytes()
}

async fn seed(store: &dyn Store, ring: &KeyRing, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let id = format!("rotation/{i:03}");
        let mut record = sample_record(&id, "api_key", &[]);
        record.meta.key_id = ring.current_id().to_string();
        record.versions = (1..=3)
            .map(|version| SealedVersion {
                version,
                state: if version == 3 { VersionState::Current } else { VersionState::Deprecated },
                created_at: record.meta.created_at,
                changed_at: record.meta.created_at,
                sealed: ring
                    .seal(&SealContext::new(&id, version, "api_key"), &payload(&id, version))
                    .unwrap(),
            })
            .collect();
        store.put(record, Precondition::Absent).await.unwrap();
        ids.push(id);
    }
    ids
}

async fn assert_all_open(store: &dyn Store, ring: &KeyRing, ids: &[String]) {
    for id in ids {
        let record = store.get(id).await.unwrap().unwrap();
        for version in &record.versions {
            let opened = ring
                .open(&SealContext::new(id, version.version, "api_key"), &version.sealed)
                .unwrap();
            assert_eq!(*opened, payload(id, version.version));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_rotation_resumes_and_the_old_key_retires() {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(scratch_dir("rotation").join("db")).await.unwrap());
    let mut ring = KeyRing::generate().unwrap();
    let old = ring.current_id().clone();
    let ids = seed(store.as_ref(), &ring, 40).await;

    let new = ring.add(MasterKey::generate().unwrap());
    ring.make_current(&new).unwrap();

    // The first run dies after 15 records.
    let failing =
        FailingAfter { inner: Arc::clone(&store), allowed: 15, writes: AtomicUsize::new(0) };
    let mut reported = Vec::new();
    let error = rekey(&failing, &ring, |progress| reported.push(progress.done)).await.unwrap_err();
    assert!(matches!(error, Error::Storage { .. }));
    assert_eq!(reported, (1..=15).collect::<Vec<_>>());
    assert_all_open(store.as_ref(), &ring, &ids).await;

    // Resuming re-seals only what is left, reporting progress for every record.
    let mut last = None;
    let report = rekey(store.as_ref(), &ring, |progress| last = Some(progress)).await.unwrap();
    assert_eq!((report.records, report.resealed), (40, 25));
    assert_eq!(last.map(|p| (p.done, p.total, p.resealed)), Some((40, 40, 25)));
    assert_eq!(report.keys_in_use.into_iter().collect::<Vec<_>>(), [new.to_string()]);

    ring.retire(&old).unwrap();
    assert_all_open(store.as_ref(), &ring, &ids).await;

    // A third run has nothing to do.
    let report = rekey(store.as_ref(), &ring, |_| {}).await.unwrap();
    assert_eq!(report.resealed, 0);
}

#[tokio::test]
async fn rotation_with_a_ring_missing_the_old_key_fails_without_touching_records() {
    let store = credential::MemoryStore::new();
    let ring = KeyRing::generate().unwrap();
    let ids = seed(&store, &ring, 3).await;
    let stranger = KeyRing::generate().unwrap();
    assert!(matches!(rekey(&store, &stranger, |_| {}).await, Err(Error::Decrypt)));
    assert_all_open(&store, &ring, &ids).await;
}
