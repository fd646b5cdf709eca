//! Scheduled rotations: policies per id pattern, and the task a manager owns that runs the due
//! ones. The task holds the manager's core weakly, so it ends with the last handle to the manager;
//! it never takes a lock that reads take, and each rotation it runs takes the record's lease first,
//! so a fleet of managers with the same policies rotates each credential once.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{RotationOutcome, Rotators};
use crate::manager::access::glob_matches;
use crate::manager::core::Core;
use crate::manager::{Manager, versions};
use crate::store::{LifecycleState, ListFilter, Record};

/// When credentials whose id matches a pattern are rotated: every so often, and/or within a
/// window before they expire. Register with
/// [`ManagerBuilder::rotation_policy`](crate::ManagerBuilder::rotation_policy).
///
/// ```
/// use std::time::Duration;
///
/// use credential::rotation::RotationPolicy;
///
/// let policy = RotationPolicy::new("db/*").every(Duration::from_secs(30 * 24 * 3600));
/// assert!(policy.matches("db/orders"));
/// ```
#[derive(Debug, Clone)]
pub struct RotationPolicy {
    pattern: String,
    every: Option<Duration>,
    before_expiry: Option<Duration>,
}

impl RotationPolicy {
    /// A policy for ids matching `pattern` (`*` matches any run of characters, `/` included).
    /// Without [`every`](Self::every) or [`before_expiry`](Self::before_expiry) it rotates
    /// nothing.
    pub fn new(pattern: &str) -> Self {
        Self { pattern: pattern.to_owned(), every: None, before_expiry: None }
    }

    /// Rotates a credential once its served version is `interval` old.
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = Some(interval);
        self
    }

    /// Rotates a credential once it expires within `window`.
    pub fn before_expiry(mut self, window: Duration) -> Self {
        self.before_expiry = Some(window);
        self
    }

    /// Whether the policy covers credential `id`.
    pub fn matches(&self, id: &str) -> bool {
        glob_matches(&self.pattern, id)
    }

    /// When a credential whose served version was made at `served_at` and which expires at
    /// `expires_at` falls due under this policy (`None`: never).
    pub fn next_rotation(
        &self,
        served_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let by_age =
            self.every.and_then(|every| Some(served_at + chrono::Duration::from_std(every).ok()?));
        let by_expiry = self
            .before_expiry
            .zip(expires_at)
            .and_then(|(window, at)| Some(at - chrono::Duration::from_std(window).ok()?));
        by_age.into_iter().chain(by_expiry).min()
    }

    /// When `record` falls due under this policy (`None`: never).
    pub(crate) fn due_at(&self, record: &Record) -> Option<DateTime<Utc>> {
        let served = versions::latest_in(record, crate::store::VersionState::Current)?;
        self.next_rotation(served.created_at, record.meta.expires_at)
    }

    /// Whether `record` is due at `now`: by age or expiry, or left pending by a rotation that did
    /// not finish.
    fn is_due(&self, record: &Record, now: DateTime<Utc>) -> bool {
        record.meta.state == LifecycleState::Rotating
            || self.due_at(record).is_some_and(|due_at| due_at <= now)
    }
}

/// The policies a manager's task follows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schedule {
    pub(crate) policies: Vec<RotationPolicy>,
}

impl Schedule {
    /// The policy that covers `id`: the first registered that matches.
    pub(crate) fn policy_for(&self, id: &str) -> Option<&RotationPolicy> {
        self.policies.iter().find(|policy| policy.matches(id))
    }

    /// Starts the task that runs due rotations for `core`, every `tick` of its rotation config,
    /// unless there is no policy; it ends when the core does.
    pub(crate) fn start(core: &Arc<Core>) -> Option<tokio::task::JoinHandle<()>> {
        if core.schedule().policies.is_empty() {
            return None;
        }
        let tick = core.rotators().config.tick;
        let core = Arc::downgrade(core);
        Some(tokio::spawn(async move {
            let mut retries = Retries::default();
            loop {
                tokio::time::sleep(tick).await;
                let Some(core) = Weak::upgrade(&core) else { return };
                run_due(&Manager::over(core), &mut retries).await;
            }
        }))
    }
}

/// When each credential whose rotation failed may be tried again, and after how many failures.
#[derive(Default)]
struct Retries(HashMap<String, (DateTime<Utc>, u32)>);

