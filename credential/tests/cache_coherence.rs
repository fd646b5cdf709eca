//! The cache never undoes a change: a read in flight while a revoke or commit lands, a change
//! made through another manager, and a change feed that falls silent all end in fresh reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use credential::kinds::ApiKey;
use credential::{
    CacheConfig, ChangeFeed, ChangeListener, Error, ExposeSecret, FeedKind, KeyRing, ListFilter,
    Manager, MemoryStore, Precondition, Principal, Record, RecordMeta, Store,
};
use tokio::sync::{Notify, oneshot};

/// A memory store under test control: it can park the next `get` until released, so a read is
/// held in flight while a change commits; and its change feed is the memory store's, none, or
/// one the test drives by hand.
struct TestStore {
    inner: Arc<MemoryStore>,
    gate: Mutex<Option<Gate>>,
    feed: Feed,
}

enum Feed {
    None,
    Forwarded,
    /// A polled feed whose listener the test calls.
    ByHand(Mutex<Option<Arc<dyn ChangeListener>>>),
}

struct Gate {
    parked: oneshot::Sender<()>,
    release: Arc<Notify>,
}

impl TestStore {
    fn new(inner: Arc<MemoryStore>, feed: Feed) -> Self {
        Self { inner, gate: Mutex::new(None), feed }
    }

    /// Arms the gate: the next `get` reports on the returned receiver, then waits for `release`.
    fn arm(&self) -> (oneshot::Receiver<()>, Arc<Notify>) {
        let (parked, on_parked) = oneshot::channel();
        let release = Arc::new(Notify::new());
        *self.gate.lock().unwrap() = Some(Gate { parked, release: Arc::clone(&release) });
        (on_parked, release)
    }

    /// The listener of a hand-driven feed.
    fn listener(&self) -> Arc<dyn ChangeListener> {
        match &self.feed {
            Feed::ByHand(listener) => listener.lock().unwrap().clone().unwrap(),
            _ => panic!("not a hand-driven feed"),
        }
    }
}

#[async_trait]
impl Store for TestStore {
    async fn get(&self, id: &str) -> credential::Result<Option<Record>> {
        let record = self.inner.get(id).await?;
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            // The record was read; the change lands while this read is parked.
            let _ = gate.parked.send(());
            gate.release.notified().await;
        }
        Ok(record)
    }

    async fn put(&self, record: Record, precondition: Precondition) -> credential::Result<u64> {
        self.inner.put(record, precondition).await
    }

    async fn delete(&self, id: &str, revision: u64) -> credential::Result<()> {
        self.inner.delete(id, revision).await
    }

    async fn list(&self, filter: &ListFilter) -> credential::Result<Vec<RecordMeta>> {
        self.inner.list(filter).await
    }

    fn watch(&self, listener: Arc<dyn ChangeListener>) -> credential::Result<Option<ChangeFeed>> {
        match &self.feed {
            Feed::None => Ok(None),
            Feed::Forwarded => self.inner.watch(listener),
            Feed::ByHand(slot) => {
                *slot.lock().unwrap() = Some(listener);
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                Ok(Some(ChangeFeed::new(FeedKind::Polled, stop)))
            }
        }
    }
}

/// Reads `api/key` through `ctx`, parks the read in `store` after it has read the record, runs
/// `change`, then lets the read finish; returns what the read got.
async fn read_across<F: Future<Output = ()>>(
    store: &TestStore,
    ctx: &credential::Context,
    change: F,
) -> credential::Result<Arc<ApiKey>> {
    let (parked, release) = store.arm();
    let in_flight = tokio::spawn({
        let ctx = ctx.clone();
        async move { ctx.get::<ApiKey>("api/key").await }
    });
    parked.await.unwrap();
    change.await;
    release.notify_one();
    in_flight.await.unwrap()
}

fn key(text: &str) -> ApiKey {
    ApiKey::new(text.into())
}

fn long_lived_cache() -> CacheConfig {
    CacheConfig::new(Duration::from_secs(3600), 1_000)
}

