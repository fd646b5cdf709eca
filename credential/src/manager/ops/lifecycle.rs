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

use crate::audit::AuditAction;
use crate::manager::Manager;
use crate::manager::core::{Change, versions};
use crate::manager::registry::Decoder;
use crate::store::Record;
use crate::{Credential, Error, LifecycleState, Result};

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

/// Created, not yet served. Can be activated or revoked.
#[derive(Debug)]
pub struct Draft {
    _private: (),
}

impl sealed::Sealed for Draft {}

impl State for Draft {
    type Data<C: Credential> = Arc<C>;
    const STATE: LifecycleState = LifecycleState::Draft;
}

/// Served. Can be rotated, restored to an older version, or revoked.
#[derive(Debug)]
pub struct Active {
    _private: (),
}

impl sealed::Sealed for Active {}

impl State for Active {
    type Data<C: Credential> = Arc<C>;
    const STATE: LifecycleState = LifecycleState::Active;
}

/// Served, with a pending version waiting for `commit` or `rollback`. Can also be revoked.
#[derive(Debug)]
pub struct Rotating {
    _private: (),
}

impl sealed::Sealed for Rotating {}

impl State for Rotating {
    /// The version being served and the pending one.
    type Data<C: Credential> = (Arc<C>, Arc<C>);
    const STATE: LifecycleState = LifecycleState::Rotating;
}

/// Revoked: secrets destroyed, metadata and audit trail kept. Terminal.
#[derive(Debug)]
pub struct Revoked {
    _private: (),
}

impl sealed::Sealed for Revoked {}

impl State for Revoked {
    type Data<C: Credential> = ();
    const STATE: LifecycleState = LifecycleState::Revoked;
}

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
        versions::current_number(&self.record)
    }

    /// The stored record: metadata and sealed versions. For tests that look under the manager.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The metadata of the stored record (no sealed payloads).
    pub fn meta(&self) -> &crate::store::RecordMeta {
        &self.record.meta
    }

    /// The stored record, for the manager's own bookkeeping (a lease).
    pub(crate) fn stored(&self) -> &Record {
        &self.record
    }

    /// The stored record, the handle given up.
    pub(crate) fn into_record(self) -> Record {
        self.record
    }

    /// Commits this handle's record as `change` makes it (with the version its event names)
    /// through the core's commit path, and hands on `data` with the record as written. The
    /// record is moved, not copied: a handle that fails to commit is gone anyway.
    async fn commit_as<N: State>(
        self,
        change: impl FnOnce(Record) -> (Record, Option<u64>),
        action: AuditAction,
        reason: Option<&str>,
        data: N::Data<C>,
    ) -> Result<Managed<C, N>> {
        let Self { manager, id, record, .. } = self;
        let change = Change::moving(&id, record, change, action, reason);
        let written = manager.core().commit(manager.actor(), change).await?;
        Ok(Managed::from_parts(manager, id, written, data))
    }

    fn seal(&self, version: u64, credential: &C) -> Result<Vec<u8>> {
        let core = self.manager.core();
        core.learn(credential);
        core.seal(&self.id, version, C::KIND, &credential.encode())
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
        self.manager.core().check_in_service(&self.id, C::KIND, self.data.expires_at())?;
        let data = Arc::clone(&self.data);
        self.commit_as(versions::activated, AuditAction::Activate, None, data).await
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
        let version = versions::next_number(&self.record);
        let sealed = self.seal(version, &new)?;
        let data = (Arc::clone(&self.data), Arc::new(new));
        let rotate = |record| (versions::rotated(record, version, sealed), Some(version));
        self.commit_as(rotate, AuditAction::Rotate, None, data).await
    }

    /// Restores `version`: its payload becomes a new current version, and the version served
    /// until now is deprecated.
    ///
    /// # Errors
    /// [`Error::VersionUnavailable`] when `version` is unknown, current, or its payload was
    /// destroyed; otherwise as [`activate`](Managed::activate).
    pub async fn rollback_to(self, version: u64) -> Result<Managed<C, Active>> {
        let core = self.manager.core();
        let (record, number, restored) =
            core.restored(&self.id, &self.record, version, |payload| {
                let restored = Decoder::of::<C>().decode(payload)?.typed::<C>()?;
                restored.validate()?;
                let expires_at = restored.expires_at();
                core.check_in_service(&self.id, C::KIND, expires_at)?;
                Ok((restored, expires_at))
            })?;
        let restore = |_| (record, Some(number));
        self.commit_as(restore, AuditAction::RollbackTo, None, restored).await
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
        let (rules, expires_at) = (self.manager.core().rules(), self.data.1.expires_at());
        self.manager.core().check_in_service(&self.id, C::KIND, expires_at)?;
        let data = Arc::clone(&self.data.1);
        let commit = |record| versions::committed(record, expires_at, rules);
        self.commit_as(commit, AuditAction::Commit, None, data).await
    }

    /// Discards the pending version; the current one stays.
    ///
    /// # Errors
    /// As [`activate`](Managed::activate).
    pub async fn rollback(self) -> Result<Managed<C, Active>> {
        let data = Arc::clone(&self.data.0);
        self.commit_as(versions::rolled_back, AuditAction::Rollback, None, data).await
    }
}

impl<C: Credential, S: Live> Managed<C, S> {
    /// Revokes the credential for `reason` (recorded in the audit trail, cut to
    /// [`MAX_AUDIT_REASON_LEN`](crate::audit::MAX_AUDIT_REASON_LEN) bytes): every version's sealed
    /// payload is destroyed; metadata, history and audit trail remain. Terminal.
    ///
    /// # Errors
    /// As [`activate`](Managed::activate).
    pub async fn revoke(self, reason: &str) -> Result<Managed<C, Revoked>> {
        let version = versions::current_number(&self.record);
        let revoke = |record| (versions::revoked(record), Some(version));
        self.commit_as(revoke, AuditAction::Revoke, Some(reason), ()).await
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
