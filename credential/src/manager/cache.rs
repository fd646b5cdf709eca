//! The cache of decrypted credentials: typed `Arc`s with a time to live and a capacity, loaded at
//! most once at a time per id.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::id_hasher::IdMap;
use super::registry::AnyCredential;
use crate::Result;

/// How long decrypted credentials stay cached, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    ttl: Duration,
    capacity: usize,
}

impl CacheConfig {
    /// Entries live for `ttl`; at most `capacity` are kept (the oldest go first).
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

/// A loaded credential as the cache keeps it.
pub(crate) struct Cached {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    /// The same credential, for access by field name.
    pub(crate) fields: Arc<dyn AnyCredential>,
    pub(crate) kind: &'static str,
    pub(crate) id: Arc<str>,
    pub(crate) version: u64,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

impl Clone for Cached {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            fields: Arc::clone(&self.fields),
            kind: self.kind,
            id: Arc::clone(&self.id),
            version: self.version,
            expires_at: self.expires_at,
        }
    }
}

struct Entry {
    cached: Cached,
    fresh_until: DateTime<Utc>,
}

pub(crate) struct Cache {
    config: CacheConfig,
    entries: Mutex<IdMap<Entry>>,
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Cache {
    pub(crate) fn new(config: CacheConfig) -> Self {
        Self { config, entries: Mutex::new(IdMap::default()), loading: Mutex::new(HashMap::new()) }
    }

    fn entries(&self) -> MutexGuard<'_, IdMap<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry for `key` if it is still fresh at `now` (the caller's clock reading, so a read
    /// asks the clock once).
    pub(crate) fn get(&self, key: &str, now: DateTime<Utc>) -> Option<Cached> {
        if self.config.capacity == 0 {
            return None;
        }
        let entries = self.entries();
        let entry = entries.get(key)?;
        (now < entry.fresh_until).then(|| entry.cached.clone())
    }

    /// Drops the entry for `key`: called on every change made through the manager.
    pub(crate) fn invalidate(&self, key: &str) {
        self.entries().remove(key);
    }

    /// The entry for `key`, loading it with `load` on a miss. Concurrent misses for one key wait
    /// for a single load.
    pub(crate) async fn get_or_load<F>(&self, key: &str, load: F) -> Result<Cached>
    where
        F: Future<Output = Result<Cached>>,
    {
        if self.config.capacity == 0 {
            return load.await;
        }
        if let Some(hit) = self.get(key, Utc::now()) {
            return Ok(hit);
        }
        let gate = {
            let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(loading.entry(key.to_owned()).or_default())
        };
        let _turn = gate.lock().await;
        // Whoever held the gate before may have loaded it.
        if let Some(hit) = self.get(key, Utc::now()) {
            return Ok(hit);
        }
        let loaded = load.await;
        if let Ok(cached) = &loaded {
            self.insert(key, cached.clone());
        }
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if loading.get(key).is_some_and(|current| Arc::ptr_eq(current, &gate))
            && Arc::strong_count(&gate) <= 2
        {
            loading.remove(key);
        }
        loaded
    }

    fn insert(&self, key: &str, cached: Cached) {
        if self.config.capacity == 0 {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= self.config.capacity && !entries.contains_key(key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.fresh_until)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let ttl = chrono::Duration::from_std(self.config.ttl).unwrap_or(chrono::Duration::MAX);
        let fresh_until = Utc::now().checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC);
        entries.insert(key.to_owned(), Entry { cached, fresh_until });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn cached(version: u64) -> Cached {
        Cached {
            value: Arc::new(version),
            fields: Arc::new(crate::kinds::ApiKey { key: "k".into(), header: None }),
            kind: "test",
            id: Arc::from("id"),
            version,
            expires_at: None,
        }
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
                        .get_or_load("key", async {
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
            cache.get_or_load(key, async move { Ok(cached(version)) }).await.unwrap();
        }
        assert!(cache.get("a", Utc::now()).is_none());
        assert_eq!(cache.get("c", Utc::now()).map(|hit| hit.version), Some(3));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(cache.get("c", Utc::now()).is_none());
    }

    #[tokio::test]
    async fn failed_loads_are_not_cached() {
        let cache = Cache::new(CacheConfig::default());
        let failed = cache.get_or_load("k", async { Err(crate::Error::Decrypt) }).await;
        assert!(failed.is_err());
        assert!(cache.get("k", Utc::now()).is_none());
    }
}
