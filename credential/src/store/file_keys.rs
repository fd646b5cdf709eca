//! The file store's count of which master keys its live records use: `.keys`, a small JSON file
//! rewritten atomically under the store's lock by every write that changes a count, so a manager
//! checks its key ring without reading the records.
//!
//! A crash can fall between rewriting the counts and replacing the record. So the counts are
//! written together with the change in progress (`pending`: the record, what it counted for
//! before and after); whoever reads them next looks at that one record and keeps the counts if the
//! record was replaced, or takes the change back if it was not.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::RecordMeta;
use super::key_usage::counts;
use crate::{Error, Result};

/// The file's name in the store's directory.
pub(crate) const KEYS_FILE: &str = ".keys";

/// What a record counts for: its environment and key id, when it is live.
pub(crate) type Usage = Option<(String, String)>;

/// What `meta` counts for.
pub(crate) fn usage(meta: Option<&RecordMeta>) -> Usage {
    meta.filter(|meta| counts(meta)).map(|meta| (meta.environment.clone(), meta.key_id.clone()))
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct KeyCounts {
    /// (environment, key id, live records).
    counts: Vec<(String, String, u64)>,
    pending: Option<Pending>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    id: String,
    before: Usage,
    after: Usage,
}

impl KeyCounts {
    /// Counts from the records `metas`.
    pub(crate) fn of<'a>(metas: impl IntoIterator<Item = &'a RecordMeta>) -> Self {
        let mut counts = Self::default();
        for meta in metas {
            counts.apply(&None, &usage(Some(meta)));
        }
        counts
    }

    /// The counts in `bytes`, with a change left pending settled against the record as it is
    /// (`read_meta` reads it).
    pub(crate) fn settled(
        bytes: &[u8],
        read_meta: impl FnOnce(&str) -> Result<Option<RecordMeta>>,
    ) -> Result<Self> {
        let mut counts: Self = serde_json::from_slice(bytes).map_err(|_| Error::CorruptRecord {
            reason: format!("`{KEYS_FILE}` is not a key count file"),
        })?;
        if let Some(pending) = counts.pending.take() {
            let now = usage(read_meta(&pending.id)?.as_ref());
            if now == pending.before && now != pending.after {
                // The record was not replaced: take the change back.
                counts.apply(&pending.after, &pending.before);
            } else if now != pending.after {
                return Err(Error::CorruptRecord {
                    reason: format!("`{KEYS_FILE}` disagrees with record `{}`", pending.id),
                });
            }
        }
        Ok(counts)
    }

    /// Moves one record from counting for `before` to counting for `after`.
    pub(crate) fn apply(&mut self, before: &Usage, after: &Usage) {
        if let Some((environment, key_id)) = before
            && let Some(entry) = self
                .counts
                .iter_mut()
                .find(|(in_environment, key, _)| in_environment == environment && key == key_id)
        {
            entry.2 = entry.2.saturating_sub(1);
        }
        self.counts.retain(|(_, _, records)| *records > 0);
        if let Some((environment, key_id)) = after {
            match self
                .counts
                .iter_mut()
                .find(|(in_environment, key, _)| in_environment == environment && key == key_id)
            {
                Some(entry) => entry.2 += 1,
                None => self.counts.push((environment.clone(), key_id.clone(), 1)),
            }
        }
    }

    /// These counts, with `id`'s change from `before` to `after` applied and noted as pending.
    pub(crate) fn with_pending(mut self, id: &str, before: Usage, after: Usage) -> Vec<u8> {
        self.apply(&before, &after);
        self.pending = Some(Pending { id: id.to_owned(), before, after });
        self.to_bytes()
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The key ids in use in `environment`.
    pub(crate) fn key_ids_in(&self, environment: &str) -> BTreeSet<String> {
        let by_key: BTreeMap<&str, u64> = self
            .counts
            .iter()
            .filter(|(in_environment, _, records)| in_environment == environment && *records > 0)
            .map(|(_, key_id, records)| (key_id.as_str(), *records))
            .collect();
        by_key.into_keys().map(str::to_owned).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_record;

    fn meta(key_id: &str) -> RecordMeta {
        let mut meta = sample_record("keys/a", "api_key", b"x").meta;
        meta.key_id = key_id.to_owned();
        meta
    }

    #[test]
    fn a_change_left_pending_is_kept_if_the_record_was_replaced_and_taken_back_if_not() {
        let old = meta("old-key");
        let counts = KeyCounts::of([&old]);
        let new = meta("new-key");
        let bytes = counts.with_pending("keys/a", usage(Some(&old)), usage(Some(&new)));

        // Replaced before the crash: the new key counts.
        let replaced = KeyCounts::settled(&bytes, |_| Ok(Some(new.clone()))).unwrap();
        assert_eq!(replaced.key_ids_in("production"), BTreeSet::from(["new-key".to_owned()]));
        // Not replaced: the old one still does.
        let kept = KeyCounts::settled(&bytes, |_| Ok(Some(old.clone()))).unwrap();
        assert_eq!(kept.key_ids_in("production"), BTreeSet::from(["old-key".to_owned()]));
        // A record that is neither: the counts cannot be trusted.
        assert!(KeyCounts::settled(&bytes, |_| Ok(Some(meta("third")))).is_err());
        assert!(KeyCounts::settled(b"not json", |_| Ok(None)).is_err());
    }
}
