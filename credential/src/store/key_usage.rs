//! How many live records each master key seals, kept as records are written, so a manager checks
//! its key ring at start-up without reading the records.

use std::collections::{BTreeMap, BTreeSet};

use super::{LifecycleState, RecordMeta};

/// Live records per (environment, key id).
#[derive(Debug, Default)]
pub(crate) struct KeyUsage(BTreeMap<(String, String), usize>);

impl KeyUsage {
    /// Accounts for a write that replaced `before` (none: a creation) with `after` (none: a
    /// delete).
    pub(crate) fn replace(&mut self, before: Option<&RecordMeta>, after: Option<&RecordMeta>) {
        if let Some(before) = before.filter(|meta| counts(meta)) {
            let key = (before.environment.clone(), before.key_id.clone());
            if let Some(records) = self.0.get_mut(&key) {
                *records -= 1;
                if *records == 0 {
                    self.0.remove(&key);
                }
            }
        }
        if let Some(after) = after.filter(|meta| counts(meta)) {
            *self.0.entry((after.environment.clone(), after.key_id.clone())).or_default() += 1;
        }
    }

    /// The key ids in use in `environment`.
    pub(crate) fn of(&self, environment: &str) -> BTreeSet<String> {
        self.0
            .keys()
            .filter(|(in_environment, _)| in_environment == environment)
            .map(|(_, key_id)| key_id.clone())
            .collect()
    }
}

/// Whether `meta` needs its key: a live record that names one.
pub(crate) fn counts(meta: &RecordMeta) -> bool {
    meta.state != LifecycleState::Revoked && !meta.key_id.is_empty()
}
