//! Master-key rotation across a store: re-seal every record under the ring's current key.

use std::collections::BTreeSet;

use crate::{
    Error, KeyRing, ListFilter, Precondition, Result, SealContext, Store, envelope_key_id,
};

/// How far a [`rekey`] has come, reported after each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RekeyProgress {
    /// Records looked at so far.
    pub done: usize,
    /// Records in the store when the run started.
    pub total: usize,
    /// Records re-sealed so far (the others already were under the current key).
    pub resealed: usize,
}

/// What a finished [`rekey`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RekeyReport {
    /// Records looked at.
    pub records: usize,
    /// Records re-sealed.
    pub resealed: usize,
    /// Ids of the master keys the store's records are sealed under after the run: when only the
    /// current key is left, the others can be retired.
    pub keys_in_use: BTreeSet<String>,
}

/// How often one record is retried when a concurrent writer keeps winning the race.
const MAX_ATTEMPTS: usize = 16;

/// Re-seals every record in `store` under `ring`'s current key, one record at a time with
/// compare-and-swap, calling `progress` after each record.
///
/// Safe to interrupt and to run again: each record is re-sealed atomically, records already
/// under the current key are skipped, and until the old key is retired every record opens under
/// some key of the ring. Retire the old key only once [`RekeyReport::keys_in_use`] holds just the
/// current one.
///
/// # Errors
/// The first store error, [`Error::Decrypt`] for a record no key of the ring opens, or
/// [`Error::Conflict`] when a record kept changing for 16 tries in a row.
pub async fn rekey(
    store: &dyn Store,
    ring: &KeyRing,
    mut progress: impl FnMut(RekeyProgress),
) -> Result<RekeyReport> {
    let metas = store.list(&ListFilter::all()).await?;
    let total = metas.len();
    let mut resealed = 0;
    for (done, meta) in metas.iter().enumerate() {
        if reseal_record(store, ring, &meta.id).await? {
            resealed += 1;
        }
        progress(RekeyProgress { done: done + 1, total, resealed });
    }
    let keys_in_use =
        store.list(&ListFilter::all()).await?.into_iter().map(|meta| meta.key_id).collect();
    Ok(RekeyReport { records: total, resealed, keys_in_use })
}

/// Re-seals one record; `false` when it already was under the current key (or is gone).
async fn reseal_record(store: &dyn Store, ring: &KeyRing, id: &str) -> Result<bool> {
    let current = ring.current_id().to_string();
    for _ in 0..MAX_ATTEMPTS {
        let Some(mut record) = store.get(id).await? else {
            return Ok(false);
        };
        let mut changed = record.meta.key_id != current;
        for version in record.versions.iter_mut().filter(|version| !version.sealed.is_empty()) {
            if envelope_key_id(&version.sealed)?.as_str() == current {
                continue;
            }
            let context = SealContext::new(id, version.version, &record.meta.kind);
            if let Some(moved) = ring.reseal(&context, &version.sealed)? {
                version.sealed = moved;
                changed = true;
            }
        }
        if !changed {
            return Ok(false);
        }
        record.meta.key_id.clone_from(&current);
        let revision = record.meta.revision;
        match store.put(record, Precondition::Revision(revision)).await {
            Ok(_) => return Ok(true),
            Err(Error::Conflict { .. }) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(Error::Conflict { id: id.to_owned() })
}
