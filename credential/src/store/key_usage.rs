//! How many live records each master key seals, kept as records are written, so a manager checks
//! its key ring at start-up without reading the records.

use std::collections::{BTreeMap, BTreeSet};

use super::{LifecycleState, RecordMeta};

/// What a record counts for: its environment and key id, when it is live and names a key.
pub(crate) type Usage = Option<(String, String)>;

/// What `meta` counts for.
pub(crate) fn usage(meta: Option<&RecordMeta>) -> Usage {
    meta.filter(|meta| needs_its_key(meta))
        .map(|meta| (meta.environment.clone(), meta.key_id.clone()))
}

/// Whether `meta` needs its key: a live record that names one.
pub(crate) fn needs_its_key(meta: &RecordMeta) -> bool {
    meta.state != LifecycleState::Revoked && !meta.key_id.is_empty()
}

/// Live records per (environment, key id).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KeyUsage(BTreeMap<(String, String), u64>);

impl KeyUsage {
    /// Counts over `metas`.
    pub(crate) fn of<'a>(metas: impl IntoIterator<Item = &'a RecordMeta>) -> Self {
        let mut usage = Self::default();
        for meta in metas {
            usage.replace(None, Some(meta));
        }
        usage
    }

    /// Accounts for a write that replaced `before` (none: a creation) with `after` (none: a
    /// delete).
    pub(crate) fn replace(&mut self, before: Option<&RecordMeta>, after: Option<&RecordMeta>) {
        self.apply(&usage(before), &usage(after));
    }

    /// Moves one record from counting for `before` to counting for `after`.
    pub(crate) fn apply(&mut self, before: &Usage, after: &Usage) {
        if let Some(key) = before
            && let Some(records) = self.0.get_mut(key)
        {
            *records -= 1;
            if *records == 0 {
                self.0.remove(key);
            }
        }
        if let Some(key) = after {
            *self.0.entry(key.clone()).or_default() += 1;
        }
    }

    /// The key ids in use in `environment`.
    pub(crate) fn of_environment(&self, environment: &str) -> BTreeSet<String> {
        self.0
            .keys()
            .filter(|(in_environment, _)| in_environment == environment)
            .map(|(_, key_id)| key_id.clone())
            .collect()
    }

    /// (environment, key id, live records), for storing.
    #[cfg(feature = "file")]
    pub(crate) fn entries(&self) -> Vec<(String, String, u64)> {
        self.0
            .iter()
            .map(|((environment, key_id), records)| (environment.clone(), key_id.clone(), *records))
            .collect()
    }

    /// The counts stored as `entries`.
    #[cfg(feature = "file")]
    pub(crate) fn from_entries(entries: Vec<(String, String, u64)>) -> Self {
        Self(
            entries
                .into_iter()
                .filter(|(_, _, records)| *records > 0)
                .map(|(environment, key_id, records)| ((environment, key_id), records))
                .collect(),
        )
    }
}
