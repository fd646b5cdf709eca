//! Rotation at the target system: a [`Rotator`] registered per kind rotates a credential where it
//! is used, in four steps as AWS Secrets Manager does.
//!
//! A rotation, in order: take the **lease** on the record by compare-and-swap (one rotation per
//! fleet; a live lease of another manager means someone else is rotating) → **create** the next
//! value and store it at once as the Rotating version (audited `rotate`; readers keep getting the
//! current value) → **set** it at the target system (audited `rotate_set`) → **test** the target
//! with it (audited `rotate_test`) → **finish**: commit it (audited `commit`, which also clears the
//! lease), then let the rotator retire the old value (audited `rotate_retire`).
//!
//! Every step can run again: a run that finds the credential Rotating (a crash, a set that kept
//! failing) resumes at **set**, which the rotator makes idempotent. A failed **test** rolls back:
//! the rotator sets the current value back at the target and the pending version is discarded
//! (audited `rollback`), so the current value stays valid. Steps that fail for a reason that may
//! pass are retried with backoff within [`RotationConfig::deadline`]; a set that still fails
//! leaves the rotation pending for the next run.

mod schedule;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use self::schedule::RotationPolicy;
pub(crate) use self::schedule::Schedule;
use super::core::Core;
use super::{Manager, versions};
use crate::audit::AuditAction;
use crate::store::{LifecycleState, Record, RefreshLease, VersionState};
use crate::{Credential, Error, Result, telemetry};

/// Rotates credentials of one kind at the system they open, in four steps (see the
/// [`rotation` module docs](crate::rotation)). Register one per kind with
/// [`ManagerBuilder::rotator`](crate::ManagerBuilder::rotator); run it with
/// [`Manager::rotate_now`] or on a schedule ([`RotationPolicy`]).
///
/// Each step may run more than once (after a crash, or a retry): make `set` and `retire`
/// idempotent.
#[async_trait]
pub trait Rotator: Send + Sync + 'static {
    /// The kind it rotates.
    type Credential: Credential;

    /// The next value, made from `current` (a new password from the OS random source, say). It
    /// is stored as the Rotating version before anything changes at the target.
    ///
    /// # Errors
    /// [`RotationError::Unavailable`] when trying again may help, [`RotationError::Failed`]
    /// when it will not.
    async fn create(
        &self,
        current: &Self::Credential,
        context: &RotationContext,
    ) -> Result<Self::Credential, RotationError>;

    /// Makes `next` valid at the target system, where `current` is the value in service. Also
    /// called with the two swapped to roll a failed rotation back.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    async fn set(
        &self,
        current: &Self::Credential,
        next: &Self::Credential,
        context: &RotationContext,
    ) -> Result<(), RotationError>;

    /// Opens the target system with `next`.
    ///
    /// # Errors
    /// As [`create`](Self::create); a failure rolls the rotation back.
    async fn test(
        &self,
        next: &Self::Credential,
        context: &RotationContext,
    ) -> Result<(), RotationError>;

    /// After the commit: retires `previous` at the target system, if the strategy wants it.
    /// By default it does nothing.
    ///
    /// # Errors
    /// As [`create`](Self::create); a failure is reported, and the rotation stands.
    async fn retire(
        &self,
        previous: &Self::Credential,
        current: &Self::Credential,
        context: &RotationContext,
    ) -> Result<(), RotationError> {
        let _ = (previous, current, context);
        Ok(())
    }
}

/// Why a rotation step failed. Never holds a credential value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// The target could not be reached or is busy: trying again later may help.
    #[error("{reason}")]
    Unavailable {
        /// What happened.
        reason: String,
    },
    /// The step cannot succeed without a change (refused privileges, a value the target
    /// rejects, a missing setting).
    #[error("{reason}")]
    Failed {
        /// What happened.
        reason: String,
    },
}

impl RotationError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

impl From<Error> for RotationError {
    /// A failure of the manager itself (reading what a step needs, a commit).
    fn from(error: Error) -> Self {
        let reason = error.to_string();
        if error.is_transient() { Self::Unavailable { reason } } else { Self::Failed { reason } }
    }
}

/// What a rotator's steps may ask of the manager.
pub struct RotationContext {
    manager: Manager,
    id: String,
    deadline: Instant,
}

impl std::fmt::Debug for RotationContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationContext").field("id", &self.id).finish_non_exhaustive()
    }
}