async fn manager_over(store: impl Store) -> Manager {
    Manager::builder()
        .store(store)
        .key_ring(KeyRing::generate().unwrap())
        .cache(long_lived_cache())
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_during_an_in_flight_read_is_never_undone() {
    let gated = Arc::new(TestStore::new(Arc::new(MemoryStore::new()), Feed::None));
    let manager = manager_over(Arc::clone(&gated)).await;
    let active =
        manager.create("api/key", key("sk_before")).await.unwrap().activate().await.unwrap();
    let ctx = manager.context(Principal::named("reader"));

    let revoke = async {
        active.revoke("leaked").await.unwrap();
    };
    let read = read_across(&gated, &ctx, revoke).await;
    // The read that began before the revoke may return what it read...
    assert_eq!(read.unwrap().key.expose_secret(), "sk_before");
    // ...but every read after the revoke is refused: the stale value was never cached.
    for _ in 0..3 {
        assert!(matches!(ctx.get::<ApiKey>("api/key").await, Err(Error::Revoked { .. })));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_during_an_in_flight_read_is_served_afterwards() {
    let gated = Arc::new(TestStore::new(Arc::new(MemoryStore::new()), Feed::None));
    let manager = manager_over(Arc::clone(&gated)).await;
    let active = manager.create("api/key", key("sk_one")).await.unwrap().activate().await.unwrap();
    let rotating = active.rotate(key("sk_two")).await.unwrap();
    let ctx = manager.context(Principal::named("reader"));

    let commit = async {
        rotating.commit().await.unwrap();
    };
    let read = read_across(&gated, &ctx, commit).await;
    assert_eq!(read.unwrap().key.expose_secret(), "sk_one");
    assert_eq!(ctx.get::<ApiKey>("api/key").await.unwrap().key.expose_secret(), "sk_two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_through_another_manager_reaches_a_read_in_flight() {
    let shared = Arc::new(MemoryStore::new());
    let gated = Arc::new(TestStore::new(Arc::clone(&shared), Feed::Forwarded));
    let ring = KeyRing::generate().unwrap();
    let build = |store: Arc<dyn Store>| {
        Manager::builder().store(store).key_ring(ring.clone()).cache(long_lived_cache()).build()
    };
    let writer = build(Arc::clone(&shared) as Arc<dyn Store>).await.unwrap();
    let reader = build(Arc::clone(&gated) as Arc<dyn Store>).await.unwrap();
    let active =
        writer.create("api/key", key("sk_before")).await.unwrap().activate().await.unwrap();
    let ctx = reader.context(Principal::named("reader"));

    let revoke = async {
        active.revoke("leaked").await.unwrap();
    };
    read_across(&gated, &ctx, revoke).await.unwrap();
    assert!(matches!(ctx.get::<ApiKey>("api/key").await, Err(Error::Revoked { .. })));
}

#[tokio::test]
async fn a_silent_feed_costs_speed_never_correctness() {
    let inner = Arc::new(MemoryStore::new());
    let store = Arc::new(TestStore::new(Arc::clone(&inner), Feed::ByHand(Mutex::new(None))));
    let ring = KeyRing::generate().unwrap();
    let build = |store: Arc<dyn Store>| {
        Manager::builder().store(store).key_ring(ring.clone()).cache(long_lived_cache()).build()
    };
    let reader = build(Arc::clone(&store) as Arc<dyn Store>).await.unwrap();
    // Another writer on the same records, whose changes the feed will not report.
    let other = build(Arc::clone(&inner) as Arc<dyn Store>).await.unwrap();
    let listener = store.listener();
    let active = other.create("api/key", key("sk_one")).await.unwrap().activate().await.unwrap();
    let ctx = reader.context(Principal::named("reader"));

    // A feed that last caught up long ago: every read goes to the store.
    listener.caught_up(SystemTime::now() - Duration::from_secs(10));
    assert_eq!(ctx.get::<ApiKey>("api/key").await.unwrap().key.expose_secret(), "sk_one");
    let active = active.rotate(key("sk_two")).await.unwrap().commit().await.unwrap();
    assert_eq!(ctx.get::<ApiKey>("api/key").await.unwrap().key.expose_secret(), "sk_two");

    // A feed that reports a lost stretch: whatever was cached is dropped.
    listener.caught_up(SystemTime::now());
    assert_eq!(ctx.get::<ApiKey>("api/key").await.unwrap().key.expose_secret(), "sk_two");
    active.revoke("leaked").await.unwrap();
    listener.lost();
    listener.caught_up(SystemTime::now());
    assert!(matches!(ctx.get::<ApiKey>("api/key").await, Err(Error::Revoked { .. })));
}
