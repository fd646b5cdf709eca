//! How many live records each master key seals, kept as records are written, so a manager checks
//! its key ring at start-up without reading the records.

use std::collections::{BTreeMap, BTreeSet};

use super::{LifecycleState, RecordMeta};

/// What a record counts for: its environment and key id, when it is live and names a key.
#[cfg(feature = "file")]
pub(crate) type Usage = Option<(String, String)>;

/// What `meta` counts for.
#[cfg(feature = "file")]
pub(crate) fn usage(meta: Option<&RecordMeta>) -> Usage {
    counted(meta).map(|(environment, key_id)| (environment.to_owned(), key_id.to_owned()))
}

/// Whether `meta` needs its key: a live record that names one.
pub(crate) fn needs_its_key(meta: &RecordMeta) -> bool {
    meta.state != LifecycleState::Revoked && !meta.key_id.is_empty()
}

/// Live records per environment, then key id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KeyUsage(BTreeMap<String, BTreeMap<String, u64>>);

/// What a record counts for, borrowed from its metadata.
type Counted<'a> = Option<(&'a str, &'a str)>;

fn counted(meta: Option<&RecordMeta>) -> Counted<'_> {
    meta.filter(|meta| needs_its_key(meta))
        .map(|meta| (meta.environment.as_str(), meta.key_id.as_str()))
}

#[cfg(feature = "file")]
fn borrowed(usage: &Usage) -> Counted<'_> {
    usage.as_ref().map(|(environment, key_id)| (environment.as_str(), key_id.as_str()))
}

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
    /// delete). A write that keeps its environment and key (most of them) changes nothing and
    /// copies nothing.
    pub(crate) fn replace(&mut self, before: Option<&RecordMeta>, after: Option<&RecordMeta>) {
        self.move_one(counted(before), counted(after));
    }

    /// Moves one record from counting for `before` to counting for `after`.
    #[cfg(feature = "file")]
    pub(crate) fn apply(&mut self, before: &Usage, after: &Usage) {
        self.move_one(borrowed(before), borrowed(after));
    }

    fn move_one(&mut self, before: Counted<'_>, after: Counted<'_>) {
        if before == after {
            return;
        }
        if let Some((environment, key_id)) = before
            && let Some(keys) = self.0.get_mut(environment)
            && let Some(records) = keys.get_mut(key_id)
        {
            *records -= 1;
            if *records == 0 {
                keys.remove(key_id);
                if keys.is_empty() {
                    self.0.remove(environment);
                }
            }
        }
        if let Some((environment, key_id)) = after {
            let keys = match self.0.get_mut(environment) {
                Some(keys) => keys,
                None => self.0.entry(environment.to_owned()).or_default(),
            };
            match keys.get_mut(key_id) {
                Some(records) => *records += 1,
                None => {
                    keys.insert(key_id.to_owned(), 1);
                }
            }
        }
    }

    /// The key ids in use in `environment`.
    pub(crate) fn of_environment(&self, environment: &str) -> BTreeSet<String> {
        self.0.get(environment).map(|keys| keys.keys().cloned().collect()).unwrap_or_default()
    }

    /// (environment, key id, live records), for storing.
    #[cfg(feature = "file")]
    pub(crate) fn entries(&self) -> Vec<(String, String, u64)> {
        self.0
            .iter()
            .flat_map(|(environment, keys)| {
                keys.iter().map(|(key_id, records)| (environment.clone(), key_id.clone(), *records))
            })
            .collect()
    }

    /// The counts stored as `entries`.
    #[cfg(feature = "file")]
    pub(crate) fn from_entries(entries: Vec<(String, String, u64)>) -> Self {
        let mut usage = Self::default();
        for (environment, key_id, records) in entries.into_iter().filter(|entry| entry.2 > 0) {
            usage.0.entry(environment).or_default().insert(key_id, records);
        }
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_record;

    fn meta(environment: &str, key_id: &str) -> RecordMeta {
        let mut meta = sample_record("keys/a", "api_key", b"x").meta;
        (meta.environment, meta.key_id) = (environment.to_owned(), key_id.to_owned());
        meta
    }

    #[test]
    fn records_move_between_keys_and_environments_and_leave_no_empty_counts() {
        let (a1, a2, b1) = (meta("a", "k1"), meta("a", "k2"), meta("b", "k1"));
        let mut usage = KeyUsage::of([&a1, &a1, &b1]);
        assert_eq!(usage.of_environment("a"), BTreeSet::from(["k1".to_owned()]));

        usage.replace(Some(&a1), Some(&a1));
        usage.replace(Some(&a1), Some(&a2));
        let both: BTreeSet<String> = ["k1".to_owned(), "k2".to_owned()].into();
        assert_eq!(usage.of_environment("a"), both);

        usage.replace(Some(&a1), None);
        assert_eq!(usage.of_environment("a"), BTreeSet::from(["k2".to_owned()]));

        let mut revoked = b1.clone();
        revoked.state = LifecycleState::Revoked;
        usage.replace(Some(&b1), Some(&revoked));
        assert!(usage.of_environment("b").is_empty());
        assert_eq!(usage, KeyUsage::of([&a2]), "no empty count is left behind");
    }
}