impl RotationContext {
    /// The id of the credential being rotated.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the step should give up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Credential `id` of the manager as a `C` (an administrator's credential for the target,
    /// say), read as the manager's operator: checked and audited like any read.
    ///
    /// # Errors
    /// As [`Context::get`](crate::Context::get).
    pub async fn credential<C: Credential>(&self, id: &str) -> Result<Arc<C>> {
        self.manager.context(self.manager.actor().clone()).get::<C>(id).await
    }
}

/// How rotations run.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RotationConfig {
    /// How long one rotation may take, retries included. Default: 60 seconds.
    pub deadline: Duration,
    /// How long the lease on a record lasts, on the store's clock: a manager that crashed while
    /// rotating holds the others back this long. Longer than `deadline`. Default: 90 seconds.
    pub lease: Duration,
    /// How often the schedule looks for due rotations. Default: 60 seconds.
    pub tick: Duration,
    /// How long the schedule waits after a failed rotation before it tries that credential
    /// again, doubling up to an hour. Default: 30 seconds.
    pub retry_after: Duration,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(60),
            lease: Duration::from_secs(90),
            tick: Duration::from_secs(60),
            retry_after: Duration::from_secs(30),
        }
    }
}

impl RotationConfig {
    /// With each rotation given `deadline` and the lease `lease` (which must be longer).
    pub fn deadline(mut self, deadline: Duration, lease: Duration) -> Self {
        self.deadline = deadline;
        self.lease = lease;
        self
    }

    /// With the schedule looking for due rotations every `tick`.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// With the schedule waiting `retry_after` (doubling) after a failure.
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }
}

/// One step of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationStep {
    /// The next value was made and stored as the Rotating version.
    Create,
    /// The next value was made valid at the target.
    Set,
    /// The target was opened with the next value.
    Test,
    /// The next value was committed.
    Finish,
    /// The old value was retired at the target.
    Retire,
    /// A failed test was undone: the current value set back at the target, the pending version
    /// discarded.
    Rollback,
}

impl RotationStep {
    /// The step's name, as spans and metrics show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Set => "set",
            Self::Test => "test",
            Self::Finish => "finish",
            Self::Retire => "retire",
            Self::Rollback => "rollback",
        }
    }

    /// The audit action of the step.
    fn action(self) -> AuditAction {
        match self {
            Self::Create => AuditAction::Rotate,
            Self::Set => AuditAction::RotateSet,
            Self::Test => AuditAction::RotateTest,
            Self::Finish => AuditAction::Commit,
            Self::Retire => AuditAction::RotateRetire,
            Self::Rollback => AuditAction::Rollback,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepReport {
    /// Which step.
    pub step: RotationStep,
    /// How many times it ran.
    pub attempts: u32,
    /// `None` when it succeeded; otherwise why it failed (never a value).
    pub error: Option<RotationError>,
}

/// How a rotation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationOutcome {
    /// The next value is committed and served, as `version`.
    Rotated {
        /// The version now served.
        version: u64,
    },
    /// The test failed: the current value stays, valid at the target.
    RolledBack,
    /// A step kept failing: the rotation stays pending (Rotating), the current value served,
    /// and the next run resumes it at `set`.
    Pending,
    /// Another manager holds the lease: it is rotating the credential now.
    Busy,
    /// Nothing to do: the schedule found the credential rotated already.
    NotDue,
}

/// What a rotation did, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// The credential.
    pub id: String,
    /// The steps run, in order.
    pub steps: Vec<StepReport>,
    /// How it ended.
    pub outcome: RotationOutcome,
}

/// A rotator without its type.
#[async_trait]
trait AnyRotator: Send + Sync {
    async fn rotate(&self, run: Run<'_>) -> Result<RotationReport>;
}

struct Typed<R>(R);

/// The rotators by kind, how they run, and the credentials this manager is rotating now (the
/// lease keeps other managers out; this keeps a second rotation of this one out).
#[derive(Default)]
pub(crate) struct Rotators {
    by_kind: HashMap<&'static str, Arc<dyn AnyRotator>>,
    pub(crate) config: RotationConfig,
    running: Mutex<HashSet<String>>,
}

/// A credential marked as being rotated by this manager, unmarked when dropped (also when the
/// rotation's task is cancelled).
struct Running<'a> {
    rotators: &'a Rotators,
    id: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.rotators.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

impl Rotators {
    pub(crate) fn register<R: Rotator>(&mut self, rotator: R) {
        self.by_kind.insert(R::Credential::KIND, Arc::new(Typed(rotator)));
    }

    fn of(&self, kind: &str) -> Option<Arc<dyn AnyRotator>> {
        self.by_kind.get(kind).cloned()
    }

    /// Marks `id` as being rotated by this manager, unless it already is.
    fn start(&self, id: &str) -> Option<Running<'_>> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.insert(id.to_owned()).then(|| Running { rotators: self, id: id.to_owned() })
    }

