//! Feeds a store's change reports into a manager's cache.

use std::sync::Arc;
use std::time::SystemTime;

use super::Cache;
use crate::store::ChangeListener;

/// Hands the cache the changes a store's feed reports for the records of one environment.
pub(crate) struct CacheListener {
    cache: Arc<Cache>,
    /// `environment/`: the prefix of this manager's storage ids.
    prefix: String,
}

impl CacheListener {
    pub(crate) fn new(cache: Arc<Cache>, environment: &str) -> Self {
        Self { cache, prefix: format!("{environment}/") }
    }
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
