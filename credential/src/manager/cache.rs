//! The cache of decrypted credentials: typed `Arc`s with a time to live and a capacity, loaded at
//! most once at a time per id, and coherent with every change the manager learns of.
//!
//! Coherence: a load registers a *flight* for its id before it reads the store. A change to the
//! id (a commit through this manager, or a report from the store's change feed) removes the entry
//! and marks the flight stale, so a load that read the store before the change can hand its value
//! to the callers already waiting for it but never installs it. While the store's feed is behind
//! (see [`MAX_FEED_LAG`]) hits are not served and loads are not installed: every read goes to
//! the store.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

use super::access::Principal;
use super::audit_batch::ReadTally;
use super::clock;
use super::front_cache::{self, Allowed, Epochs, Hit};
use super::registry::Decoded;
use crate::id_hasher::IdMap;
use crate::{ChangeListener, FeedKind, MAX_FEED_LAG, Result};

/// How long decrypted credentials stay cached, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    ttl: Duration,
    capacity: usize,
}

impl CacheConfig {
    /// Entries live for `ttl`; at most `capacity` are kept (the oldest go first). Each thread that
    /// reads also keeps its own copies of up to `capacity` entries it has served (references to
    /// the same decrypted values, not copies of them), so that a cached read touches nothing
    /// another thread writes; a thread's copies start over when full.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity }
    }

    /// No caching: every read decrypts.
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO, 0)
    }
}

impl Default for CacheConfig {
    /// Five minutes, 10,000 entries.
    fn default() -> Self {
        Self::new(Duration::from_secs(300), 10_000)
    }
}

/// A loaded credential as the cache keeps it: one allocation shared by the cache, every thread's
/// copy and the reads in flight, so handing it out counts one reference.
#[derive(Clone)]
pub(crate) struct Cached(Arc<Loaded>);

/// What a load found.
pub(crate) struct Loaded {
    pub(crate) credential: Decoded,
    pub(crate) id: Arc<str>,
    pub(crate) version: u64,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// When a refresh falls due (`None`: nothing refreshes it).
    pub(crate) due_at: Option<DateTime<Utc>>,
}

impl Cached {
    pub(crate) fn new(loaded: Loaded) -> Self {
        Self(Arc::new(loaded))
    }
}

impl std::ops::Deref for Cached {
    type Target = Loaded;

    fn deref(&self) -> &Loaded {
        &self.0
    }
}

#[cfg(test)]
impl Cached {
    /// An entry of `id` at version `version` with a made-up value, for the cache's tests.
    pub(crate) fn for_tests_of(id: &str, version: u64) -> Self {
        let key = Arc::new(crate::kinds::ApiKey { key: "k".into(), header: None });
        Self::new(Loaded {
            credential: Decoded { value: Arc::new(version), fields: key, kind: "test" },
            id: Arc::from(id),
            version,
            expires_at: None,
            due_at: None,
        })
    }

    /// How many hold this entry.
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// As [`for_tests_of`](Self::for_tests_of), of a made-up id.
    pub(crate) fn for_tests(version: u64) -> Self {
        Self::for_tests_of("id", version)
    }
}

struct Entry {
    cached: Cached,
    fresh_until: DateTime<Utc>,
    /// Which install this is, so the eviction order can tell it from an earlier one of the key.
    generation: u64,
}

/// One load in progress; every caller that misses while it runs shares its result.
#[derive(Default)]
struct Flight {
    result: tokio::sync::OnceCell<Result<Cached>>,
    /// A change arrived while the load ran: its value must not be installed.
    stale: AtomicBool,
}

#[derive(Default)]
struct Entries {
    /// Keyed by the same shared id the eviction order holds.
    entries: IdMap<Entry, Arc<str>>,
    flights: IdMap<Arc<Flight>>,
    /// Installs, oldest first: every entry has the ttl, so this is also the order they go stale
    /// in. Installs of entries removed since are skipped when met, and dropped in bulk once they
    /// outnumber the entries, so evicting costs O(1) amortized instead of a scan.
    order: VecDeque<(Arc<str>, u64)>,
    next_generation: u64,
}

