//! Queries over audit events, and totals.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{AuditAction, AuditEvent, AuditOutcome};

/// Which events a query returns; every set criterion must match. Newest last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only this credential.
    pub credential: Option<String>,
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only this outcome.
    pub outcome: Option<AuditOutcome>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

impl AuditQuery {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only events about `credential`.
    pub fn credential(mut self, credential: &str) -> Self {
        self.credential = Some(credential.to_owned());
        self
    }

    /// Only events by `principal`.
    pub fn principal(mut self, principal: &str) -> Self {
        self.principal = Some(principal.to_owned());
        self
    }

    /// Only `action` events.
    pub fn action(mut self, action: AuditAction) -> Self {
        self.action = Some(action);
        self
    }

    /// Only events that ended with `outcome`.
    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Only events in `[since, until)`.
    pub fn between(mut self, since: DateTime<Utc>, until: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self.until = Some(until);
        self
    }

    /// At most the newest `limit` events.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether `event` passes the query's criteria (the limit aside).
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.credential.as_ref().is_none_or(|credential| **credential == *event.credential)
            && self.principal.as_ref().is_none_or(|principal| **principal == *event.principal)
            && self.action.is_none_or(|action| action == event.action)
            && self.outcome.is_none_or(|outcome| outcome == event.outcome)
            && self.since.is_none_or(|since| event.time >= since)
            && self.until.is_none_or(|until| event.time < until)
    }

    /// Applies the query to events in time order.
    pub fn apply<'a>(&self, events: impl Iterator<Item = &'a AuditEvent>) -> Vec<AuditEvent> {
        let mut matched: Vec<AuditEvent> =
            events.filter(|event| self.matches(event)).cloned().collect();
        if let Some(limit) = self.limit {
            let excess = matched.len().saturating_sub(limit);
            matched.drain(..excess);
        }
        matched
    }
}

/// Totals over a set of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditSummary {
    /// Accesses per credential (coalesced events counted by their `count`).
    pub by_credential: BTreeMap<Arc<str>, usize>,
    /// Events per principal.
    pub by_principal: BTreeMap<Arc<str>, usize>,
    /// Events that were denied or failed.
    pub failures: usize,
    /// The time of the latest successful read or load of each credential.
    pub last_access: BTreeMap<Arc<str>, DateTime<Utc>>,
}

impl AuditSummary {
    /// The summary of `events`.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> Self {
        let mut summary = Self::default();
        for event in events {
            let count = usize::try_from(event.count).unwrap_or(usize::MAX);
            *summary.by_credential.entry(event.credential.clone()).or_default() += count;
            *summary.by_principal.entry(event.principal.clone()).or_default() += count;
            if event.outcome != AuditOutcome::Success {
                summary.failures += count;
            }
            let is_access = matches!(
                event.action,
                AuditAction::Read | AuditAction::Load | AuditAction::Resolve
            );
            if is_access && event.outcome == AuditOutcome::Success {
                let latest = event.until.unwrap_or(event.time);
                let last = summary.last_access.entry(event.credential.clone()).or_insert(latest);
                *last = (*last).max(latest);
            }
        }
        summary
    }
}
