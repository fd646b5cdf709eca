//! `cred doctor`: is everything in order, and if not, what to do about it. Each check prints
//! `ok`, `warn` or `FAIL` with a one-line fix; any failure ends the command with exit code 1.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::TimeDelta;
use clap::ArgMatches;
use credential::audit::{AuditQuery, RestoreCheck};
use credential::hazmat::{self, SealContext};
use credential::store::RecordMeta;
use credential::{Error, KeyRing, LifecycleState, ListFilter, Utc};
use serde_json::{Value, json};

use crate::exit::{Failure, Outcome, Status};
use crate::globals::Globals;
use crate::output::time;
use crate::progress::Progress;
use crate::store_location::{OpenedStore, StoreLocation};

/// How soon an expiry is worth a warning.
const EXPIRY_WARNING: TimeDelta = TimeDelta::days(7);
/// How old a draft may get before it is worth a warning.
const OLD_DRAFT: TimeDelta = TimeDelta::days(7);
/// How long a rotation may stay open before it is worth a warning.
const LONG_ROTATION: TimeDelta = TimeDelta::days(1);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

struct Check {
    name: &'static str,
    level: Level,
    detail: String,
    fix: Option<String>,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn ok(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { name, level: Level::Ok, detail: detail.into(), fix: None });
    }

    fn warn(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        let fix = Some(fix.into());
        self.checks.push(Check { name, level: Level::Warn, detail: detail.into(), fix });
    }

    fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        let fix = Some(fix.into());
        self.checks.push(Check { name, level: Level::Fail, detail: detail.into(), fix });
    }

    fn print(&self, globals: &Globals) {
        let output = globals.output;
        if output.is_json() {
            let checks: Vec<Value> = self
                .checks
                .iter()
                .map(|check| {
                    json!({
                        "check": check.name,
                        "status": check.level.as_str(),
                        "detail": check.detail,
                        "fix": check.fix,
                    })
                })
                .collect();
            output.json(&json!({ "ok": !self.failed(), "checks": checks }));
            return;
        }
        for check in &self.checks {
            let level = match check.level {
                Level::Fail => "FAIL".to_owned(),
                level => format!("{:<4}", level.as_str()),
            };
            output.line(&format!("{level}  {}: {}", check.name, check.detail));
            if let Some(fix) = &check.fix {
                output.line(&format!("      fix: {fix}"));
            }
        }
    }

    fn failed(&self) -> bool {
        self.checks.iter().any(|check| check.level == Level::Fail)
    }
}

pub(super) async fn run(globals: &Globals, args: &ArgMatches) -> Outcome {
    let mut report = Report::default();
    diagnose(globals, args.get_flag("deep"), &mut report).await?;
    report.print(globals);
    if report.failed() {
        return Err(Failure::new(Status::Failed, "doctor", "doctor found problems (see above)"));
    }
    Ok(())
}

async fn diagnose(globals: &Globals, deep: bool, report: &mut Report) -> Outcome {
    let location = globals.location()?;
    let Some(ring) = check_key(globals, report).await? else { return Ok(()) };
    let Some(opened) = check_store(globals, location, report).await else { return Ok(()) };
    check_keys_in_use(globals, &opened, &ring, report).await;
    check_seal(&ring, report);
    check_audit(&opened, report).await;
    let metas =
        match opened.store.list(&ListFilter::all().environment(globals.environment.as_str())).await
        {
            Ok(metas) => metas,
            Err(error) => {
                report.fail(
                    "records",
                    format!("cannot list: {}", Failure::from(error)),
                    "check that the store is reachable",
                );
                return Ok(());
            }
        };
    check_hygiene(globals, &metas, report);
    check_tags(globals, &metas, report);
    check_restores(globals, &opened, &metas, report).await;
    if deep {
        check_every_record(&opened, &ring, &metas, report).await;
    }
    Ok(())
}

async fn check_key(globals: &Globals, report: &mut Report) -> Outcome<Option<KeyRing>> {
    let source = match globals.key_source() {
        Ok(source) => source,
        Err(failure) => {
            report.fail(
                "key",
                failure.message,
                "give --key-file PATH or --key-env VAR, or run `cred init`",
            );
            return Ok(None);
        }
    };
    match source.load().await {
        Ok(ring) => {
            report
                .ok("key", format!("master key {} from {}", ring.current_id(), source.describe()));
            Ok(Some(ring))
        }
        Err(failure) => {
            let fix = match failure.code {
                "insecure_permissions" => "chmod 600 the key file (only its owner may read it)",
                "invalid_master_key" => "the key must be 32 bytes as 64 hex characters or base64",
                _ => "check the key source",
            };
            report.fail("key", failure.message, fix);
            Ok(None)
        }
    }
}

