//! Audit events, the sinks they go to, and queries over them. An event names who did what to
//! which credential and how it ended; it never carries a value.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::audit_batch::ReadTally;
use crate::Result;
use crate::error::ResultFuture;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A credential was created as a draft.
    Create,
    /// A draft was activated.
    Activate,
    /// A rotation started.
    Rotate,
    /// A rotation was committed.
    Commit,
    /// A rotation was rolled back.
    Rollback,
    /// An older version was restored.
    RollbackTo,
    /// A credential was revoked.
    Revoke,
    /// A credential was loaded by an operator.
    Load,
    /// A credential's version history was read.
    History,
    /// A credential was re-sealed under another master key.
    Rekey,
    /// A credential was read through a context.
    Read,
    /// A template was resolved through a context.
    Resolve,
    /// A credential was refreshed (a new version from its refresher), or marked as needing
    /// reauthentication because the provider refused the refresh.
    Refresh,
    /// A credential's secret values were shown to an operator.
    Reveal,
    /// A credential was exported in plaintext for a backup.
    Export,
    /// A credential was restored from a backup.
    Import,
}

impl AuditAction {
    /// How many actions there are.
    #[cfg(feature = "metrics")]
    pub(crate) const COUNT: usize = Self::Import as usize + 1;

    /// Whether the action changes a credential (and so is audited before it is committed).
    pub fn is_mutation(self) -> bool {
        !matches!(
            self,
            Self::Load | Self::History | Self::Read | Self::Resolve | Self::Reveal | Self::Export
        )
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Activate => "activate",
            Self::Rotate => "rotate",
            Self::Commit => "commit",
            Self::Rollback => "rollback",
            Self::RollbackTo => "rollback_to",
            Self::Revoke => "revoke",
            Self::Load => "load",
            Self::History => "history",
            Self::Rekey => "rekey",
            Self::Read => "read",
            Self::Resolve => "resolve",
            Self::Refresh => "refresh",
            Self::Reveal => "reveal",
            Self::Export => "export",
            Self::Import => "import",
        }
    }
}

impl std::str::FromStr for AuditAction {
    type Err = crate::Error;

    /// Reads a stored name.
    fn from_str(text: &str) -> Result<Self> {
        parse_name(text)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditOutcome {
    /// It happened.
    Success,
    /// The access policy refused it.
    Denied,
    /// It was allowed but failed (conflict, expired, revoked, ...).
    Failure,
}

impl AuditOutcome {
    /// How an operation that ended with `error` (none: success) ended.
    pub(crate) fn of(error: Option<&crate::Error>) -> Self {
        match error {
            None => Self::Success,
            Some(crate::Error::AccessDenied { .. }) => Self::Denied,
            Some(_) => Self::Failure,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failure => "failure",
        }
    }
}

impl std::str::FromStr for AuditOutcome {
    type Err = crate::Error;

    /// Reads a stored name.
    fn from_str(text: &str) -> Result<Self> {
        parse_name(text)
    }
}

/// Reads a stored name through the serde names, which are the stored ones.
fn parse_name<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| crate::Error::Audit { reason: "unreadable audit row".to_owned() })
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One audited access. Never holds a credential value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When.
    #[serde(serialize_with = "super::audit_time::serialize")]
    pub time: DateTime<Utc>,
    /// Who.
    pub principal: Arc<str>,
    /// Which credential (its id within the environment).
    pub credential: Arc<str>,
    /// Which environment.
    pub environment: Arc<str>,
    /// What.
    pub action: AuditAction,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The version involved, when there is one.
    pub version: Option<u64>,
    /// The kind of error for failures and denials (`conflict`, `expired`, ...), never a message
    /// that could carry data.
    pub error: Option<String>,
    /// The operator's stated reason, for revocations.
    pub reason: Option<String>,
    /// How many identical events this one stands for. Durable sinks count the reads of one
    /// version of a credential by one principal with one outcome made between two write
    /// batches (about 25 ms apart) as one event: `time` is the first, [`until`](Self::until)
    /// the last. Otherwise 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
    /// The time of the last of the coalesced events, when there are several.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::audit_time::serialize_option"
    )]
    pub until: Option<DateTime<Utc>>,
}

fn one() -> u64 {
    1
}

// serde's `skip_serializing_if` hands the field by reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_one(count: &u64) -> bool {
    *count == 1
}

impl AuditEvent {
    /// Whether `other` records the same access as this one, so the two can be counted as one
    /// event.
    pub(crate) fn same_access(&self, other: &Self) -> bool {
        self.action == other.action
            && self.outcome == other.outcome
            && self.version == other.version
            && self.credential == other.credential
            && self.principal == other.principal
            && self.environment == other.environment
            && self.error == other.error
            && self.reason == other.reason
    }
}

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

