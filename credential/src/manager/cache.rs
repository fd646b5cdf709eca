//! The one cache of decrypted credentials: typed `Arc`s with a time to live, in a bounded
//! concurrent map, loaded at most once at a time per id, and coherent with every change the
//! manager learns of.
//!
//! Coherence, one rule: the map changes only under the lock of the loads in flight. A load
//! registers its flight before it reads the store; a change to its id (a commit through this
//! manager, or a report from the store's change feed, see [`CacheListener`]) removes the entry
//! and marks the flight stale under that lock, so a load that read the store before the change
//! hands its value to the callers already waiting for it but never installs it. A hit takes no
//! lock of ours: it sees the entry as it was before a change, or no entry after it. While the
//! store's feed is behind (see [`MAX_FEED_LAG`]) hits are not served and loads are not installed:
//! every read goes to the store.
//!
//! The capacity bounds how many decrypted values the cache holds, whatever the number of
//! threads; an entry evicted or removed is dropped (and its secrets wiped) once the last read
//! holding it is done.

mod listener;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use quick_cache::UnitWeighter;

pub(crate) use self::listener::CacheListener;
use super::registry::Decoded;
use crate::store::{FeedKind, MAX_FEED_LAG};
use crate::util::{self, IdMap};
use crate::{Error, Result};

/// How long decrypted credentials stay cached, and how many.
///
/// ```
/// use std::time::Duration;
/// use credential::CacheConfig;
///
/// let config = CacheConfig::new(Duration::from_secs(60), 1_000);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    ttl: Duration,
    capacity: usize,
}

impl CacheConfig {
    /// Entries live for `ttl`; about `capacity` are kept (the cache is split in shards that each
    /// hold their share, rounded up), the ones read least going first when it is full.
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

/// A loaded credential as the cache keeps it: one allocation shared by the cache and the reads
/// in flight, so handing it out counts one reference.
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

/// An entry of the map: the loaded credential and, in Unix nanoseconds, when it goes stale.
#[derive(Clone)]
struct Entry {
    cached: Cached,
    fresh_until: i64,
}

type Map = quick_cache::sync::Cache<Arc<str>, Entry, UnitWeighter, foldhash::fast::RandomState>;

/// One load in progress; every caller that misses while it runs shares its result.
#[derive(Default)]
struct Flight {
    result: tokio::sync::OnceCell<Result<Cached>>,
    /// A change arrived while the load ran: its value must not be installed.
    stale: AtomicBool,
}

/// How fresh the store's change feed keeps the cache.
///
/// Freshness is judged on the system clock. A clock that steps forward makes the feed look late
/// and a clock that steps back makes it look early; both make the cache step aside until the
/// feed reports again, so a clock step costs speed, never a stale read.
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
    /// How long an entry is served, in nanoseconds: the configured time to live, or less for a
    /// store without a change feed (see [`Cache::unwatched`]).
    ttl: AtomicI64,
    /// `None`: the cache is turned off.
    entries: Option<Map>,
    /// The loads in flight; its lock is the one every change to `entries` is made under.
    flights: Mutex<IdMap<Arc<Flight>>>,
    freshness: Freshness,
}

impl Cache {
    /// # Errors
    /// [`Error::Config`] for a capacity the map cannot be built with.
    pub(crate) fn new(config: CacheConfig) -> Result<Self> {
        let entries = match config.capacity {
            0 => None,
            capacity => {
                let options = quick_cache::OptionsBuilder::new()
                    .estimated_items_capacity(capacity)
                    .weight_capacity(u64::try_from(capacity).unwrap_or(u64::MAX))
                    .build()
                    .map_err(|_| Error::Config { reason: "the cache capacity is out of range" })?;
                let hasher = foldhash::fast::RandomState::default();
                Some(Map::with_options(options, UnitWeighter, hasher, Default::default()))
            }
        };
        let ttl = AtomicI64::new(i64::try_from(config.ttl.as_nanos()).unwrap_or(i64::MAX));
        Ok(Self { ttl, entries, flights: Mutex::default(), freshness: Freshness::default() })
    }

    fn flights(&self) -> MutexGuard<'_, IdMap<Arc<Flight>>> {
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves hits only as fresh as a feed of `kind` allows.
    pub(crate) fn follow(&self, kind: FeedKind) {
        self.freshness.polled.store(kind == FeedKind::Polled, Ordering::Release);
        self.clear();
    }

