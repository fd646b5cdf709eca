//! Rotation at the target system: the [`Rotator`] trait, policies, reports, and (feature
//! `postgres`) `PostgresRotator`, which rotates a PostgreSQL role's password.
//!
//! A rotation runs four steps, as AWS Secrets Manager does: **create** the next value (stored at
//! once as the Rotating version, while readers keep getting the current one), **set** it at the
//! target, **test** it there, and **finish** (commit, then optionally retire the old value). Every
//! step can run again after a crash; a failed test rolls back. One rotation per fleet: a lease on
//! the record, taken by compare-and-swap before anything changes. Run one with
//! [`Manager::rotate_now`](crate::Manager::rotate_now), or on a schedule with
//! [`RotationPolicy`] and [`ManagerBuilder::rotation_policy`](crate::ManagerBuilder::rotation_policy).

#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "postgres")]
pub use self::postgres::{PasswordStrategy, PostgresRotator};
pub use crate::manager::{
    RotationConfig, RotationContext, RotationError, RotationOutcome, RotationPolicy,
    RotationReport, RotationStep, Rotator, StepReport,
};
