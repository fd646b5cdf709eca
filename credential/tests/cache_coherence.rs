//! The cache never undoes a change: a read in flight while a revoke or commit lands, a change
//! made through another manager, and a change feed that falls silent all end in fresh reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use credential::kinds::ApiKey;
use credential::store::{
    ChangeFeed, ChangeListener, FeedKind, MAX_FEED_LAG, Precondition, Record, RecordMeta, Store,
};
use credential::{
    CacheConfig, Error, ExposeSecret, KeyRing, ListFilter, Manager, MemoryStore, Principal,
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
async fn without_a_feed_another_managers_revoke_is_refused_within_the_feeds_bound() {
    let shared = Arc::new(MemoryStore::new());
    let ring = KeyRing::generate().unwrap();
    let unwatched = || Arc::new(TestStore::new(Arc::clone(&shared), Feed::None)) as Arc<dyn Store>;
    let builder = |store: Arc<dyn Store>| {
        Manager::builder().store(store).key_ring(ring.clone()).cache(long_lived_cache())
    };
    let writer = builder(Arc::clone(&shared) as Arc<dyn Store>).build().await.unwrap();
    let reader = builder(unwatched()).build().await.unwrap();
    let sole = builder(unwatched()).sole_writer().build().await.unwrap();
    let active =
        writer.create("api/key", key("sk_before")).await.unwrap().activate().await.unwrap();
    let (ctx, sole_ctx) =
        (reader.context(Principal::named("r")), sole.context(Principal::named("r")));
    for ctx in [&ctx, &sole_ctx] {
        ctx.get::<ApiKey>("api/key").await.unwrap();
        ctx.get::<ApiKey>("api/key").await.unwrap();
    }
    // Both entries were installed before this instant.
    let cached_by = tokio::time::Instant::now();
    active.revoke("leaked").await.unwrap();
    // Once a feed's lag has passed since, the reader's entry is no longer served, though its
    // time to live is an hour: it goes to the store and finds the revoke.
    tokio::time::sleep_until(cached_by + MAX_FEED_LAG + Duration::from_millis(1)).await;
    assert!(matches!(ctx.get::<ApiKey>("api/key").await, Err(Error::Revoked { .. })));
    // A manager declared the store's sole writer keeps its hour: the trade-off it opted into.
    let kept = sole_ctx.get::<ApiKey>("api/key").await.unwrap();
    assert_eq!(kept.key.expose_secret(), "sk_before");
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

/// What a reader thread is told to do next.
enum Step {
    /// Read as the reader, expecting this key (`None`: a revoked credential).
    Expect(Option<&'static str>),
    /// Read as a principal without a grant.
    Intrude,
}

#[test]
fn reads_on_many_threads_never_outlive_a_change_or_serve_another_principal() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = Arc::new(MemoryStore::new());
    let ring = KeyRing::generate().unwrap();
    let build = |policy: Option<credential::AccessPolicy>| {
        let builder = Manager::builder()
            .store(Arc::clone(&store))
            .key_ring(ring.clone())
            .cache(long_lived_cache());
        let builder = match policy {
            Some(policy) => builder.access_policy(policy),
            None => builder,
        };
        runtime.block_on(builder.build()).unwrap()
    };
    let policy = credential::AccessPolicy::new()
        .grant(credential::Grant::admin("operator", "*"))
        .grant(credential::Grant::read("reader", "api/*"));
    let reader = build(Some(policy));
    let other = build(None);
    let active = runtime
        .block_on(async { other.create("api/key", key("sk_one")).await?.activate().await })
        .unwrap();

    // Two reader threads, each reading three times per step through a fresh context: a load or
    // a hit, then hits.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let steps: Vec<_> = (0..2)
            .map(|_| {
                let (step, steps) = std::sync::mpsc::channel::<Step>();
                let (reader, done) = (&reader, done.clone());
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    while let Ok(step) = steps.recv() {
                        let ok = runtime.block_on(async {
                            match step {
                                Step::Intrude => {
                                    let ctx = reader.context(Principal::named("intruder"));
                                    matches!(
                                        ctx.get::<ApiKey>("api/key").await,
                                        Err(Error::AccessDenied { .. })
                                    )
                                }
                                Step::Expect(expected) => {
                                    let mut all = true;
                                    for _ in 0..3 {
                                        let ctx = reader.context(Principal::named("reader"));
                                        let got = ctx.get::<ApiKey>("api/key").await;
                                        all &= match (expected, got) {
                                            (Some(text), Ok(key)) => {
                                                key.key.expose_secret() == text
                                            }
                                            (None, Err(Error::Revoked { .. })) => true,
                                            _ => false,
                                        };
                                    }
                                    all
                                }
                            }
                        });
                        done.send(ok).unwrap();
                    }
                });
                step
            })
            .collect();
        let run = |step: fn() -> Step| {
            for thread in &steps {
                thread.send(step()).unwrap();
            }
            (0..steps.len()).all(|_| finished.recv().unwrap())
        };
        assert!(run(|| Step::Expect(Some("sk_one"))));
        assert!(run(|| Step::Intrude), "an entry read by one principal was served to another");
        // A change through another manager reaches the cache through the store's feed.
        let active =
            runtime.block_on(async { active.rotate(key("sk_two")).await?.commit().await }).unwrap();
        assert!(run(|| Step::Expect(Some("sk_two"))), "a cached value outlived a commit");
        // A revoke through the readers' own manager reaches them at once.
        let held = runtime.block_on(reader.load::<ApiKey>("api/key")).unwrap();
        drop(active);
        runtime.block_on(async { held.into_active().unwrap().revoke("leaked").await }).unwrap();
        assert!(run(|| Step::Expect(None)), "a cached value outlived a revoke");
        drop(steps);
    });
}