impl Entries {
    /// Whether `(key, generation)` is the install of an entry still cached.
    fn is_live(&self, key: &str, generation: u64) -> bool {
        self.entries.get(key).is_some_and(|entry| entry.generation == generation)
    }

    /// Removes the oldest entry.
    fn evict_oldest(&mut self) {
        while let Some((key, generation)) = self.order.pop_front() {
            if self.is_live(&key, generation) {
                self.entries.remove(&*key);
                return;
            }
        }
    }

    fn insert(&mut self, key: &str, cached: Cached, fresh_until: DateTime<Utc>) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let key: Arc<str> = Arc::from(key);
        self.order.push_back((Arc::clone(&key), generation));
        self.entries.insert(key, Entry { cached, fresh_until, generation });
        if self.order.len() > 2 * self.entries.len() + 64 {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|(key, generation)| self.is_live(key, *generation));
            self.order = order;
        }
    }
}

/// How fresh the store's change feed keeps the cache.
///
/// Freshness is judged on the system clock the read path reads anyway. A clock that steps
/// forward makes the feed look late and a clock that steps back makes it look early; both make
/// the cache step aside until the feed reports again, so a clock step costs speed, never a stale
/// read.
#[derive(Default)]
struct Freshness {
    /// A polled feed: hits are served only while it has caught up recently.
    polled: AtomicBool,
    /// Nanoseconds since the Unix epoch up to which the polled feed has reported every change
    /// (zero: never).
    caught_up: AtomicI64,
}

/// How far ahead of a reader's clock reading a feed's report may seem (readings on different
/// cores), before the clock is taken to have stepped back.
const CLOCK_SLACK_NANOS: i64 = 1_000_000;

impl Freshness {
    fn is_fresh(&self, now: i64) -> bool {
        if !self.polled.load(Ordering::Acquire) {
            return true;
        }
        let caught_up = self.caught_up.load(Ordering::Acquire);
        if caught_up == 0 {
            return false;
        }
        let lag = i64::try_from(MAX_FEED_LAG.as_nanos()).unwrap_or(i64::MAX);
        let behind = now.saturating_sub(caught_up);
        (-CLOCK_SLACK_NANOS..=lag).contains(&behind)
    }
}

pub(crate) struct Cache {
    config: CacheConfig,
    state: Mutex<Entries>,
    freshness: Freshness,
    /// What the threads' copies of entries are checked against (see [`front_cache`]).
    epochs: Arc<Epochs>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.epochs.forget_copies();
    }
}