    /// Whether a rotator is registered for `kind`.
    pub(crate) fn rotates(&self, kind: &str) -> bool {
        self.by_kind.contains_key(kind)
    }
}

/// Whether a record is still due for rotation at a time: the schedule's question, asked again on
/// the very revision the lease is taken on.
type StillDue<'a> = &'a (dyn Fn(&Record, DateTime<Utc>) -> bool + Send + Sync);

/// One rotation about to run.
struct Run<'a> {
    manager: &'a Manager,
    id: &'a str,
    still_due: Option<StillDue<'a>>,
}

impl Manager {
    /// Rotates credential `id` now with the rotator registered for its kind, all four steps,
    /// resuming a rotation left pending; returns what each step did.
    ///
    /// # Errors
    /// [`Error::Config`] when no rotator is registered for its kind, [`Error::NotFound`],
    /// [`Error::Revoked`], [`Error::WrongState`] for a draft, [`Error::AccessDenied`], or a store
    /// or audit error. A step that fails is reported in the [`RotationReport`], not as an error.
    pub async fn rotate_now(&self, id: &str) -> Result<RotationReport> {
        self.rotate_if(id, None).await
    }

    /// Rotates `id` with its kind's rotator, if `still_due` (when given) holds on the record
    /// the lease is taken on.
    async fn rotate_if(&self, id: &str, still_due: Option<StillDue<'_>>) -> Result<RotationReport> {
        let kind = self.core.fetch(id).await?.meta.kind;
        let rotator = self
            .core
            .rotators()
            .of(&kind)
            .ok_or(Error::Config { reason: "no rotator is registered for this kind" })?;
        rotator.rotate(Run { manager: self, id, still_due }).await
    }
}

#[async_trait]
impl<R: Rotator> AnyRotator for Typed<R> {
    async fn rotate(&self, run: Run<'_>) -> Result<RotationReport> {
        let Run { manager, id, still_due } = run;
        let core = manager.core();
        let config = core.rotators().config;
        let mut report = Report::new(id);
        let Some(_running) = core.rotators().start(id) else {
            return Ok(report.ended(RotationOutcome::Busy));
        };
        match take_lease(core, id, config.lease, still_due).await? {
            Lease::Taken => {}
            Lease::Busy => return Ok(report.ended(RotationOutcome::Busy)),
            Lease::NotDue => return Ok(report.ended(RotationOutcome::NotDue)),
        }
        let context = RotationContext {
            manager: manager.clone(),
            id: id.to_owned(),
            deadline: Instant::now() + config.deadline,
        };
        let loaded = manager.load::<R::Credential>(id).await?;
        let rotating = if loaded.state() == LifecycleState::Rotating {
            loaded.into_rotating()?
        } else {
            let active = loaded.into_active()?;
            let (attempts, next) =
                retrying(&context, || self.0.create(active.credential(), &context)).await;
            let next = match next {
                Ok(next) => next,
                Err(error) => {
                    report.step(RotationStep::Create, attempts, Some(error));
                    release(core, active.into_record()).await;
                    return Ok(report.ended(RotationOutcome::Pending));
                }
            };
            let rotating = active.rotate(next).await?;
            report.step(RotationStep::Create, attempts, None);
            rotating
        };
        let (current, next) = (Arc::clone(rotating.credential()), Arc::clone(rotating.pending()));
        let pending = versions::latest_in(rotating.stored(), VersionState::Pending)
            .map(|version| version.version);

        let (attempts, set) = retrying(&context, || self.0.set(&current, &next, &context)).await;
        audit_step(core, id, RotationStep::Set, pending, set.as_ref().err()).await?;
        report.step(RotationStep::Set, attempts, set.err());
        if report.failed() {
            release(core, rotating.into_record()).await;
            return Ok(report.ended(RotationOutcome::Pending));
        }

        let (attempts, tested) = retrying(&context, || self.0.test(&next, &context)).await;
        audit_step(core, id, RotationStep::Test, pending, tested.as_ref().err()).await?;
        report.step(RotationStep::Test, attempts, tested.err());
        if report.failed() {
            // Back to the current value at the target, then the pending version discarded.
            let (attempts, restored) =
                retrying(&context, || self.0.set(&next, &current, &context)).await;
            if let Err(error) = restored {
                report.step(RotationStep::Rollback, attempts, Some(error));
                release(core, rotating.into_record()).await;
                return Ok(report.ended(RotationOutcome::Pending));
            }
            let active = rotating.rollback().await?;
            report.step(RotationStep::Rollback, attempts, None);
            release(core, active.into_record()).await;
            return Ok(report.ended(RotationOutcome::RolledBack));
        }

        // The commit clears the lease.
        let active = rotating.commit().await?;
        report.step(RotationStep::Finish, 1, None);
        let (attempts, retired) =
            retrying(&context, || self.0.retire(&current, &next, &context)).await;
        audit_step(core, id, RotationStep::Retire, Some(active.version()), retired.as_ref().err())
            .await?;
        report.step(RotationStep::Retire, attempts, retired.err());
        Ok(report.ended(RotationOutcome::Rotated { version: active.version() }))
    }
}

