//! The lifecycle type-state: `Managed<C, S>` where `S` is one of [`Draft`], [`Active`],
//! [`Rotating`] and [`Revoked`].
//!
//! ```text
//! create ─▶ Draft ─activate─▶ Active ─rotate─▶ Rotating ─commit───▶ Active
//!                               │  ▲                    └─rollback─▶ Active
//!                               │  └─ rollback_to(version)
//!   Draft | Active | Rotating ─revoke─▶ Revoked (terminal)
//! ```
//!
//! Each transition consumes the handle and returns the next one, so a stale handle cannot be used
//! again (`use of moved value`), and a step that does not exist for a state is a compile error
//! (`no method named `commit` found for struct `Managed<C, Active>``). The state trait is sealed
//! and the markers cannot be built outside this crate. A handle loaded at run time comes back
//! through one checked door: [`AnyManaged::into_active`] and its siblings.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::Utc;

use super::Manager;
use super::audit::AuditAction;
use crate::{Credential, Error, LifecycleState, Record, Result, SealedVersion, VersionState};

mod sealed {
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a lifecycle state",
        label = "not one of `Draft`, `Active`, `Rotating`, `Revoked`",
        note = "the lifecycle states are sealed: the transitions between them are what keeps a credential's history sound"
    )]
    pub trait Sealed {}
}

/// A lifecycle state. Sealed: the four states below are all there is.
pub trait State: sealed::Sealed + Send + Sync + 'static {
    /// What a handle in this state holds besides the record.
    #[doc(hidden)]
    type Data<C: Credential>: Send + Sync;
    /// The stored state.
    const STATE: LifecycleState;
}

/// States in which a credential can still be revoked.
pub trait Live: State {}

macro_rules! state {
    ($(#[$meta:meta])* $name:ident, $stored:ident, $data:ty) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name {
            _private: (),
        }
        impl sealed::Sealed for $name {}
        impl State for $name {
            type Data<C: Credential> = $data;
            const STATE: LifecycleState = LifecycleState::$stored;
        }
    };
}

state!(
    /// Created, not yet served.
    Draft, Draft, Arc<C>
);
state!(
    /// Served.
    Active, Active, Arc<C>
);
state!(
    /// Served, with a pending version waiting for `commit` or `rollback`.
    Rotating, Rotating, (Arc<C>, Arc<C>)
);
state!(
    /// Revoked: secrets destroyed, metadata and audit trail kept. Terminal.
    Revoked, Revoked, ()
);

impl Live for Draft {}
impl Live for Active {}
impl Live for Rotating {}

/// A credential in lifecycle state `S` ([`Draft`], [`Active`], [`Rotating`] or [`Revoked`]),
/// typed as `C`.
///
/// ```text
/// create ─▶ Draft ─activate─▶ Active ─rotate─▶ Rotating ─commit───▶ Active
///                               │  ▲                    └─rollback─▶ Active
///                               │  └─ rollback_to(version)
///   Draft | Active | Rotating ─revoke─▶ Revoked (terminal)
/// ```
///
/// Each transition consumes the handle and returns the next one (`use of moved value` for a
/// stale handle); a step a state does not have is `no method named … found for struct
/// Managed<C, Active>`; revoking twice is `the method revoke exists … but its trait bounds were
/// not satisfied` (`Revoked: Live`). Every transition validates, is a compare-and-swap on the
/// record revision ([`Error::Conflict`] when another writer got there first), and is audited.
pub struct Managed<C: Credential, S: State> {
    manager: Manager,
    id: String,
    record: Record,
    data: S::Data<C>,
    _state: PhantomData<S>,
}

impl<C: Credential, S: State> fmt::Debug for Managed<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Managed")
            .field("id", &self.id)
            .field("kind", &C::KIND)
            .field("state", &S::STATE)
            .field("revision", &self.record.meta.revision)
            .finish_non_exhaustive()
    }
}

impl<C: Credential, S: State> Managed<C, S> {
    pub(crate) fn from_parts(
        manager: Manager,
        id: String,
        record: Record,
        data: S::Data<C>,
    ) -> Self {
        Self { manager, id, record, data, _state: PhantomData }
    }

    /// The credential id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The record revision this handle was read or written at.
    pub fn revision(&self) -> u64 {
        self.record.meta.revision
    }

    /// The version being served (for a revoked credential: the last one served).
    pub fn version(&self) -> u64 {
        current_version(&self.record)
    }

