//! Master-key rotation: re-seal every record under the ring's current key, each re-seal a
//! change on the commit path (authorized as admin, audited).

use std::collections::BTreeSet;

use crate::audit::AuditAction;
use crate::hazmat::{self, SealContext};
use crate::manager::Manager;
use crate::manager::core::Change;
use crate::{Error, ListFilter, Result};

/// How far a [`Manager::rekey`] has come, reported after each record.
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

/// What a finished [`Manager::rekey`] did.
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

/// Re-seals every record of `manager`'s environment under its ring's current key, through the
/// commit path; see [`Manager::rekey`].
pub(crate) async fn rekey(
    manager: &Manager,
    mut progress: impl FnMut(RekeyProgress),
) -> Result<RekeyReport> {
    let metas = manager.list(&ListFilter::all()).await?;
    let total = metas.len();
    let mut resealed = 0;
    for (done, meta) in metas.iter().enumerate() {
        if reseal_record(manager, &meta.id).await? {
            resealed += 1;
        }
        progress(RekeyProgress { done: done + 1, total, resealed });
    }
    let keys_in_use =
        manager.list(&ListFilter::all()).await?.into_iter().map(|meta| meta.key_id).collect();
    Ok(RekeyReport { records: total, resealed, keys_in_use })
}

/// Re-seals one record; `false` when it already was under the current key and tagged (or is
/// gone).
async fn reseal_record(manager: &Manager, id: &str) -> Result<bool> {
    let core = manager.core();
    let current = core.ring().current_id().to_string();
    let storage_id = core.storage_id(id);
    for _ in 0..MAX_ATTEMPTS {
        let mut record = match core.fetch(id).await {
            Ok(record) => record,
            Err(Error::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error),
        };
        // An untagged record (written before records were tagged) is rewritten to be tagged.
        let mut changed = record.meta.key_id != current || record.meta.tag.is_empty();
        for version in record.versions.iter_mut().filter(|version| !version.sealed.is_empty()) {
            if hazmat::envelope_key_id(&version.sealed)?.as_str() == current {
                continue;
            }
            let context = SealContext::new(&storage_id, version.version, &record.meta.kind);
            if let Some(moved) = core.ring().reseal(&context, &version.sealed)? {
                version.sealed = moved;
                changed = true;
            }
        }
        if !changed {
            return Ok(false);
        }
        record.meta.key_id.clone_from(&current);
        let change = Change {
            id,
            expected: Some(record.meta.revision),
            record,
            action: AuditAction::Rekey,
            version: None,
            reason: None,
        };
        match core.commit(manager.actor(), change).await {
            Ok(_) => return Ok(true),
            Err(Error::Conflict { .. }) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(Error::Conflict { id: id.to_owned() })
}
