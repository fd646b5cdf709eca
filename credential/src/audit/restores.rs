//! Restores detected: the audit trail knows the revision every change through a manager wrote,
//! so a stored record behind it was put back from an older copy (a backup, a snapshot, a
//! rolled-back row), and a revoked credential that is not revoked in the store was put back from
//! before the revoke. Nothing in a restored record itself tells: it carries its own authentic
//! tag.

use std::collections::BTreeMap;

use super::{AuditAction, AuditEvent, AuditOutcome};
use crate::store::{LifecycleState, RecordMeta};

/// What comparing a store's records with the audit trail found; see
/// [`Manager::verify_against_trail`](crate::Manager::verify_against_trail).
///
/// ```
/// use credential::audit::RestoreCheck;
///
/// // No events, no records: nothing to say.
/// let check = RestoreCheck::of(&[], "default", &[]);
/// assert!(check.is_clean());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreCheck {
    /// How many credentials the trail records a change of.
    pub credentials: usize,
    /// Credentials whose stored record is behind the last change the trail records (or gone):
    /// put back from an older copy, or, rarely, a write that crashed after its event was
    /// recorded. Ids within the environment, sorted.
    pub behind: Vec<String>,
    /// Credentials the trail records as revoked whose stored record is not: put back from a copy
    /// taken before the revoke, and readable again (such a record is most often behind too).
    /// Ids within the environment, sorted.
    pub revoked_readable: Vec<String>,
}

/// The last committed change of one credential, and the one before it (what a failure after
/// the last one's announcement takes it back to).
#[derive(Default)]
struct Last {
    committed: Option<(u64, AuditAction)>,
    before: Option<(u64, AuditAction)>,
}

impl RestoreCheck {
    /// Compares `records`, the store's records (storage ids, as a store lists them), with
    /// `events`, the trail oldest first, for the credentials of `environment`.
    pub fn of(events: &[AuditEvent], environment: &str, records: &[RecordMeta]) -> Self {
        let mut last: BTreeMap<&str, Last> = BTreeMap::new();
        let changes = events
            .iter()
            .filter(|event| event.action.is_mutation() && &*event.environment == environment);
        for event in changes {
            let Some(revision) = event.revision else { continue };
            let change = (revision, event.action);
            let entry = last.entry(&event.credential).or_default();
            match event.outcome {
                // Recorded before the change is made: it stands unless its failure follows.
                AuditOutcome::Success => {
                    entry.before = entry.committed.replace(change);
                }
                _ if entry.committed == Some(change) => {
                    entry.committed = entry.before.take();
                }
                _ => {}
            }
        }
        let prefix = format!("{environment}/");
        let stored: BTreeMap<&str, &RecordMeta> = records
            .iter()
            .filter_map(|meta| Some((meta.id.strip_prefix(&prefix)?, meta)))
            .collect();
        let mut check = Self { credentials: last.len(), ..Self::default() };
        for (id, last) in &last {
            let Some((revision, action)) = last.committed else { continue };
            let Some(meta) = stored.get(id) else {
                check.behind.push((*id).to_owned());
                continue;
            };
            if meta.revision < revision {
                check.behind.push((*id).to_owned());
            }
            if action == AuditAction::Revoke && meta.state != LifecycleState::Revoked {
                check.revoked_readable.push((*id).to_owned());
            }
        }
        check
    }

    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.behind.is_empty() && self.revoked_readable.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;

    fn change(id: &str, action: AuditAction, outcome: AuditOutcome, revision: u64) -> AuditEvent {
        AuditEvent {
            time: Utc::now(),
            principal: Arc::from("operator"),
            credential: Arc::from(id),
            environment: Arc::from("default"),
            action,
            outcome,
            version: None,
            error: None,
            reason: None,
            count: 1,
            until: None,
            revision: Some(revision),
        }
    }

    fn stored(id: &str, revision: u64, state: LifecycleState) -> RecordMeta {
        let mut meta =
            RecordMeta::new(&format!("default/{id}"), "api_key", "default", "k", Utc::now());
        meta.revision = revision;
        meta.state = state;
        meta
    }

    #[test]
    fn records_behind_the_trail_and_revokes_undone_are_named_and_failures_do_not_count() {
        use AuditAction::{Activate, Create, Revoke, Rotate};
        use AuditOutcome::{Failure, Success};
        let events = [
            change("current", Create, Success, 1),
            change("current", Activate, Success, 2),
            change("restored", Create, Success, 1),
            change("restored", Activate, Success, 2),
            change("restored", Rotate, Success, 3),
            change("revoked", Create, Success, 1),
            change("revoked", Revoke, Success, 2),
            // A rotation that lost its race: announced, then failed.
            change("current", Rotate, Success, 3),
            change("current", Rotate, Failure, 3),
            change("gone", Create, Success, 1),
        ];
        let records = [
            stored("current", 2, LifecycleState::Active),
            stored("restored", 2, LifecycleState::Active),
            stored("revoked", 1, LifecycleState::Draft),
            stored("untracked", 9, LifecycleState::Active),
        ];
        let check = RestoreCheck::of(&events, "default", &records);
        assert_eq!(check.credentials, 4);
        assert_eq!(check.behind, ["gone", "restored", "revoked"]);
        assert_eq!(check.revoked_readable, ["revoked"], "a row from before its revoke");

        // The revoked row put back with the revision of its revoke: readable again.
        let records = [stored("revoked", 2, LifecycleState::Active)];
        let check = RestoreCheck::of(&events[5..7], "default", &records);
        assert_eq!(check.revoked_readable, ["revoked"]);
        assert!(check.behind.is_empty());
        // Another environment's events say nothing here.
        assert_eq!(RestoreCheck::of(&events, "staging", &records), RestoreCheck::default());
    }
}
