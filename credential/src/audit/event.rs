//! Audit events: who did what to which credential and how it ended. An event never carries a
//! value.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

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
    /// A rotation's next value was made valid at the target system (or, rolling back, the
    /// current value again).
    RotateSet,
    /// A rotation's next value was tried at the target system.
    RotateTest,
    /// A rotation's old value was retired at the target system.
    RotateRetire,
    /// The access policy was replaced (recorded with credential `*`: it covers them all).
    SetPolicy,
}

impl AuditAction {
    /// How many actions there are.
    #[cfg(feature = "metrics")]
    pub(crate) const COUNT: usize = Self::SetPolicy as usize + 1;

    /// Whether the action changes a credential (and so is audited before it is committed).
    pub fn is_mutation(self) -> bool {
        !matches!(
            self,
            Self::Load
                | Self::History
                | Self::Read
                | Self::Resolve
                | Self::Reveal
                | Self::Export
                | Self::RotateSet
                | Self::RotateTest
                | Self::RotateRetire
        )
    }

    /// Every action, in the order of the enum: what a tool lists as the valid names.
    pub const ALL: [Self; 20] = [
        Self::Create,
        Self::Activate,
        Self::Rotate,
        Self::Commit,
        Self::Rollback,
        Self::RollbackTo,
        Self::Revoke,
        Self::Load,
        Self::History,
        Self::Rekey,
        Self::Read,
        Self::Resolve,
        Self::Refresh,
        Self::Reveal,
        Self::Export,
        Self::Import,
        Self::RotateSet,
        Self::RotateTest,
        Self::RotateRetire,
        Self::SetPolicy,
    ];
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
            Self::RotateSet => "rotate_set",
            Self::RotateTest => "rotate_test",
            Self::RotateRetire => "rotate_retire",
            Self::SetPolicy => "set_policy",
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
        .map_err(|_| crate::Error::audit("unreadable audit row"))
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// For a change through a manager, the record revision it writes (its failure, if it
    /// fails, names the same): what [`RestoreCheck`](super::RestoreCheck) compares stored
    /// records with. `None` for reads and for events written before revisions were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_listed_once_in_order_and_reads_back_by_name() {
        assert_eq!(AuditAction::ALL.len(), AuditAction::SetPolicy as usize + 1);
        for (index, action) in AuditAction::ALL.into_iter().enumerate() {
            assert_eq!(action as usize, index);
            assert_eq!(action.as_str().parse::<AuditAction>().unwrap(), action);
        }
    }
}
