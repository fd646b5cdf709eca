//! `cred rotate --auto` and `cred rotation list`: rotation at the system a credential opens.

use chrono::{DateTime, Utc};
use clap::ArgMatches;
use credential::audit::{AuditAction, AuditOutcome, AuditQuery};
use credential::rotation::{RotationOutcome, RotationPolicy, RotationReport};
use credential::{LifecycleState, ListFilter, VersionState};
use serde_json::json;

use crate::duration_arg;
use crate::exit::{Failure, Outcome, Status};
use crate::globals::Globals;

/// The kinds `cred` rotates at their target system.
const ROTATED_KINDS: &[&str] = &["database"];

/// `cred rotate ID --auto`: the four steps now, with the built-in PostgreSQL rotator.
pub(super) async fn auto(globals: &Globals, args: &ArgMatches) -> Outcome {
    let report = rotate_postgres(globals, args).await?;
    let steps: Vec<_> = report
        .steps
        .iter()
        .map(|step| {
            json!({
                "step": step.step.as_str(),
                "attempts": step.attempts,
                "error": step.error.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    let (summary, version) = match report.outcome {
        RotationOutcome::Rotated { version } => {
            (format!("rotated {}: version {version} served", report.id), Some(version))
        }
        RotationOutcome::RolledBack => {
            (format!("rolled back {}: the test failed, the current version stays", report.id), None)
        }
        RotationOutcome::Pending => {
            (format!("rotation of {} pending: a step failed; run again to resume", report.id), None)
        }
        RotationOutcome::Busy => {
            (format!("{} is being rotated by another manager", report.id), None)
        }
        _ => (format!("{}: nothing to do", report.id), None),
    };
    if globals.output.is_json() {
        globals.output.json(&json!({
            "id": report.id,
            "outcome": outcome_name(&report.outcome),
            "version": version,
            "steps": steps,
        }));
    } else {
        for step in &report.steps {
            let done = match &step.error {
                None => "done".to_owned(),
                Some(error) => format!("failed: {error}"),
            };
            globals.output.line(&format!(
                "  {:<8} {done} ({} attempt(s))",
                step.step.as_str(),
                step.attempts
            ));
        }
        globals.output.line(&summary);
    }
    match report.outcome {
        RotationOutcome::Rotated { .. } => Ok(()),
        RotationOutcome::Busy => Err(Failure::new(Status::Conflict, "rotation_busy", summary)),
        _ => Err(Failure::new(Status::Failed, "rotation_failed", summary)),
    }
}

fn outcome_name(outcome: &RotationOutcome) -> &'static str {
    match outcome {
        RotationOutcome::Rotated { .. } => "rotated",
        RotationOutcome::RolledBack => "rolled_back",
        RotationOutcome::Pending => "pending",
        RotationOutcome::Busy => "busy",
        _ => "not_due",
    }
}

#[cfg(feature = "postgres")]
async fn rotate_postgres(globals: &Globals, args: &ArgMatches) -> Outcome<RotationReport> {
    use credential::rotation::PostgresRotator;

    use super::id;

    let rotator = match args.get_one::<String>("strategy").map(String::as_str) {
        Some("alternating-users") => {
            let admin = args.get_one::<String>("admin").ok_or_else(|| {
                Failure::usage("--strategy alternating-users needs --admin ID: the credential of a role that may ALTER ROLE")
            })?;
            PostgresRotator::alternating_users(admin)
        }
        _ => PostgresRotator::single_user(),
    };
    let ring = globals.key_source()?.load().await?;
    let manager = globals.manager_built(ring, |builder| builder.rotator(rotator)).await?;
    Ok(manager.rotate_now(id(args)).await?)
}

#[cfg(not(feature = "postgres"))]
async fn rotate_postgres(_globals: &Globals, _args: &ArgMatches) -> Outcome<RotationReport> {
    Err(Failure::usage(
        "--auto rotates PostgreSQL passwords, and this cred was built without the `postgres` feature",
    ))
}

/// One credential's row in `cred rotation list`.
struct Row {
    id: String,
    state: LifecycleState,
    rotated_at: Option<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
    in_progress: Option<String>,
    last_failure: Option<(DateTime<Utc>, String)>,
}

/// `cred rotation list`: where each rotatable credential stands.
pub(super) async fn list(globals: &Globals, args: &ArgMatches) -> Outcome {
    let Some(("list", args)) = args.subcommand() else {
        return Err(Failure::usage("`cred rotation` takes `list`"));
    };
    let mut policy =
        RotationPolicy::new(args.get_one::<String>("pattern").map_or("*", String::as_str));
    let std = |delta: chrono::TimeDelta| {
        delta.to_std().map_err(|_| Failure::usage("a duration must be positive"))
    };
    if let Some(every) = args.get_one::<String>("every") {
        policy = policy.every(std(duration_arg::parse(every)?)?);
    }
    if let Some(window) = args.get_one::<String>("before-expiry") {
        policy = policy.before_expiry(std(duration_arg::parse(window)?)?);
    }
    let manager = globals.manager().await?;
    let now = Utc::now();
    let mut rows = Vec::new();
    for kind in ROTATED_KINDS {
        for meta in manager.list(&ListFilter::all().kind(*kind)).await? {
            if !policy.matches(&meta.id) || meta.state == LifecycleState::Revoked {
                continue;
            }
            let history = manager.history(&meta.id).await?;
            let rotated_at = history
                .iter()
                .rev()
                .find(|version| version.state == VersionState::Current)
                .map(|version| version.created_at);
            let next = rotated_at.and_then(|at| policy.next_rotation(at, meta.expires_at));
            let in_progress = match &meta.refresh.lease {
                Some(lease) if lease.until > now => {
                    Some(format!("leased until {}", time(lease.until)))
                }
                _ if meta.state == LifecycleState::Rotating => Some("pending".to_owned()),
                _ => None,
            };
            let last_failure = last_failure(&manager, &meta.id, rotated_at).await?;
            rows.push(Row {
                id: meta.id,
                state: meta.state,
                rotated_at,
                next,
                in_progress,
                last_failure,
            });
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    globals.output.items(
        &rows,
        &["ID", "STATE", "LAST ROTATED", "NEXT", "IN PROGRESS", "LAST FAILURE"],
        |row| {
            vec![
                row.id.clone(),
                row.state.to_string(),
                row.rotated_at.map_or_else(|| "-".to_owned(), time),
                row.next.map_or_else(|| "-".to_owned(), time),
                row.in_progress.clone().unwrap_or_else(|| "-".to_owned()),
                row.last_failure.as_ref().map_or_else(|| "-".to_owned(), |(at, what)| format!("{} {what}", time(*at))),
            ]
        },
        |row| {
            json!({
                "id": row.id,
                "state": row.state.as_str(),
                "last_rotated": row.rotated_at,
                "next": row.next,
                "in_progress": row.in_progress,
                "last_failure": row.last_failure.as_ref().map(|(at, what)| json!({"at": at, "what": what})),
            })
        },
    );
    Ok(())
}

/// The latest failed rotation step of `id` since its served version was made, from the trail.
async fn last_failure(
    manager: &credential::Manager,
    id: &str,
    since: Option<DateTime<Utc>>,
) -> Outcome<Option<(DateTime<Utc>, String)>> {
    let query = AuditQuery::all().credential(id).outcome(AuditOutcome::Failure);
    let events = manager.audit().query(&query).await?;
    Ok(events
        .into_iter()
        .filter(|event| {
            matches!(
                event.action,
                AuditAction::Rotate
                    | AuditAction::RotateSet
                    | AuditAction::RotateTest
                    | AuditAction::RotateRetire
            ) && since.is_none_or(|since| event.time >= since)
        })
        .max_by_key(|event| event.time)
        .map(|event| {
            let what = match (&event.error, &event.reason) {
                (Some(code), Some(reason)) => format!("{}: {code}: {reason}", event.action),
                (Some(code), None) => format!("{}: {code}", event.action),
                _ => event.action.to_string(),
            };
            (event.time, what)
        }))
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}