async fn check_store(
    globals: &Globals,
    location: &StoreLocation,
    report: &mut Report,
) -> Option<OpenedStore> {
    match globals.open_store().await {
        Ok(opened) => {
            report.ok("store", format!("{} reachable, schema current", location.describe()));
            if let StoreLocation::Sqlite(path) = location {
                check_private(path, "store file", report);
            }
            Some(opened)
        }
        Err(failure) => {
            let fix = match failure.code {
                "insecure_permissions" => "chmod go-rwx on the store directory",
                "unsupported_schema" => "upgrade `cred`: a newer version wrote this store",
                "no_store" => "check --store; `cred init` creates a new store",
                "corrupt_store" => {
                    "restore the store from a backup (`cred import`); never `cred init` over it"
                }
                _ => "check --store and that the store is reachable (`cred init` creates it)",
            };
            report.fail("store", failure.message, fix);
            None
        }
    }
}

/// Warns when `path` is open to group or others.
fn check_private(path: &Path, what: &'static str, report: &mut Report) {
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            report.warn(
                what,
                format!("{} has mode {mode:03o}", path.display()),
                format!("chmod 600 {}", path.display()),
            );
        }
    }
}

async fn check_keys_in_use(
    globals: &Globals,
    opened: &OpenedStore,
    ring: &KeyRing,
    report: &mut Report,
) {
    let environment = globals.environment.as_str();
    let in_use = match opened.store.key_ids_in_use(environment).await {
        Ok(Some(keys)) => Ok(keys),
        Ok(None) => {
            opened.store.list(&ListFilter::all().environment(environment)).await.map(|metas| {
                metas
                    .into_iter()
                    .filter(|meta| meta.state != LifecycleState::Revoked)
                    .map(|meta| meta.key_id)
                    .collect::<BTreeSet<_>>()
            })
        }
        Err(error) => Err(error),
    };
    match in_use {
        Ok(keys) => {
            let held: BTreeSet<String> = ring.ids().map(ToString::to_string).collect();
            let missing: Vec<&str> =
                keys.iter().filter(|key| !held.contains(*key)).map(String::as_str).collect();
            let missing = missing.join(", ");
            if missing.is_empty() {
                report.ok(
                    "master key",
                    format!("opens every credential ({} key(s) in use)", keys.len()),
                );
            } else {
                report.fail(
                    "master key",
                    format!("credentials are sealed under key(s) the ring lacks: {missing}"),
                    "use the key file those credentials were sealed with; after a `cred rekey`, \
                     the new key",
                );
            }
        }
        Err(error) => report.fail(
            "master key",
            Failure::from(error).message,
            "check that the store is reachable",
        ),
    }
}

fn check_seal(ring: &KeyRing, report: &mut Report) {
    let context = SealContext::new("doctor/self-test", 1, "self_test");
    let sample = b"self-test";
    let round_trip = hazmat::seal(ring, &context, sample)
        .and_then(|sealed| hazmat::open(ring, &context, &sealed));
    match round_trip {
        Ok(opened) if opened.as_slice() == sample => {
            report.ok("crypto", "seal/open self-test passed")
        }
        _ => report.fail(
            "crypto",
            "seal/open self-test failed",
            "check the OS random source; reinstall `cred`",
        ),
    }
}

async fn check_audit(opened: &OpenedStore, report: &mut Report) {
    let Some(trail) = &opened.trail else {
        report.ok("audit", "recorded in the store's audit table (not hash-chained)");
        return;
    };
    match trail.verify_against_store(opened.store.as_ref()).await {
        Ok(chain) if chain.other_trails > 0 && chain.anchored_line.is_none() => report.warn(
            "audit",
            format!(
                "{} verifies ({} line(s)), but no record names it: the store's records name \
                 {} other trail(s)",
                trail.path().display(),
                chain.lines,
                chain.other_trails
            ),
            "if this trail replaced one, keep the old one; if it was emptied, investigate",
        ),
        Ok(chain) => report
            .ok("audit", format!("{} verifies ({} line(s))", trail.path().display(), chain.lines)),
        Err(error @ Error::AuditTampered { .. }) => report.fail(
            "audit",
            Failure::from(error).message,
            "keep the trail as evidence and investigate; start a new one with --audit-file",
        ),
        Err(error) => report.fail(
            "audit",
            Failure::from(error).message,
            "check the audit file's path and permissions",
        ),
    }
    check_private(trail.path(), "audit file", report);
}