/// Where audit events go.
///
/// A manager records a mutation's event with [`record`](Self::record) before committing the
/// mutation, and refuses the mutation when recording fails (fail closed). Read events go to
/// [`record_read`](Self::record_read), which must not wait for I/O: a durable sink queues them
/// and writes them in batches; when it cannot take one (queue full, sink failing) the read is
/// refused.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Records a mutation's event; returns once it is durable.
    ///
    /// # Errors
    /// [`Error::Audit`](crate::Error::Audit) when the event could not be recorded.
    async fn record(&self, event: AuditEvent) -> Result<()>;

    /// Takes a read event without waiting for I/O.
    ///
    /// # Errors
    /// [`Error::AuditBackpressure`](crate::Error::AuditBackpressure) or
    /// [`Error::Audit`](crate::Error::Audit) when the event cannot be taken: the read is refused.
    fn record_read(&self, event: AuditEvent) -> Result<()>;

    /// A running count for reads of the access `event` records, if this sink counts repeated
    /// reads itself: a manager then counts each further read of that access by the same
    /// principal on it instead of handing over an event. The default is `None`: every read is
    /// an event.
    fn read_tally(&self, event: &AuditEvent) -> Option<Arc<ReadTally>> {
        let _ = event;
        None
    }

    /// Returns once every event taken so far is durable: what a short-lived process (a command
    /// line tool) calls before it exits, so that no queued read event is lost. The default does
    /// nothing, for sinks that write every event at once.
    ///
    /// # Errors
    /// [`Error::Audit`](crate::Error::Audit) when queued events could not be written.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// The events passing `query`, oldest first, including every event taken so far.
    ///
    /// # Errors
    /// [`Error::Audit`](crate::Error::Audit) when the events cannot be read.
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>>;

    /// Totals over the events passing `query`.
    ///
    /// # Errors
    /// As [`query`](Self::query).
    async fn summary(&self, query: &AuditQuery) -> Result<AuditSummary> {
        let events = self.query(query).await?;
        Ok(AuditSummary::of(&events))
    }
}

/// Audit events kept in memory, for tests and short-lived processes: the newest
/// [`DEFAULT_MEMORY_AUDIT_CAPACITY`] events, or the newest `n` with [`bounded`](Self::bounded).
/// Older events are dropped, so a long-running process does not grow without bound.
#[derive(Debug)]
pub struct MemoryAuditSink {
    events: Mutex<VecDeque<AuditEvent>>,
    capacity: usize,
}

/// How many events a [`MemoryAuditSink::new`] keeps.
pub const DEFAULT_MEMORY_AUDIT_CAPACITY: usize = 10_000;

impl Default for MemoryAuditSink {
    fn default() -> Self {
        Self::bounded(DEFAULT_MEMORY_AUDIT_CAPACITY)
    }
}

impl MemoryAuditSink {
    /// A sink that keeps the newest [`DEFAULT_MEMORY_AUDIT_CAPACITY`] events.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink that keeps the newest `capacity` events.
    pub fn bounded(capacity: usize) -> Self {
        Self { events: Mutex::new(VecDeque::new()), capacity }
    }

    fn push(&self, event: AuditEvent) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() >= self.capacity {
            events.pop_front();
        }
        events.push_back(event);
    }
}

#[async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        self.push(event);
        Ok(())
    }

    fn record_read(&self, event: AuditEvent) -> Result<()> {
        self.push(event);
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        Ok(query.apply(self.events.lock().unwrap_or_else(PoisonError::into_inner).iter()))
    }
}

/// A shared sink is a sink: keep an `Arc` to query what a manager records. Each call hands back
/// the shared sink's own future, without boxing it a second time.
#[async_trait]
impl<S: AuditSink + ?Sized> AuditSink for Arc<S> {
    fn record<'a, 'f>(&'a self, event: AuditEvent) -> ResultFuture<'f, ()>
    where
        'a: 'f,
        Self: 'f,
    {
        (**self).record(event)
    }

    fn record_read(&self, event: AuditEvent) -> Result<()> {
        (**self).record_read(event)
    }

    fn read_tally(&self, event: &AuditEvent) -> Option<Arc<ReadTally>> {
        (**self).read_tally(event)
    }

    fn flush<'a, 'f>(&'a self) -> ResultFuture<'f, ()>
    where
        'a: 'f,
        Self: 'f,
    {
        (**self).flush()
    }

    fn query<'a, 'b, 'f>(&'a self, query: &'b AuditQuery) -> ResultFuture<'f, Vec<AuditEvent>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).query(query)
    }

    fn summary<'a, 'b, 'f>(&'a self, query: &'b AuditQuery) -> ResultFuture<'f, AuditSummary>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).summary(query)
    }
}