    /// The stored record: metadata and sealed versions.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Commits `after` in place of this handle's record: policy check, audit, compare-and-swap.
    async fn save(
        &self,
        after: Record,
        action: AuditAction,
        version: Option<u64>,
        reason: Option<String>,
    ) -> Result<Record> {
        self.manager.commit_change(&self.id, &self.record, after, action, version, reason).await
    }

    fn next<N: State>(self, record: Record, data: N::Data<C>) -> Managed<C, N> {
        Managed::from_parts(self.manager, self.id, record, data)
    }
}

pub(crate) fn current_version(record: &Record) -> u64 {
    record
        .versions
        .iter()
        .rev()
        .find(|version| version.state == VersionState::Current)
        .or(record.versions.last())
        .map_or(0, |version| version.version)
}

fn next_version(record: &Record) -> u64 {
    record.versions.iter().map(|version| version.version).max().unwrap_or(0) + 1
}

/// A version sealed now.
pub(crate) fn sealed_version(version: u64, state: VersionState, sealed: Vec<u8>) -> SealedVersion {
    let now = Utc::now();
    SealedVersion { version, state, created_at: now, changed_at: now, sealed }
}

fn set_version_state(version: &mut SealedVersion, state: VersionState) {
    version.state = state;
    version.changed_at = Utc::now();
    if state == VersionState::Destroyed {
        version.sealed = Vec::new();
    }
}

impl<C: Credential> Managed<C, Draft> {
    /// The draft credential.
    pub fn credential(&self) -> &Arc<C> {
        &self.data
    }

    /// Starts serving the draft.
    ///
    /// # Errors
    /// [`Error::Validation`], [`Error::Conflict`] when the record changed since this handle was
    /// read, [`Error::AccessDenied`], [`Error::Audit`], or a store error.
    pub async fn activate(self) -> Result<Managed<C, Active>> {
        self.data.validate()?;
        let mut record = self.record.clone();
        record.meta.state = LifecycleState::Active;
        if let Some(first) = record.versions.last_mut() {
            set_version_state(first, VersionState::Current);
        }
        let version = current_version(&record);
        let record = self.save(record, AuditAction::Activate, Some(version), None).await?;
        let data = Arc::clone(&self.data);
        Ok(self.next(record, data))
    }
}

impl<C: Credential> Managed<C, Active> {
    /// The credential being served.
    pub fn credential(&self) -> &Arc<C> {
        &self.data
    }

    /// Seals `new` as a pending version. The current version keeps being served until
    /// [`commit`](Managed::commit).
    ///
    /// # Errors
    /// As [`activate`](Managed::activate).
    pub async fn rotate(self, new: C) -> Result<Managed<C, Rotating>> {
        new.validate()?;
        let mut record = self.record.clone();
        let version = next_version(&record);
        let sealed = self.manager.seal(&self.id, version, &new)?;
        record.versions.push(sealed_version(version, VersionState::Pending, sealed));
        record.meta.state = LifecycleState::Rotating;
        let record = self.save(record, AuditAction::Rotate, Some(version), None).await?;
        let data = (Arc::clone(&self.data), Arc::new(new));
        Ok(self.next(record, data))
    }

    /// Restores `version`: its payload becomes a new current version, and the version served
    /// until now is deprecated.
    ///
    /// # Errors
    /// [`Error::VersionUnavailable`] when `version` is unknown, current, or its payload was
    /// destroyed; otherwise as [`activate`](Managed::activate).
    pub async fn rollback_to(self, version: u64) -> Result<Managed<C, Active>> {
        let unavailable = || Error::VersionUnavailable { id: self.id.clone(), version };
        let old = self
            .record
            .versions
            .iter()
            .find(|candidate| {
                candidate.version == version && candidate.state == VersionState::Deprecated
            })
            .ok_or_else(unavailable)?;
        let restored: C = self.manager.open_version(&self.id, old)?;
        restored.validate()?;
        let mut record = self.record.clone();
        let new_version = next_version(&record);
        let sealed = self.manager.seal(&self.id, new_version, &restored)?;
        for existing in
            record.versions.iter_mut().filter(|existing| existing.state == VersionState::Current)
        {
            set_version_state(existing, VersionState::Deprecated);
        }
        record.versions.push(sealed_version(new_version, VersionState::Current, sealed));
        record.meta.expires_at = restored.expires_at();
        self.manager.prune(&mut record);
        let record = self.save(record, AuditAction::RollbackTo, Some(new_version), None).await?;
        Ok(self.next(record, Arc::new(restored)))
    }
}

impl<C: Credential> Managed<C, Rotating> {
    /// The credential still being served.
    pub fn credential(&self) -> &Arc<C> {
        &self.data.0
    }

    /// The pending credential.
    pub fn pending(&self) -> &Arc<C> {
        &self.data.1
    }