/// A report being written, step by step.
struct Report(RotationReport);

impl Report {
    fn new(id: &str) -> Self {
        Self(RotationReport {
            id: id.to_owned(),
            steps: Vec::new(),
            outcome: RotationOutcome::Pending,
        })
    }

    /// Records that `step` ran `attempts` times and ended with `error` (none: success).
    fn step(&mut self, step: RotationStep, attempts: u32, error: Option<RotationError>) {
        telemetry::rotation_step(
            &self.0.id,
            step.as_str(),
            error.as_ref().map(|error| error.to_string()),
        );
        self.0.steps.push(StepReport { step, attempts, error });
    }

    /// Whether the last step failed.
    fn failed(&self) -> bool {
        self.0.steps.last().is_some_and(|step| step.error.is_some())
    }

    fn ended(mut self, outcome: RotationOutcome) -> RotationReport {
        self.0.outcome = outcome;
        self.0
    }
}

/// What taking the lease found.
enum Lease {
    Taken,
    Busy,
    NotDue,
}

/// How many times a lease is tried when other writes keep winning the swap.
const LEASE_ATTEMPTS: usize = 5;

/// Takes this manager's lease on `id` for `duration` on the store's clock, by compare-and-swap
/// on the revision `still_due` (if given) was checked on: a rotation another manager finished in
/// between changed the revision, and the check runs again on it.
async fn take_lease(
    core: &Core,
    id: &str,
    duration: Duration,
    still_due: Option<StillDue<'_>>,
) -> Result<Lease> {
    let duration = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
    for _ in 0..LEASE_ATTEMPTS {
        let record = core.fetch(id).await?;
        match record.meta.state {
            LifecycleState::Revoked => return Err(Error::Revoked { id: id.to_owned() }),
            LifecycleState::Draft => {
                return Err(Error::WrongState {
                    id: id.to_owned(),
                    expected: LifecycleState::Active,
                    found: LifecycleState::Draft,
                });
            }
            _ => {}
        }
        let store_now = core.store_now().await?;
        let held_by_another =
            record.meta.refresh.lease.as_ref().is_some_and(|lease| {
                lease.holder != core.lease_holder() && store_now < lease.until
            });
        if held_by_another {
            return Ok(Lease::Busy);
        }
        if still_due.is_some_and(|still_due| !still_due(&record, Utc::now())) {
            return Ok(Lease::NotDue);
        }
        let lease =
            RefreshLease { holder: core.lease_holder().to_owned(), until: store_now + duration };
        match core.set_lease(record, Some(lease)).await {
            Ok(_) => return Ok(Lease::Taken),
            Err(Error::Conflict { .. }) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(Error::Conflict { id: id.to_owned() })
}

/// Gives the lease back, so that the next run need not wait for it to lapse. Best effort: a
/// lease left behind lapses on its own.
async fn release(core: &Core, record: Record) {
    let _ = core.set_lease(record, None).await;
}

/// Runs `attempt` until it succeeds, fails for good, or the context's deadline is near; with the
/// number of attempts.
async fn retrying<T, F, Fut>(
    context: &RotationContext,
    mut attempt: F,
) -> (u32, Result<T, RotationError>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RotationError>>,
{
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt().await {
            Err(error) if error.is_transient() && Instant::now() + backoff < context.deadline => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            outcome => return (attempts, outcome),
        }
    }
}

/// Audits a step taken at the target system (no record changes), durably.
async fn audit_step(
    core: &Core,
    id: &str,
    step: RotationStep,
    version: Option<u64>,
    error: Option<&RotationError>,
) -> Result<()> {
    let failure = error.map(|error| match error {
        RotationError::Unavailable { .. } => ("rotation_unavailable", error.to_string()),
        RotationError::Failed { .. } => ("rotation_failed", error.to_string()),
    });
    core.audit_outside(
        id,
        step.action(),
        version,
        failure.as_ref().map(|(code, reason)| (*code, reason.as_str())),
    )
    .await
}
