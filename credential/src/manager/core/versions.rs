//! Which version is served, which is readable by number, which is kept, and what each lifecycle
//! transition does to a record's versions: decided here and nowhere else.

use chrono::{DateTime, Utc};

use crate::store::{Record, RefreshMark, SealedVersion};
use crate::{Error, LifecycleState, Result, VersionState};

/// How long deprecated versions stay readable and how many versions keep their payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VersionRules {
    pub(crate) grace_period: chrono::Duration,
    pub(crate) max_versions: usize,
}

/// The version `get` serves: the current one of an active or rotating credential.
pub(crate) fn served<'r>(id: &str, record: &'r Record) -> Result<&'r SealedVersion> {
    match record.meta.state {
        LifecycleState::Active | LifecycleState::Rotating => {}
        LifecycleState::Revoked => return Err(Error::Revoked { id: id.to_owned() }),
        state => return Err(Error::NotActive { id: id.to_owned(), state }),
    }
    required(id, record, VersionState::Current)
}

/// The newest version in `state`, which the record's lifecycle state says must exist.
///
/// # Errors
/// [`Error::CorruptRecord`] when it does not.
pub(crate) fn required<'r>(
    id: &str,
    record: &'r Record,
    state: VersionState,
) -> Result<&'r SealedVersion> {
    latest_in(record, state).ok_or_else(|| Error::CorruptRecord {
        reason: format!("credential `{id}` has no {state} version"),
    })
}

/// Version `number`, if it may be read by number at `now`: the current version, the pending one
/// of a rotation, or a deprecated one inside the grace period. A draft is not read by number.
pub(crate) fn readable<'r>(
    id: &str,
    record: &'r Record,
    number: u64,
    rules: VersionRules,
    now: DateTime<Utc>,
) -> Result<&'r SealedVersion> {
    match record.meta.state {
        LifecycleState::Active | LifecycleState::Rotating => {}
        LifecycleState::Revoked => return Err(Error::Revoked { id: id.to_owned() }),
        state => return Err(Error::NotActive { id: id.to_owned(), state }),
    }
    let unavailable = || Error::VersionUnavailable { id: id.to_owned(), version: number };
    let found = record.versions.iter().find(|version| version.version == number);
    let found = found.filter(|version| !version.sealed.is_empty()).ok_or_else(unavailable)?;
    let readable = match found.state {
        VersionState::Current => true,
        VersionState::Pending => record.meta.state == LifecycleState::Rotating,
        VersionState::Deprecated => now < found.changed_at + rules.grace_period,
        _ => false,
    };
    if readable { Ok(found) } else { Err(unavailable()) }
}

/// The newest version in `state`.
pub(crate) fn latest_in(record: &Record, state: VersionState) -> Option<&SealedVersion> {
    record.versions.iter().rev().find(|version| version.state == state)
}

/// The number of the version being served (for a revoked or draft credential: the newest one).
pub(crate) fn current_number(record: &Record) -> u64 {
    latest_in(record, VersionState::Current)
        .or(record.versions.last())
        .map_or(0, |version| version.version)
}

/// The number the next sealed version gets.
pub(crate) fn next_number(record: &Record) -> u64 {
    record.versions.iter().map(|version| version.version).max().unwrap_or(0) + 1
}

/// A version sealed now.
pub(crate) fn sealed_now(version: u64, state: VersionState, sealed: Vec<u8>) -> SealedVersion {
    sealed_at(version, state, sealed, Utc::now())
}

/// `sealed` as `version` in `state`, made at `at`.
pub(crate) fn sealed_at(
    version: u64,
    state: VersionState,
    sealed: Vec<u8>,
    at: DateTime<Utc>,
) -> SealedVersion {
    SealedVersion { version, state, created_at: at, changed_at: at, sealed }
}

fn set_state(version: &mut SealedVersion, state: VersionState) {
    version.state = state;
    version.changed_at = Utc::now();
    if state == VersionState::Destroyed {
        version.sealed = Vec::new();
    }
}