    /// The store has no change feed: nothing tells this cache of changes made through other
    /// managers, so an entry is served for at most [`MAX_FEED_LAG`] after it was loaded, as if a
    /// feed were that late. A revoke committed anywhere is then refused here within the same
    /// bound as on a store with a feed.
    pub(crate) fn unwatched(&self) {
        let lag = i64::try_from(MAX_FEED_LAG.as_nanos()).unwrap_or(i64::MAX);
        self.ttl.fetch_min(lag, Ordering::AcqRel);
    }

    /// The entry for `key` if it is still fresh at `now`.
    pub(crate) fn get(&self, key: &str, now: DateTime<Utc>) -> Option<Cached> {
        let entries = self.entries.as_ref()?;
        let now = util::nanos(now);
        if !self.freshness.is_fresh(now) {
            return None;
        }
        let entry = entries.get(key)?;
        if now < entry.fresh_until {
            return Some(entry.cached);
        }
        // Stale: dropped now rather than when the map needs the room. Removing never serves
        // anything, so it needs no lock.
        entries.remove_if(key, |entry| entry.fresh_until <= now);
        None
    }

    /// Forgets `key`, and keeps a load of it already running from installing what it read.
    pub(crate) fn invalidate(&self, key: &str) {
        let Some(entries) = &self.entries else {
            return;
        };
        let mut flights = self.flights();
        let removed = entries.remove(key);
        if let Some(flight) = flights.remove(key) {
            flight.stale.store(true, Ordering::Release);
        }
        drop(flights);
        // Wiped outside the lock.
        drop(removed);
    }

    /// The feed may have missed changes: forget everything, and serve no hit until it catches up
    /// again.
    pub(crate) fn lost(&self) {
        self.freshness.caught_up.store(0, Ordering::Release);
        self.clear();
    }

