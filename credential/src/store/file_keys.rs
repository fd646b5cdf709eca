//! The file store's count of which master keys its live records use: `.keys`, a small JSON file
//! rewritten atomically under the store's lock by every write that changes a count, so a manager
//! checks its key ring without reading the records.
//!
//! A crash can fall between rewriting the counts and replacing the record. So the counts are
//! written together with the change in progress (`pending`: the record, what it counted for
//! before and after); whoever reads them next looks at that one record and keeps the counts if the
//! record was replaced, or takes the change back if it was not.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::RecordMeta;
use super::key_usage::{KeyUsage, Usage};
use crate::{Error, Result};

/// The file's name in the store's directory.
pub(crate) const KEYS_FILE: &str = ".keys";

/// The counts, and the change a crash may have left half done.
#[derive(Debug, Default)]
pub(crate) struct KeyCounts {
    usage: KeyUsage,
    pending: Option<Pending>,
}

/// The file's form.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// (environment, key id, live records).
    counts: Vec<(String, String, u64)>,
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    id: String,
    before: Usage,
    after: Usage,
}

impl KeyCounts {
    /// Counts from the records `metas`.
    pub(crate) fn of<'a>(metas: impl IntoIterator<Item = &'a RecordMeta>) -> Self {
        Self { usage: KeyUsage::of(metas), pending: None }
    }

    /// The counts in `bytes`, with a change left pending settled against the record as it is
    /// (`read_meta` reads it).
    pub(crate) fn settled(
        bytes: &[u8],
        read_meta: impl FnOnce(&str) -> Result<Option<RecordMeta>>,
    ) -> Result<Self> {
        let stored: Stored = serde_json::from_slice(bytes).map_err(|_| Error::CorruptRecord {
            reason: format!("`{KEYS_FILE}` is not a key count file"),
        })?;
        let mut usage = KeyUsage::from_entries(stored.counts);
        if let Some(pending) = stored.pending {
            let now = super::key_usage::usage(read_meta(&pending.id)?.as_ref());
            if now == pending.before && now != pending.after {
                // The record was not replaced: take the change back.
                usage.apply(&pending.after, &pending.before);
            } else if now != pending.after {
                return Err(Error::CorruptRecord {
                    reason: format!("`{KEYS_FILE}` disagrees with record `{}`", pending.id),
                });
            }
        }
        Ok(Self { usage, pending: None })
    }

    /// These counts, with `id`'s change from `before` to `after` applied and noted as pending.
    ///
    /// # Errors
    /// As [`to_bytes`](Self::to_bytes).
    pub(crate) fn with_pending(mut self, id: &str, before: Usage, after: Usage) -> Result<Vec<u8>> {
        self.usage.apply(&before, &after);
        self.pending = Some(Pending { id: id.to_owned(), before, after });
        self.to_bytes()
    }

    /// The counts as the file holds them.
    ///
    /// # Errors
    /// [`Error::CorruptRecord`] if they cannot be written as JSON (never an empty file).
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        let stored = Stored { counts: self.usage.entries(), pending: self.pending.clone() };
        serde_json::to_vec(&stored).map_err(|error| Error::CorruptRecord {
            reason: format!("`{KEYS_FILE}` cannot be written: {error}"),
        })
    }

    /// The key ids in use in `environment`.
    pub(crate) fn key_ids_in(&self, environment: &str) -> BTreeSet<String> {
        self.usage.of_environment(environment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_record;
    use crate::store::key_usage::usage;

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
        let bytes = counts.with_pending("keys/a", usage(Some(&old)), usage(Some(&new))).unwrap();

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