/// Destroys the payloads of the oldest deprecated versions beyond `max_versions`.
fn prune(record: &mut Record, rules: VersionRules) {
    let kept = record.versions.iter().filter(|version| !version.sealed.is_empty()).count();
    let excess = kept.saturating_sub(rules.max_versions);
    for version in record
        .versions
        .iter_mut()
        .filter(|version| version.state == VersionState::Deprecated)
        .take(excess)
    {
        set_state(version, VersionState::Destroyed);
    }
}

/// The record of a draft that starts being served, with the number of the version it serves.
pub(crate) fn activated(mut record: Record) -> (Record, Option<u64>) {
    record.meta.state = LifecycleState::Active;
    if let Some(first) = record.versions.last_mut() {
        set_state(first, VersionState::Current);
    }
    let served = current_number(&record);
    (record, Some(served))
}

/// The record with `sealed` added as the pending version `number` of a rotation.
pub(crate) fn rotated(mut record: Record, number: u64, sealed: Vec<u8>) -> Record {
    record.versions.push(sealed_now(number, VersionState::Pending, sealed));
    record.meta.state = LifecycleState::Rotating;
    record
}

/// The record after a rotation's commit: pending becomes current, current becomes deprecated;
/// with the number of the version it serves.
pub(crate) fn committed(
    mut record: Record,
    expires_at: Option<DateTime<Utc>>,
    rules: VersionRules,
) -> (Record, Option<u64>) {
    for version in &mut record.versions {
        match version.state {
            VersionState::Current => set_state(version, VersionState::Deprecated),
            VersionState::Pending => set_state(version, VersionState::Current),
            _ => {}
        }
    }
    record.meta.state = LifecycleState::Active;
    record.meta.expires_at = expires_at;
    // A new version is a fresh start for refresh: no lease, no reauthentication pending.
    record.meta.refresh = RefreshMark::default();
    prune(&mut record, rules);
    let served = current_number(&record);
    (record, Some(served))
}

/// The record after a rotation's rollback, with the number of the discarded version.
pub(crate) fn rolled_back(mut record: Record) -> (Record, Option<u64>) {
    let mut discarded = None;
    for version in
        record.versions.iter_mut().filter(|version| version.state == VersionState::Pending)
    {
        discarded = Some(version.version);
        set_state(version, VersionState::Destroyed);
    }
    record.meta.state = LifecycleState::Active;
    (record, discarded)
}

/// The deprecated version `number`, which [`Core::restored`](super::core::Core::restored) can
/// bring back.
pub(crate) fn restorable<'r>(
    id: &str,
    record: &'r Record,
    number: u64,
) -> Result<&'r SealedVersion> {
    record
        .versions
        .iter()
        .find(|version| {
            version.version == number
                && version.state == VersionState::Deprecated
                && !version.sealed.is_empty()
        })
        .ok_or_else(|| Error::VersionUnavailable { id: id.to_owned(), version: number })
}

/// The record with `sealed` made current as `number`: an old version's payload re-sealed (a
/// restore) or a refreshed credential. The version it replaces is deprecated, and any refresh
/// lease or reauthentication mark is cleared.
pub(crate) fn with_current(
    mut record: Record,
    number: u64,
    sealed: Vec<u8>,
    expires_at: Option<DateTime<Utc>>,
    rules: VersionRules,
) -> Record {
    for existing in
        record.versions.iter_mut().filter(|existing| existing.state == VersionState::Current)
    {
        set_state(existing, VersionState::Deprecated);
    }
    record.versions.push(sealed_now(number, VersionState::Current, sealed));
    record.meta.expires_at = expires_at;
    record.meta.refresh = RefreshMark::default();
    prune(&mut record, rules);
    record
}

/// The record of a revoked credential: every payload destroyed, metadata kept.
pub(crate) fn revoked(mut record: Record) -> Record {
    for version in &mut record.versions {
        set_state(version, VersionState::Destroyed);
    }
    record.meta.state = LifecycleState::Revoked;
    record
}
