//! `cred audit query|summary|verify`: the trail, read and checked.

use clap::ArgMatches;
use credential::Utc;
use credential::audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery, AuditSummary};
use serde_json::json;

use crate::duration_arg;
use crate::exit::{Failure, Outcome, Status};
use crate::globals::Globals;
use crate::output::time;
use crate::store_location::OpenedStore;

pub(super) async fn run(globals: &Globals, args: &ArgMatches) -> Outcome {
    let Some((name, args)) = args.subcommand() else {
        return Err(Failure::usage("give query, summary or verify"));
    };
    let opened = globals.open_store().await?;
    let output = globals.output;
    match name {
        "verify" => {
            let Some(trail) = &opened.trail else {
                return Err(Failure::new(
                    Status::Failed,
                    "unsupported",
                    "this store's audit table has no hash chain; only a JSONL trail \
                     (--audit-file) can be verified",
                ));
            };
            let report = trail.verify_against_store(opened.store.as_ref()).await?;
            let mut human = format!(
                "audit trail {} verifies: {} line(s), last hash {}",
                trail.path().display(),
                report.lines,
                report.last_hash
            );
            if let Some(line) = report.anchored_line {
                human.push_str(&format!("; reaches line {line}, the last the store names"));
            }
            if report.other_trails > 0 {
                human.push_str(&format!(
                    "; the store also names {} other trail(s) (managers auditing elsewhere, or \
                     this trail before it was replaced)",
                    report.other_trails
                ));
            }
            output.either(
                &human,
                &json!({
                    "lines": report.lines,
                    "last_hash": report.last_hash,
                    "anchored_line": report.anchored_line,
                    "other_trails": report.other_trails,
                }),
            );
        }
        "summary" => {
            let events = events(globals, &opened, args).await?;
            let summary = AuditSummary::of(&events);
            if output.is_json() {
                output.json(&json!({
                    "by_credential": summary.by_credential,
                    "by_principal": summary.by_principal,
                    "failures": summary.failures,
                    "last_access": summary.last_access,
                }));
            } else {
                let rows: Vec<Vec<String>> = summary
                    .by_credential
                    .iter()
                    .map(|(id, count)| {
                        let last = summary.last_access.get(id).copied();
                        vec![id.to_string(), count.to_string(), time(last)]
                    })
                    .collect();
                output.table(&["CREDENTIAL", "EVENTS", "LAST READ"], &rows);
                let rows: Vec<Vec<String>> = summary
                    .by_principal
                    .iter()
                    .map(|(principal, count)| vec![principal.to_string(), count.to_string()])
                    .collect();
                output.line("");
                output.table(&["PRINCIPAL", "EVENTS"], &rows);
                output.line(&format!("\n{} denied or failed", summary.failures));
            }
        }
        _ => {
            let events = events(globals, &opened, args).await?;
            output.items(
                &events,
                &[
                    "TIME",
                    "PRINCIPAL",
                    "ACTION",
                    "COUNT",
                    "CREDENTIAL",
                    "VERSION",
                    "OUTCOME",
                    "NOTE",
                ],
                |event| {
                    vec![
                        time(Some(event.time)),
                        event.principal.to_string(),
                        event.action.to_string(),
                        // Repeated reads of one access are one event with a count (and the time
                        // of the last in `until`): the summary adds these counts up.
                        event.count.to_string(),
                        event.credential.to_string(),
                        event.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                        event.outcome.as_str().to_owned(),
                        event.reason.clone().or_else(|| event.error.clone()).unwrap_or_default(),
                    ]
                },
                |event| json!(event),
            );
        }
    }
    Ok(())
}

/// The events of the environment that pass the filter options.
async fn events(
    globals: &Globals,
    opened: &OpenedStore,
    args: &ArgMatches,
) -> Outcome<Vec<AuditEvent>> {
    let mut events = opened.audit.query(&query(args)?).await?;
    events.retain(|event| *event.environment == *globals.environment);
    Ok(events)
}

/// The query the filter options describe.
fn query(args: &ArgMatches) -> Outcome<AuditQuery> {
    let mut query = AuditQuery::all();
    if let Some(id) = args.get_one::<String>("id") {
        query = query.credential(id);
    }
    if let Some(principal) = args.get_one::<String>("by") {
        query = query.principal(principal);
    }
    if let Some(action) = args.get_one::<String>("action") {
        // One of `AuditAction::ALL`'s names: the argument's parser lists them.
        let action: AuditAction = action.parse()?;
        query = query.action(action);
    }
    if let Some(outcome) = args.get_one::<String>("outcome") {
        let outcome: AuditOutcome = outcome.parse()?;
        query = query.outcome(outcome);
    }
    if let Some(since) = args.get_one::<String>("since") {
        let now = Utc::now();
        query = query.between(duration_arg::since(since, now)?, now);
    }
    if let Some(limit) = args.try_get_one::<usize>("limit").ok().flatten() {
        query = query.limit(*limit);
    }
    Ok(query)
}
