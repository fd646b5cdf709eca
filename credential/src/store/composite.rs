//! A primary store with read fallbacks.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{ChangeFeed, ChangeListener, ListFilter, Precondition, Record, RecordMeta, Store};
use crate::Result;

/// Writes and deletes go to the primary; reads try the primary, then each fallback in the order
/// added. Listing merges all of them, the primary's metadata winning for an id found in several.
///
/// ```
/// use credential::store::CompositeStore;
/// use credential::MemoryStore;
///
/// let store = CompositeStore::new(MemoryStore::new()).with_fallback(MemoryStore::new());
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct CompositeStore {
    primary: Arc<dyn Store>,
    fallbacks: Vec<Arc<dyn Store>>,
}

impl std::fmt::Debug for CompositeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompositeStore")
            .field("fallbacks", &self.fallbacks.len())
            .finish_non_exhaustive()
    }
}

impl CompositeStore {
    /// A composite writing to `primary`.
    pub fn new(primary: impl Store) -> Self {
        Self { primary: Arc::new(primary), fallbacks: Vec::new() }
    }

    /// Adds a read fallback, consulted after the primary and the fallbacks added before it.
    pub fn with_fallback(mut self, fallback: impl Store) -> Self {
        self.fallbacks.push(Arc::new(fallback));
        self
    }

    fn all(&self) -> impl Iterator<Item = &Arc<dyn Store>> {
        std::iter::once(&self.primary).chain(&self.fallbacks)
    }
}

#[async_trait]
impl Store for CompositeStore {
    async fn get(&self, id: &str) -> Result<Option<Record>> {
        for store in self.all() {
            if let Some(record) = store.get(id).await? {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    async fn put(&self, record: Record, precondition: Precondition) -> Result<u64> {
        self.primary.put(record, precondition).await
    }

    async fn delete(&self, id: &str, revision: u64) -> Result<()> {
        self.primary.delete(id, revision).await
    }

    async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        self.primary.now().await
    }

    /// The union over every store, when each keeps its set.
    async fn key_ids_in_use(
        &self,
        environment: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>> {
        let mut union = std::collections::BTreeSet::new();
        for store in self.all() {
            match store.key_ids_in_use(environment).await? {
                Some(ids) => union.extend(ids),
                None => return Ok(None),
            }
        }
        Ok(Some(union))
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let mut merged = BTreeMap::new();
        for store in self.all() {
            for meta in store.list(filter).await? {
                merged.entry(meta.id.clone()).or_insert(meta);
            }
        }
        Ok(merged.into_values().collect())
    }

    /// The primary's feed. Fallbacks are read-only sources (environment variables, say) that are
    /// not expected to change while the process runs.
    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        self.primary.watch(listener)
    }
}
