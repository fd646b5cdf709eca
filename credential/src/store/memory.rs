//! An in-memory store, for tests and ephemeral use.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::key_usage::KeyUsage;
use super::{
    ChangeFeed, ChangeListener, FeedKind, ListFilter, LocalListeners, Precondition, Record,
    RecordMeta, Store, check_id,
};
use crate::util::IdMap;
use crate::{Error, Result};

/// Records in a map behind a mutex. Nothing survives the process.
///
/// ```
/// use credential::store::Store;
/// use credential::{MemoryStore, ListFilter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
/// let store = MemoryStore::new();
/// assert!(store.list(&ListFilter::all()).await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<Records>,
    /// Listeners of running feeds.
    listeners: LocalListeners,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.records().by_id.len())
            .finish_non_exhaustive()
    }
}

/// The records, and which keys the live ones use.
#[derive(Default)]
struct Records {
    by_id: IdMap<Record>,
    key_usage: KeyUsage,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        // A panic while holding the lock cannot leave a half-written record: every change is a
        // single insert or remove.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies a write to a map of records under its precondition: shared by the stores that hold
/// records as whole values.
pub(crate) fn apply_put(
    current: Option<&Record>,
    mut record: Record,
    precondition: Precondition,
) -> Result<Record> {
    let revision = match (precondition, current) {
        (Precondition::Absent, None) => 1,
        (Precondition::Revision(expected), Some(found)) if found.meta.revision == expected => {
            expected + 1
        }
        _ => return Err(Error::Conflict { id: record.meta.id }),
    };
    record.meta.revision = revision;
    Ok(record)
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, id: &str) -> Result<Option<Record>> {
        check_id(id)?;
        Ok(self.records().by_id.get(id).cloned())
    }

    async fn put(&self, record: Record, precondition: Precondition) -> Result<u64> {
        check_id(&record.meta.id)?;
        let mut records = self.records();
        let Records { by_id, key_usage } = &mut *records;
        // A replaced record gives its id to the listeners and is dropped once the lock is
        // released; a new record's id is copied for the listeners and as its key.
        let (revision, id, _replaced) = match by_id.get_mut(&record.meta.id) {
            Some(found) => {
                let record = apply_put(Some(found), record, precondition)?;
                key_usage.replace(Some(&found.meta), Some(&record.meta));
                let revision = record.meta.revision;
                let mut replaced = std::mem::replace(found, record);
                (revision, std::mem::take(&mut replaced.meta.id), Some(replaced))
            }
            None => {
                let record = apply_put(None, record, precondition)?;
                key_usage.replace(None, Some(&record.meta));
                let revision = record.meta.revision;
                let id = record.meta.id.clone();
                by_id.insert(id.clone(), record);
                (revision, id, None)
            }
        };
        drop(records);
        self.listeners.report(&id);
        Ok(revision)
    }

    async fn delete(&self, id: &str, revision: u64) -> Result<()> {
        check_id(id)?;
        let mut records = self.records();
        let Records { by_id, key_usage } = &mut *records;
        match by_id.get(id) {
            Some(found) if found.meta.revision == revision => {
                key_usage.replace(Some(&found.meta), None);
                by_id.remove(id);
                drop(records);
                self.listeners.report(id);
                Ok(())
            }
            _ => Err(Error::Conflict { id: id.to_owned() }),
        }
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let mut metas: Vec<RecordMeta> = self
            .records()
            .by_id
            .values()
            .filter(|record| filter.matches(&record.meta))
            .map(|record| record.meta.clone())
            .collect();
        metas.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Ok(metas)
    }

    /// Kept as records are written.
    async fn key_ids_in_use(
        &self,
        environment: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>> {
        Ok(Some(self.records().key_usage.of_environment(environment)))
    }

    /// An immediate feed: every write through this store is reported before it returns.
    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        let stop = Arc::new(AtomicBool::new(false));
        self.listeners.add(listener, Arc::clone(&stop));
        Ok(Some(ChangeFeed::new(FeedKind::Immediate, stop)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_passes_the_conformance_suite() {
        conformance::run_all(std::sync::Arc::new(MemoryStore::new())).await;
    }
}