/// Runs every due rotation of `manager`'s environment, one at a time.
async fn run_due(manager: &Manager, retries: &mut Retries) {
    let core = manager.core();
    let (schedule, rotators) = (core.schedule(), core.rotators());
    let Ok(metas) = core.list(&ListFilter::all()).await else { return };
    let now = Utc::now();
    for meta in metas {
        let covered = matches!(meta.state, LifecycleState::Active | LifecycleState::Rotating)
            && rotators.rotates(&meta.kind);
        let Some(policy) = schedule.policy_for(&meta.id).filter(|_| covered) else { continue };
        if retries.0.get(&meta.id).is_some_and(|(after, _)| now < *after) {
            continue;
        }
        let still_due = |record: &Record, now| policy.is_due(record, now);
        let outcome = manager.rotate_if(&meta.id, Some(&still_due)).await;
        match outcome.map(|report| report.outcome) {
            Ok(
                RotationOutcome::Rotated { .. } | RotationOutcome::NotDue | RotationOutcome::Busy,
            ) => {
                retries.0.remove(&meta.id);
            }
            _ => retries.failed(&meta.id, rotators, now),
        }
    }
}

impl Retries {
    /// Records a failed rotation of `id`: the next try waits `retry_after`, doubling to an hour.
    fn failed(&mut self, id: &str, rotators: &Rotators, now: DateTime<Utc>) {
        let failures = self.0.get(id).map_or(0, |(_, failures)| *failures) + 1;
        let wait =
            rotators.config.retry_after.saturating_mul(1 << failures.min(16).saturating_sub(1));
        let wait = chrono::Duration::from_std(wait.min(Duration::from_secs(3600)))
            .unwrap_or(chrono::Duration::MAX);
        self.0.insert(id.to_owned(), (now + wait, failures));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RecordMeta, SealedVersion, VersionState};

    fn record(served_at: DateTime<Utc>, expires_at: Option<DateTime<Utc>>) -> Record {
        let mut meta = RecordMeta::new("db/orders", "database", "default", "k1", served_at);
        meta.state = LifecycleState::Active;
        meta.expires_at = expires_at;
        let old = SealedVersion::new(1, VersionState::Deprecated, vec![1], served_at - days(90));
        Record::new(
            meta,
            vec![old, SealedVersion::new(2, VersionState::Current, vec![1], served_at)],
        )
    }

    fn days(days: i64) -> chrono::Duration {
        chrono::Duration::days(days)
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn a_policy_is_due_by_the_served_version_age_or_the_expiry_window_whichever_comes_first() {
        let now = Utc::now();
        let policy = RotationPolicy::new("db/*").every(30 * DAY).before_expiry(7 * DAY);
        let served_at = now - days(10);
        assert_eq!(policy.due_at(&record(served_at, None)), Some(served_at + days(30)));
        let expiring = record(served_at, Some(now + days(3)));
        assert_eq!(policy.due_at(&expiring), Some(now + days(3) - days(7)));
        assert!(policy.is_due(&expiring, now));
        assert!(!policy.is_due(&record(served_at, None), now));
        assert!(policy.is_due(&record(now - days(31), None), now));
        assert_eq!(RotationPolicy::new("db/*").due_at(&record(served_at, None)), None);
    }

    #[test]
    fn a_rotation_left_pending_is_always_due() {
        let mut pending = record(Utc::now(), None);
        pending.meta.state = LifecycleState::Rotating;
        assert!(RotationPolicy::new("*").is_due(&pending, Utc::now()));
    }

    #[test]
    fn the_first_matching_policy_applies() {
        let schedule = Schedule {
            policies: vec![
                RotationPolicy::new("db/prod/*").every(DAY),
                RotationPolicy::new("db/*").every(30 * DAY),
            ],
        };
        assert_eq!(schedule.policy_for("db/prod/orders").unwrap().every, Some(DAY));
        assert_eq!(schedule.policy_for("db/staging").unwrap().every, Some(30 * DAY));
        assert!(schedule.policy_for("api/github").is_none());
    }

    #[test]
    fn failed_rotations_wait_longer_each_time_up_to_an_hour() {
        let rotators = Rotators::default();
        let mut retries = Retries::default();
        let now = Utc::now();
        let waits: Vec<_> = (0..10)
            .map(|_| {
                retries.failed("db/orders", &rotators, now);
                (retries.0["db/orders"].0 - now).num_seconds()
            })
            .collect();
        assert_eq!(waits[..4], [30, 60, 120, 240]);
        assert_eq!(waits[9], 3600);
    }
}