    /// Makes the pending version current; the previous one becomes deprecated (readable by
    /// explicit version during the manager's grace period).
    ///
    /// # Errors
    /// As [`activate`](Managed::activate).
    pub async fn commit(self) -> Result<Managed<C, Active>> {
        let mut record = self.record.clone();
        for version in &mut record.versions {
            match version.state {
                VersionState::Current => set_version_state(version, VersionState::Deprecated),
                VersionState::Pending => set_version_state(version, VersionState::Current),
                _ => {}
            }
        }
        record.meta.state = LifecycleState::Active;
        record.meta.expires_at = self.data.1.expires_at();
        self.manager.prune(&mut record);
        let version = current_version(&record);
        let record = self.save(record, AuditAction::Commit, Some(version), None).await?;
        let data = Arc::clone(&self.data.1);
        Ok(self.next(record, data))
    }

    /// Discards the pending version; the current one stays.
    ///
    /// # Errors
    /// As [`activate`](Managed::activate).
    pub async fn rollback(self) -> Result<Managed<C, Active>> {
        let mut record = self.record.clone();
        let mut discarded = None;
        for version in
            record.versions.iter_mut().filter(|version| version.state == VersionState::Pending)
        {
            discarded = Some(version.version);
            set_version_state(version, VersionState::Destroyed);
        }
        record.meta.state = LifecycleState::Active;
        let record = self.save(record, AuditAction::Rollback, discarded, None).await?;
        let data = Arc::clone(&self.data.0);
        Ok(self.next(record, data))
    }
}

impl<C: Credential, S: Live> Managed<C, S> {
    /// Revokes the credential for `reason`: every version's sealed payload is destroyed;
    /// metadata, history and audit trail remain. Terminal.
    ///
    /// # Errors
    /// As [`activate`](Managed::activate).
    pub async fn revoke(self, reason: &str) -> Result<Managed<C, Revoked>> {
        let mut record = self.record.clone();
        for version in &mut record.versions {
            set_version_state(version, VersionState::Destroyed);
        }
        record.meta.state = LifecycleState::Revoked;
        let version = current_version(&self.record);
        let record =
            self.save(record, AuditAction::Revoke, Some(version), Some(reason.to_owned())).await?;
        Ok(self.next(record, ()))
    }
}

/// A credential loaded at run time, in whichever state the store holds. Convert it once, checked,
/// into a typed handle.
#[derive(Debug)]
pub struct AnyManaged<C: Credential> {
    inner: AnyState<C>,
}

#[derive(Debug)]
pub(crate) enum AnyState<C: Credential> {
    Draft(Managed<C, Draft>),
    Active(Managed<C, Active>),
    Rotating(Managed<C, Rotating>),
    Revoked(Managed<C, Revoked>),
}

macro_rules! into_state {
    ($(#[$meta:meta])* $method:ident, $variant:ident) => {
        $(#[$meta])*
        ///
        /// # Errors
        /// [`Error::WrongState`] when the credential is in another state.
        pub fn $method(self) -> Result<Managed<C, $variant>> {
            match self.inner {
                AnyState::$variant(managed) => Ok(managed),
                other => Err(Error::WrongState {
                    id: other.id().to_owned(),
                    expected: LifecycleState::$variant,
                    found: other.state(),
                }),
            }
        }
    };
}

impl<C: Credential> AnyManaged<C> {
    pub(crate) fn new(inner: AnyState<C>) -> Self {
        Self { inner }
    }

    /// The stored state.
    pub fn state(&self) -> LifecycleState {
        self.inner.state()
    }

    /// The credential id.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    into_state!(
        /// The draft, if the credential is one.
        into_draft, Draft
    );
    into_state!(
        /// The active credential, if it is active.
        into_active, Active
    );
    into_state!(
        /// The rotating credential, if a rotation is pending.
        into_rotating, Rotating
    );
    into_state!(
        /// The revoked credential, if it is revoked.
        into_revoked, Revoked
    );
}

impl<C: Credential> AnyState<C> {
    fn state(&self) -> LifecycleState {
        match self {
            Self::Draft(_) => LifecycleState::Draft,
            Self::Active(_) => LifecycleState::Active,
            Self::Rotating(_) => LifecycleState::Rotating,
            Self::Revoked(_) => LifecycleState::Revoked,
        }
    }

    fn id(&self) -> &str {
        match self {
            Self::Draft(managed) => managed.id(),
            Self::Active(managed) => managed.id(),
            Self::Rotating(managed) => managed.id(),
            Self::Revoked(managed) => managed.id(),
        }
    }
}
