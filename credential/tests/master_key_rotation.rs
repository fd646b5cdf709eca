//! Master-key rotation through the manager over a real store: resumable, safe to interrupt,
//! authorized as admin, audited, old key retired at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use credential::audit::{AuditAction, AuditOutcome, AuditQuery, MemoryAuditSink};
use credential::crypto::MasterKey;
use credential::kinds::ApiKey;
use credential::store::{Precondition, Record, RecordMeta, Store};
use credential::{
    AccessPolicy, Error, ExposeSecret, Grant, KeyRing, ListFilter, Manager, MemoryStore, Principal,
    SqliteStore,
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
            return Err(Error::storage("test", false, std::io::Error::other("disk full")));
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

fn key(n: usize) -> ApiKey {
    ApiKey::new(format!("sk_rotation_{n}").into())
}

async fn manager_over(store: impl Store, ring: &KeyRing) -> credential::Result<Manager> {
    Manager::builder()
        .store(store)
        .key_ring(ring.clone())
        .audit(MemoryAuditSink::new())
        .build()
        .await
}

/// `count` credentials with three versions each (two deprecated, one current).
async fn seed(manager: &Manager, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let id = format!("rotation/{i:03}");
        let active = manager.create(&id, key(i)).await.unwrap().activate().await.unwrap();
        let active = active.rotate(key(i + 1000)).await.unwrap().commit().await.unwrap();
        active.rotate(key(i + 2000)).await.unwrap().commit().await.unwrap();
        ids.push(id);
    }
    ids
}

/// Every version of every credential still opens, through the manager.
async fn assert_all_open(manager: &Manager, ids: &[String]) {
    let ctx = manager.context(Principal::named("check"));
    for (i, id) in ids.iter().enumerate() {
        let current = ctx.get::<ApiKey>(id).await.unwrap();
        assert_eq!(current.key.expose_secret(), format!("sk_rotation_{}", i + 2000));
        let older = ctx.get_version::<ApiKey>(id, 2).await.unwrap();
        assert_eq!(older.key.expose_secret(), format!("sk_rotation_{}", i + 1000));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_rotation_resumes_and_the_old_key_retires() {
    let dir = scratch_dir("rotation");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("db")).await.unwrap());
    let mut ring = KeyRing::generate().unwrap();
    let old = ring.current_id().clone();
    let ids = seed(&manager_over(Arc::clone(&store), &ring).await.unwrap(), 40).await;

    let new = ring.add(MasterKey::generate().unwrap());
    ring.make_current(&new).unwrap();

    // The first run dies after 15 records.
    let failing =
        FailingAfter { inner: Arc::clone(&store), allowed: 15, writes: AtomicUsize::new(0) };
    let dying = manager_over(failing, &ring).await.unwrap();
    let mut reported = Vec::new();
    let error = dying.rekey(|progress| reported.push(progress.done)).await.unwrap_err();
    assert!(matches!(error, Error::Storage { .. }));
    assert_eq!(reported, (1..=15).collect::<Vec<_>>());
    let manager = manager_over(Arc::clone(&store), &ring).await.unwrap();
    assert_all_open(&manager, &ids).await;

    // Resuming re-seals only what is left, reporting progress for every record.
    let mut last = None;
    let report = manager.rekey(|progress| last = Some(progress)).await.unwrap();
    assert_eq!((report.records, report.resealed), (40, 25));
    assert_eq!(last.map(|p| (p.done, p.total, p.resealed)), Some((40, 40, 25)));
    assert_eq!(report.keys_in_use.into_iter().collect::<Vec<_>>(), [new.to_string()]);

    // Every re-seal is audited as the manager's principal.
    let rekeys =
        manager.audit().query(&AuditQuery::all().action(AuditAction::Rekey)).await.unwrap();
    assert_eq!(rekeys.len(), 25);
    assert!(rekeys.iter().all(|event| &*event.principal == "operator"));

    ring.retire(&old).unwrap();
    let retired = manager_over(Arc::clone(&store), &ring).await.unwrap();
    assert_all_open(&retired, &ids).await;

    // A third run has nothing to do.
    let report = retired.rekey(|_| {}).await.unwrap();
    assert_eq!(report.resealed, 0);
}

#[tokio::test]
async fn rekey_needs_admin_and_is_audited_when_refused() {
    let store = Arc::new(MemoryStore::new());
    let mut ring = KeyRing::generate().unwrap();
    let policy = AccessPolicy::new()
        .grant(Grant::admin("operator", "*"))
        .grant(Grant::write("ops:bob", "*"));
    let manager = Manager::builder()
        .store(Arc::clone(&store))
        .key_ring(ring.clone())
        .access_policy(policy.clone())
        .build()
        .await
        .unwrap();
    seed(&manager, 2).await;
    let new = ring.add(MasterKey::generate().unwrap());
    ring.make_current(&new).unwrap();
    let rekeying = Manager::builder()
        .store(Arc::clone(&store))
        .key_ring(ring)
        .access_policy(policy)
        .build()
        .await
        .unwrap();
    let bob = rekeying.acting_as(Principal::named("ops:bob"));
    assert!(matches!(bob.rekey(|_| {}).await, Err(Error::AccessDenied { .. })));
    let denied = rekeying
        .audit()
        .query(&AuditQuery::all().action(AuditAction::Rekey).outcome(AuditOutcome::Denied))
        .await
        .unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(&*denied[0].principal, "ops:bob");
    assert_eq!(rekeying.rekey(|_| {}).await.unwrap().resealed, 2);
}

#[tokio::test]
async fn a_ring_missing_a_key_in_use_is_refused_before_anything_changes() {
    let store = Arc::new(MemoryStore::new());
    let ring = KeyRing::generate().unwrap();
    let ids = seed(&manager_over(Arc::clone(&store), &ring).await.unwrap(), 3).await;
    let stranger = KeyRing::generate().unwrap();
    assert!(matches!(
        manager_over(Arc::clone(&store), &stranger).await,
        Err(Error::WrongMasterKey { .. })
    ));
    assert_all_open(&manager_over(store, &ring).await.unwrap(), &ids).await;
}