    /// Forgets everything, running loads included.
    pub(crate) fn clear(&self) {
        let mut flights = self.flights();
        if let Some(entries) = &self.entries {
            entries.clear();
        }
        for (_, flight) in flights.drain() {
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
        let Some(entries) = &self.entries else {
            return load().await;
        };
        let now = util::now_nanos();
        if !self.freshness.is_fresh(now) {
            return load().await;
        }
        let flight = {
            let mut flights = self.flights();
            if let Some(entry) = entries.get(key)
                && now < entry.fresh_until
            {
                return Ok(entry.cached);
            }
            Arc::clone(flights.entry(key.to_owned()).or_default())
        };
        let result = flight
            .result
            .get_or_init(|| async {
                let loaded = load().await;
                if let Ok(cached) = &loaded {
                    self.install(entries, key, &flight, cached.clone());
                }
                loaded
            })
            .await
            .clone();
        let mut flights = self.flights();
        if flights.get(key).is_some_and(|current| Arc::ptr_eq(current, &flight)) {
            flights.remove(key);
        }
        result
    }

    /// Installs what `flight` loaded, unless a change made it stale or the feed fell behind.
    fn install(&self, entries: &Map, key: &str, flight: &Arc<Flight>, cached: Cached) {
        let now = util::now_nanos();
        let fresh_until = now.saturating_add(self.ttl.load(Ordering::Acquire));
        let flights = self.flights();
        let current = flights.get(key).is_some_and(|current| Arc::ptr_eq(current, flight));
        if !current || flight.stale.load(Ordering::Acquire) || !self.freshness.is_fresh(now) {
            return;
        }
        entries.insert(Arc::from(key), Entry { cached, fresh_until });
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

    /// How many entries the cache holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Map::len)
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
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn cached(key: &str, version: u64) -> Cached {
        Cached::for_tests_of(key, version)
    }

    fn version(cache: &Cache, key: &str) -> Option<u64> {
        cache.get(key, Utc::now()).map(|hit| hit.version)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_load_once() {
        let cache = Arc::new(Cache::new(CacheConfig::default()).unwrap());
        let (loads, entered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (release, gate) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, loads, entered) =
                    (Arc::clone(&cache), Arc::clone(&loads), Arc::clone(&entered));
                let mut gate = gate.clone();
                tokio::spawn(async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    let load = || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.wait_for(|open| *open).await;
                        Ok(cached("key", 1))
                    };
                    cache.get_or_load("key", load).await.map(|hit| hit.version)
                })
            })
            .collect();
        // The first load holds its flight open until every task has asked; whoever asks after
        // it lands finds the entry it installed.
        while entered.load(Ordering::SeqCst) < 16 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 1);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_entries_are_not_served_and_the_capacity_bounds_the_entries() {
        let cache = Cache::new(CacheConfig::new(Duration::from_secs(60), 64)).unwrap();
        for n in 0..1_000 {
            let key = format!("k{n}");
            cache.get_or_load(&key, || async { Ok(cached(&key, n)) }).await.unwrap();
        }
        let shards = cache.entries.as_ref().unwrap().num_shards();
        assert!(cache.len() <= 64 + shards, "{} entries for a capacity of 64", cache.len());
        assert_eq!(version(&cache, "k999"), Some(999), "the latest install is kept");

        let unwatched = Cache::new(CacheConfig::new(Duration::from_secs(3600), 10)).unwrap();
        unwatched.unwatched();
        unwatched.get_or_load("k", || async { Ok(cached("k", 1)) }).await.unwrap();
        let installed = unwatched.entries.as_ref().unwrap().get("k").unwrap();
        let lag = i64::try_from(MAX_FEED_LAG.as_nanos()).unwrap();
        assert!(installed.fresh_until <= util::now_nanos() + lag, "served past the feed's lag");

        let short = Cache::new(CacheConfig::new(Duration::ZERO, 10)).unwrap();
        short.get_or_load("k", || async { Ok(cached("k", 1)) }).await.unwrap();
        assert_eq!(version(&short, "k"), None, "stale at once");
        assert_eq!(short.len(), 0, "and dropped when met");
    }

    #[tokio::test]
    async fn failed_loads_are_not_cached_and_a_cache_turned_off_keeps_nothing() {
        let cache = Cache::new(CacheConfig::default()).unwrap();
        let failed = cache.get_or_load("k", || async { Err(Error::Decrypt) }).await;
        assert!(failed.is_err());
        assert!(version(&cache, "k").is_none());

        let off = Cache::new(CacheConfig::disabled()).unwrap();
        off.get_or_load("k", || async { Ok(cached("k", 1)) }).await.unwrap();
        assert!(version(&off, "k").is_none());
    }

    #[tokio::test]
    async fn a_change_during_a_load_keeps_it_from_being_installed() {
        let cache = Cache::new(CacheConfig::default()).unwrap();
        let loaded = cache
            .get_or_load("k", || async {
                // The store was read; a commit lands before the load returns.
                cache.invalidate("k");
                Ok(cached("k", 1))
            })
            .await
            .unwrap();
        assert_eq!(loaded.version, 1, "handed to its caller");
        assert!(version(&cache, "k").is_none(), "never installed");
        cache.get_or_load("k", || async { Ok(cached("k", 2)) }).await.unwrap();
        assert_eq!(version(&cache, "k"), Some(2));
        cache.invalidate("k");
        assert!(version(&cache, "k").is_none());
    }

    #[tokio::test]
    async fn after_a_lost_feed_no_hit_is_served_until_it_catches_up_again() {
        let cache = Cache::new(CacheConfig::default()).unwrap();
        cache.follow(FeedKind::Polled);
        cache.caught_up(SystemTime::now());
        cache.get_or_load("k", || async { Ok(cached("k", 1)) }).await.unwrap();
        assert_eq!(version(&cache, "k"), Some(1));
        cache.lost();
        cache.get_or_load("k", || async { Ok(cached("k", 2)) }).await.unwrap();
        assert!(version(&cache, "k").is_none(), "served while the feed vouches for nothing");
        cache.caught_up(SystemTime::now());
        assert!(version(&cache, "k").is_none(), "what was loaded meanwhile is not kept");
        cache.get_or_load("k", || async { Ok(cached("k", 3)) }).await.unwrap();
        assert_eq!(version(&cache, "k"), Some(3));
    }

    #[tokio::test]
    async fn a_cache_going_away_drops_every_value_it_held() {
        let cache = Cache::new(CacheConfig::default()).unwrap();
        let kept = cached("k", 1);
        let install = kept.clone();
        cache.get_or_load("k", || async { Ok(install) }).await.unwrap();
        assert_eq!(kept.holders(), 2);
        drop(cache);
        assert_eq!(kept.holders(), 1, "dropped with the cache");
    }
}