fn check_hygiene(globals: &Globals, metas: &[RecordMeta], report: &mut Report) {
    let now = Utc::now();
    let prefix = format!("{}/", globals.environment);
    let name = |meta: &RecordMeta| meta.id.strip_prefix(&prefix).unwrap_or(&meta.id).to_owned();
    let mut warned = false;
    for meta in metas {
        let id = name(meta);
        if meta.state == LifecycleState::Revoked {
            continue;
        }
        if meta.refresh.reauth_required {
            warned = true;
            report.warn(
                "hygiene",
                format!("{id} needs reauthentication: its provider refused the refresh"),
                format!("cred rotate {id} with a new grant"),
            );
        }
        if let Some(expires) = meta.expires_at {
            if expires <= now {
                warned = true;
                report.warn(
                    "hygiene",
                    format!("{id} expired at {}", time(Some(expires))),
                    format!("cred rotate {id} --commit"),
                );
            } else if expires - now <= EXPIRY_WARNING {
                warned = true;
                report.warn(
                    "hygiene",
                    format!("{id} expires at {}", time(Some(expires))),
                    format!("cred rotate {id} --commit before then"),
                );
            }
        }
        if meta.state == LifecycleState::Draft && now - meta.created_at > OLD_DRAFT {
            warned = true;
            report.warn(
                "hygiene",
                format!("{id} has been a draft since {}", time(Some(meta.created_at))),
                format!("cred activate {id}, or revoke it"),
            );
        }
        if meta.state == LifecycleState::Rotating && now - meta.updated_at > LONG_ROTATION {
            warned = true;
            report.warn(
                "hygiene",
                format!("{id} has been rotating since {}", time(Some(meta.updated_at))),
                format!("cred commit {id} or cred rollback {id}"),
            );
        }
    }
    if !warned {
        report.ok(
            "hygiene",
            format!(
                "{} credential(s): none expiring, stale or needing reauthentication",
                metas.len()
            ),
        );
    }
}

/// Names the records written before records were tagged: a manager serves them, but cannot
/// tell whether someone without the master key changed what they say until they are tagged.
fn check_tags(globals: &Globals, metas: &[RecordMeta], report: &mut Report) {
    let prefix = format!("{}/", globals.environment);
    let untagged: Vec<&str> = metas
        .iter()
        .filter(|meta| meta.tag.is_empty())
        .map(|meta| meta.id.strip_prefix(&prefix).unwrap_or(&meta.id))
        .collect();
    if untagged.is_empty() {
        report.ok("tags", format!("{} credential(s), every one tagged", metas.len()));
        return;
    }
    let named = untagged.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    report.warn(
        "tags",
        format!("{} credential(s) written before records were tagged: {named}", untagged.len()),
        "cred rekey (it tags them)",
    );
}

/// Names the records behind the last change the audit trail records of them, and the revoked
/// credentials readable again: put back from an older copy.
async fn check_restores(
    globals: &Globals,
    opened: &OpenedStore,
    metas: &[RecordMeta],
    report: &mut Report,
) {
    let events = match opened.audit.query(&AuditQuery::all()).await {
        Ok(events) => events,
        Err(error) => {
            let detail = format!("cannot read the audit trail: {}", Failure::from(error));
            report.fail("restores", detail, "check the audit trail");
            return;
        }
    };
    let check = RestoreCheck::of(&events, &globals.environment, metas);
    let named = |ids: &[String]| ids.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if !check.revoked_readable.is_empty() {
        report.fail(
            "restores",
            format!(
                "{} revoked credential(s) readable again (put back from before the revoke): {}",
                check.revoked_readable.len(),
                named(&check.revoked_readable)
            ),
            "revoke them again, then rekey and destroy the old master key so older copies stay unreadable",
        );
    }
    if !check.behind.is_empty() {
        report.fail(
            "restores",
            format!(
                "{} credential(s) behind the audit trail (put back from an older copy): {}",
                check.behind.len(),
                named(&check.behind)
            ),
            "rotate them (the copy may hold a secret rotated out), or revoke them",
        );
    }
    if check.is_clean() {
        report.ok(
            "restores",
            format!("{} credential(s) as the audit trail last recorded them", check.credentials),
        );
    }
}

async fn check_every_record(
    opened: &OpenedStore,
    ring: &KeyRing,
    metas: &[RecordMeta],
    report: &mut Report,
) {
    let mut progress = Progress::new("doctor --deep");
    let mut opened_versions = 0;
    let mut broken = Vec::new();
    for (done, meta) in metas.iter().enumerate() {
        match opened.store.get(&meta.id).await {
            Ok(Some(record)) => {
                if matches!(hazmat::verify_tag(ring, &record), Ok(Some(false)) | Err(_)) {
                    broken.push(format!("{} (its tag does not match)", meta.id));
                    continue;
                }
                for version in record.versions.iter().filter(|version| !version.sealed.is_empty()) {
                    let context = SealContext::new(&meta.id, version.version, &meta.kind);
                    match hazmat::open(ring, &context, &version.sealed) {
                        Ok(_) => opened_versions += 1,
                        Err(_) => broken.push(format!("{} v{}", meta.id, version.version)),
                    }
                }
            }
            Ok(None) => {}
            Err(_) => broken.push(meta.id.clone()),
        }
        progress.show(done + 1, metas.len(), "");
    }
    if broken.is_empty() {
        report.ok(
            "deep",
            format!("{opened_versions} sealed version(s) of {} credential(s) open", metas.len()),
        );
    } else {
        report.fail(
            "deep",
            format!(
                "{} record(s) or sealed version(s) are damaged: {}",
                broken.len(),
                broken.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
            "restore them from a backup (`cred import`) or revoke them",
        );
    }
}