impl Cache {
    pub(crate) fn new(config: CacheConfig) -> Self {
        Self {
            config,
            state: Mutex::default(),
            freshness: Freshness::default(),
            epochs: Epochs::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, Entries> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves hits only as fresh as a feed of `kind` allows.
    pub(crate) fn follow(&self, kind: FeedKind) {
        self.freshness.polled.store(kind == FeedKind::Polled, Ordering::Release);
        self.clear();
    }

    /// Whether the cache serves and keeps entries at the time `now` reads (asked only when it
    /// matters: a cache turned off does not read the clock).
    fn enabled(&self, now: impl FnOnce() -> i64) -> bool {
        self.config.capacity > 0 && self.freshness.is_fresh(now())
    }

    /// This thread's copy of the entry for `key`, if it is current, fresh at `now` (the caller's
    /// clock reading, so a read asks the clock once) and already allowed for `principal`; counted
    /// on the copy's tally when it can be, and then only `take` of it handed out (see
    /// [`front_cache::get`]).
    pub(crate) fn copy<T>(
        &self,
        key: &str,
        principal: &Principal,
        now: i64,
        counts: impl FnOnce(&Cached) -> bool,
        take: impl FnOnce(&Cached) -> T,
    ) -> Option<Result<Hit<T>>> {
        if !self.enabled(|| now) {
            return None;
        }
        front_cache::get(&self.epochs, key, principal, now, counts, take)
    }

    /// The entry for `key` if it is still fresh at `now`; a hit leaves this thread a copy for
    /// `reader`, to be served without asking again to whom `copy` says and `reader`'s reads
    /// counted on the tally it gives.
    pub(crate) fn get(
        &self,
        key: &str,
        reader: &Principal,
        now: DateTime<Utc>,
        copy: impl FnOnce(&Cached) -> (Allowed, Option<Arc<ReadTally>>),
    ) -> Option<Cached> {
        if !self.enabled(|| clock::nanos(now)) {
            return None;
        }
        let (cached, fresh_until, stamp) = {
            let state = self.state();
            let entry = state.entries.get(key).filter(|entry| now < entry.fresh_until)?;
            (entry.cached.clone(), entry.fresh_until, self.epochs.stamp(key))
        };
        let (allowed, tally) = copy(&cached);
        let capacity = self.config.capacity;
        front_cache::put(
            &self.epochs,
            capacity,
            key,
            &cached,
            fresh_until,
            stamp,
            reader,
            allowed,
            tally,
        );
        Some(cached)
    }

    /// Forgets `key`, and keeps a load of it already running from installing what it read.
    /// A cache turned off holds nothing to forget.
    pub(crate) fn invalidate(&self, key: &str) {
        if self.config.capacity == 0 {
            return;
        }
        let mut state = self.state();
        state.entries.remove(key);
        self.epochs.changed(key);
        // Loads are rarely running: most changes hash the key once less.
        if state.flights.is_empty() {
            return;
        }
        if let Some(flight) = state.flights.remove(key) {
            flight.stale.store(true, Ordering::Release);
        }
    }

    /// The feed may have missed changes: forget everything, and serve no hit until it catches up
    /// again.
    pub(crate) fn lost(&self) {
        self.freshness.caught_up.store(0, Ordering::Release);
        self.clear();
    }

    /// Forgets everything, running loads included.
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        state.entries.clear();
        state.order.clear();
        self.epochs.changed_all();
        for (_, flight) in state.flights.drain() {
            flight.stale.store(true, Ordering::Release);
        }
    }

    /// The entry for `key`, loading it with `load` on a miss. Concurrent misses share one load
    /// and its result, error included.
    pub(crate) async fn get_or_load<F, L>(&self, key: &str, load: L) -> Result<Cached>
    where
        L: FnOnce() -> F,
        F: Future<Output = Result<Cached>>,
    {
        if self.config.capacity == 0 {
            return load().await;
        }
        let now = Utc::now();
        if !self.freshness.is_fresh(clock::nanos(now)) {
            return load().await;
        }
        let flight = {
            let mut state = self.state();
            if let Some(entry) = state.entries.get(key)
                && now < entry.fresh_until
            {
                return Ok(entry.cached.clone());
            }
            Arc::clone(state.flights.entry(key.to_owned()).or_default())
        };
        let result = flight
            .result
            .get_or_init(|| async {
                let loaded = load().await;
                if let Ok(cached) = &loaded {
                    self.install(key, &flight, cached.clone());
                }
                loaded
            })
            .await
            .clone();
        let mut state = self.state();
        if state.flights.get(key).is_some_and(|current| Arc::ptr_eq(current, &flight)) {
            state.flights.remove(key);
        }
        result
    }

    /// Installs what `flight` loaded, unless a change made it stale or the feed fell behind.
    fn install(&self, key: &str, flight: &Arc<Flight>, cached: Cached) {
        let ttl = chrono::Duration::from_std(self.config.ttl).unwrap_or(chrono::Duration::MAX);
        let now = Utc::now();
        let fresh_until = now.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut state = self.state();
        let current = state.flights.get(key).is_some_and(|current| Arc::ptr_eq(current, flight));
        let fresh = self.freshness.is_fresh(clock::nanos(now));
        if !current || flight.stale.load(Ordering::Acquire) || !fresh {
            return;
        }
        if state.entries.len() >= self.config.capacity && !state.entries.contains_key(key) {
            state.evict_oldest();
        }
        state.insert(key, cached, fresh_until);
    }

    /// Notes that every change committed before `as_of` has been reported.
    fn caught_up(&self, as_of: SystemTime) {
        let nanos = as_of
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX));
        // A later report may carry an earlier reading when the clock stepped back; the latest
        // report is the truth.
        self.freshness.caught_up.store(nanos, Ordering::Release);
    }
}

/// Feeds a store's change reports into a manager's cache, for the records of one environment.
pub(crate) struct CacheListener {
    pub(crate) cache: Arc<Cache>,
    /// `environment/`: the prefix of this manager's storage ids.
    pub(crate) prefix: String,
}

