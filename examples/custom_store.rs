//! A store of your own: implement the five methods of `Store` (sealed records in, sealed records
//! out, compare-and-swap on the revision), check it against the conformance suite every built-in
//! backend passes, and hand it to a manager.
//!
//! Run with `cargo run --example custom_store`.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use credential::ListFilter;
use credential::kinds::ApiKey;
use credential::prelude::*;
use credential::store::{Precondition, Record, RecordMeta, Store, check_id};

/// Records in an ordered map, as a key-value service would hold them. A real one would keep
/// `revision` next to the value and make `put` a conditional write.
#[derive(Default)]
struct KeyValueStore {
    records: Mutex<BTreeMap<String, Record>>,
}

impl KeyValueStore {
    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for KeyValueStore {
    async fn get(&self, id: &str) -> credential::Result<Option<Record>> {
        check_id(id)?;
        Ok(self.records().get(id).cloned())
    }

    async fn put(&self, mut record: Record, precondition: Precondition) -> credential::Result<u64> {
        check_id(&record.meta.id)?;
        let mut records = self.records();
        let found = records.get(&record.meta.id).map(|stored| stored.meta.revision);
        let revision = match (precondition, found) {
            (Precondition::Absent, None) => 1,
            (Precondition::Revision(expected), Some(found)) if expected == found => found + 1,
            _ => return Err(credential::Error::Conflict { id: record.meta.id }),
        };
        record.meta.revision = revision;
        records.insert(record.meta.id.clone(), record);
        Ok(revision)
    }

    async fn delete(&self, id: &str, revision: u64) -> credential::Result<()> {
        check_id(id)?;
        let mut records = self.records();
        match records.get(id) {
            Some(stored) if stored.meta.revision == revision => {
                records.remove(id);
                Ok(())
            }
            _ => Err(credential::Error::Conflict { id: id.to_owned() }),
        }
    }

    async fn list(&self, filter: &ListFilter) -> credential::Result<Vec<RecordMeta>> {
        Ok(self
            .records()
            .values()
            .filter(|record| filter.matches(&record.meta))
            .map(|record| record.meta.clone())
            .collect())
    }
}

#[tokio::main]
async fn main() -> credential::Result<()> {
    // The suite panics on the first broken promise (feature `testing`; in a crate of your own,
    // call it from a `#[tokio::test(flavor = "multi_thread")]`).
    credential::store::conformance::run_all(Arc::new(KeyValueStore::default())).await;
    println!("KeyValueStore passes the conformance suite");

    let store = Arc::new(KeyValueStore::default());
    let manager =
        Manager::builder().store(Arc::clone(&store)).key_ring(KeyRing::generate()?).build().await?;
    manager.create("payments/stripe", ApiKey::new("sk_live_51H8".into())).await?.activate().await?;
    let key = manager.context(Principal::named("billing")).get::<ApiKey>("payments/stripe").await?;
    println!("read back through the manager: {}", key.redacted());
    // The store only ever held sealed bytes.
    let record = store
        .get("default/payments/stripe")
        .await?
        .ok_or(credential::Error::NotFound { id: "payments/stripe".into() })?;
    let sealed = &record.versions[0].sealed;
    println!(
        "stored: {} sealed bytes, the key among them: {}",
        sealed.len(),
        sealed.windows(12).any(|window| window == b"sk_live_51H8")
    );
    manager.shutdown().await?;
    Ok(())
}