impl ChangeListener for CacheListener {
    fn changed(&self, id: &str) {
        if let Some(key) = id.strip_prefix(self.prefix.as_str()) {
            self.cache.invalidate(key);
        }
    }

    fn lost(&self) {
        self.cache.lost();
    }

    fn caught_up(&self, as_of: SystemTime) {
        self.cache.caught_up(as_of);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn cached(version: u64) -> Cached {
        Cached::for_tests(version)
    }

    /// A read of `key` through the shared cache, leaving a copy anyone may be served.
    fn hit(cache: &Cache, key: &str, now: DateTime<Utc>) -> Option<Cached> {
        cache.get(key, &Principal::named("reader"), now, |_| (Allowed::Anyone, None))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_load_once() {
        let cache = Arc::new(Cache::new(CacheConfig::default()));
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
                tokio::spawn(async move {
                    cache
                        .get_or_load("key", || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(cached(1))
                        })
                        .await
                        .map(|hit| hit.version)
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 1);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn entries_expire_and_capacity_evicts_the_oldest() {
        let cache = Cache::new(CacheConfig::new(Duration::from_millis(30), 2));
        for (key, version) in [("a", 1), ("b", 2), ("c", 3)] {
            cache.get_or_load(key, || async move { Ok(cached(version)) }).await.unwrap();
        }
        assert!(hit(&cache, "a", Utc::now()).is_none());
        assert_eq!(hit(&cache, "c", Utc::now()).map(|hit| hit.version), Some(3));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(hit(&cache, "c", Utc::now()).is_none());
    }

    #[tokio::test]
    async fn failed_loads_are_not_cached() {
        let cache = Cache::new(CacheConfig::default());
        let failed = cache.get_or_load("k", || async { Err(crate::Error::Decrypt) }).await;
        assert!(failed.is_err());
        assert!(hit(&cache, "k", Utc::now()).is_none());
    }

    #[tokio::test]
    async fn after_a_lost_feed_no_hit_is_served_until_it_catches_up_again() {
        let cache = Cache::new(CacheConfig::default());
        cache.follow(FeedKind::Polled);
        let now = Utc::now();
        cache.caught_up(SystemTime::now());
        cache.get_or_load("k", || async { Ok(cached(1)) }).await.unwrap();
        assert!(hit(&cache, "k", now).is_some());
        cache.lost();
        cache.get_or_load("k", || async { Ok(cached(2)) }).await.unwrap();
        assert!(
            hit(&cache, "k", Utc::now()).is_none(),
            "served while the feed vouches for nothing"
        );
        cache.caught_up(SystemTime::now());
        assert!(hit(&cache, "k", Utc::now()).is_none(), "what was loaded meanwhile is not kept");
        cache.get_or_load("k", || async { Ok(cached(3)) }).await.unwrap();
        assert_eq!(hit(&cache, "k", Utc::now()).map(|hit| hit.version), Some(3));
    }

    #[tokio::test]
    async fn the_eviction_order_stays_bounded_under_churn_and_evicts_the_oldest_live_entry() {
        let cache = Cache::new(CacheConfig::new(Duration::from_secs(60), 4));
        async fn load(cache: &Cache, key: &'static str, version: u64) -> Result<Cached> {
            let cached = Cached::for_tests_of(key, version);
            cache.get_or_load(key, move || async move { Ok(cached) }).await
        }
        for round in 0..1_000 {
            load(&cache, "churn", round).await.unwrap();
            cache.invalidate("churn");
        }
        let order = cache.state().order.len();
        assert!(order <= 2 + 64 + 1, "{order} installs remembered for one entry");
        for (key, version) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
            load(&cache, key, version).await.unwrap();
        }
        // Reinstalling `a` makes it the newest; `b` is now the oldest.
        cache.invalidate("a");
        load(&cache, "a", 5).await.unwrap();
        load(&cache, "e", 6).await.unwrap();
        assert!(hit(&cache, "b", Utc::now()).is_none());
        for key in ["a", "c", "d", "e"] {
            assert!(hit(&cache, key, Utc::now()).is_some(), "{key}");
        }
    }
}
