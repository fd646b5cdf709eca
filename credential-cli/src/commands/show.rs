//! `cred get`, `list` and `history`: reading without changing.

use clap::ArgMatches;
use std::collections::BTreeMap;

use credential::{DateTime, ExposeSecret, LifecycleState, ListFilter, Utc};
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::id;
use crate::duration_arg;
use crate::exit::{Failure, Outcome, Status};
use crate::globals::Globals;
use crate::output::time;

/// One field as shown: name, whether secret, and the value (masked unless revealed).
struct Shown {
    name: &'static str,
    secret: bool,
    value: Zeroizing<String>,
}

/// `get --json`: the credential and its fields, values borrowed (never copied into JSON values).
#[derive(Serialize)]
struct CredentialJson<'a> {
    id: &'a str,
    kind: &'a str,
    state: &'a str,
    version: u64,
    expires_at: Option<DateTime<Utc>>,
    fields: BTreeMap<&'a str, FieldJson<'a>>,
}

#[derive(Serialize)]
struct FieldJson<'a> {
    secret: bool,
    value: &'a str,
}

/// `get --field F --json`.
#[derive(Serialize)]
struct OneField<'a> {
    name: &'a str,
    value: &'a str,
}

pub(super) async fn get(globals: &Globals, args: &ArgMatches) -> Outcome {
    let manager = globals.manager().await?;
    let handle = manager.load_dyn(id(args)).await?;
    let wanted = args.get_one::<String>("field");
    let fields: Vec<Shown> = if args.get_flag("reveal") {
        handle
            .reveal()
            .await?
            .into_iter()
            .map(|field| Shown {
                name: field.name,
                secret: field.secret,
                value: Zeroizing::new(field.value.expose_secret().to_owned()),
            })
            .collect()
    } else {
        match handle.redacted().await {
            Ok(fields) => fields
                .into_iter()
                .map(|field| Shown {
                    name: field.name,
                    secret: field.secret,
                    value: Zeroizing::new(field.value),
                })
                .collect(),
            // A kind `cred` was not built with: its metadata is still worth showing.
            Err(credential::Error::UnknownKind { kind }) if wanted.is_none() => {
                globals.output.note(&format!(
                    "the fields of kind `{kind}` are not known to cred; showing the metadata"
                ));
                Vec::new()
            }
            Err(error) => return Err(error.into()),
        }
    };
    // Whoever sees a value, the trail says so first: written before anything is printed.
    globals.flush_audit().await?;
    let output = globals.output;
    if let Some(wanted) = wanted {
        let field = fields.iter().find(|field| field.name == wanted).ok_or_else(|| {
            Failure::new(
                Status::Invalid,
                "unknown_field",
                format!("credential `{}` has no field `{wanted}`", handle.id()),
            )
        })?;
        // A masked value printed alone would go down a pipe as if it were the secret.
        if field.secret && !args.get_flag("reveal") {
            return Err(Failure::usage(format!(
                "field `{wanted}` is secret: add --reveal to print it (the trail records that)"
            )));
        }
        if output.is_json() {
            output.json(&OneField { name: field.name, value: &field.value });
        } else {
            output.line(&field.value);
        }
        return Ok(());
    }
    if output.is_json() {
        let fields = fields
            .iter()
            .map(|field| (field.name, FieldJson { secret: field.secret, value: &field.value }))
            .collect();
        output.json(&CredentialJson {
            id: handle.id(),
            kind: handle.kind(),
            state: handle.state().as_str(),
            version: handle.version(),
            expires_at: handle.meta().expires_at,
            fields,
        });
        return Ok(());
    }
    output.line(&format!(
        "{} ({}): {}, version {}, expires {}",
        handle.id(),
        handle.kind(),
        handle.state(),
        handle.version(),
        time(handle.meta().expires_at)
    ));
    let rows: Zeroizing<Vec<Vec<String>>> = Zeroizing::new(
        fields
            .iter()
            .map(|field| vec![format!("  {}", field.name), field.value.to_string()])
            .collect(),
    );
    output.table(&["  FIELD", "VALUE"], &rows);
    Ok(())
}

pub(super) async fn list(globals: &Globals, args: &ArgMatches) -> Outcome {
    let mut filter = ListFilter::all();
    if let Some(kind) = args.get_one::<String>("kind") {
        filter = filter.kind(kind.as_str());
    }
    if let Some(state) = args.get_one::<String>("state") {
        filter = filter.state(state.parse::<LifecycleState>()?);
    }
    if let Some(prefix) = args.get_one::<String>("prefix") {
        filter = filter.id_prefix(prefix.as_str());
    }
    let horizon = args
        .get_one::<String>("expiring")
        .map(|within| duration_arg::parse(within).map(|within| Utc::now() + within))
        .transpose()?;
    let manager = globals.manager().await?;
    if let Some(kind) = args.get_one::<String>("kind") {
        check_kind(&manager, kind).await?;
    }
    let mut metas = manager.list(&filter).await?;
    if metas.is_empty() {
        check_environment(globals).await?;
    }
    if let Some(horizon) = horizon {
        metas.retain(|meta| {
            meta.state != LifecycleState::Revoked
                && meta.expires_at.is_some_and(|expires| expires <= horizon)
        });
    }
    metas.sort_by(|a, b| a.id.cmp(&b.id));
    globals.output.items(
        &metas,
        &["ID", "KIND", "STATE", "EXPIRES", "UPDATED"],
        |meta| {
            vec![
                meta.id.clone(),
                meta.kind.clone(),
                meta.state.to_string(),
                time(meta.expires_at),
                time(Some(meta.updated_at)),
            ]
        },
        |meta| {
            json!({
                "id": meta.id,
                "kind": meta.kind,
                "state": meta.state.as_str(),
                "revision": meta.revision,
                "created_at": meta.created_at,
                "updated_at": meta.updated_at,
                "expires_at": meta.expires_at,
                "key_id": meta.key_id,
                "reauth_required": meta.refresh.reauth_required,
            })
        },
    );
    Ok(())
}

pub(super) async fn history(globals: &Globals, args: &ArgMatches) -> Outcome {
    let manager = globals.manager().await?;
    let versions = manager.history(id(args)).await?;
    globals.output.items(
        &versions,
        &["VERSION", "STATE", "CREATED", "CHANGED"],
        |info| {
            vec![
                info.version.to_string(),
                info.state.to_string(),
                time(Some(info.created_at)),
                time(Some(info.changed_at)),
            ]
        },
        |info| {
            json!({
                "version": info.version,
                "state": info.state.as_str(),
                "created_at": info.created_at,
                "changed_at": info.changed_at,
            })
        },
    );
    Ok(())
}

/// Refuses a kind that is neither known to `cred` nor stored (a typo, not an empty result),
/// naming the kinds there are.
async fn check_kind(manager: &credential::Manager, kind: &str) -> Outcome {
    if manager.kinds().contains(&kind) {
        return Ok(());
    }
    let mut kinds: std::collections::BTreeSet<String> =
        manager.list(&ListFilter::all()).await?.into_iter().map(|meta| meta.kind).collect();
    if kinds.contains(kind) {
        return Ok(());
    }
    kinds.extend(manager.kinds().into_iter().map(str::to_owned));
    let kinds: Vec<String> = kinds.into_iter().collect();
    Err(Failure::new(
        Status::Invalid,
        "unknown_kind",
        format!("no kind `{kind}` is known or stored; the kinds: {}", kinds.join(", ")),
    ))
}

/// Refuses an environment that holds no credential while others do (a typo, not an empty
/// list), naming the environments there are. A store with none at all is simply empty.
async fn check_environment(globals: &Globals) -> Outcome {
    let opened = globals.open_store().await?;
    let environments: std::collections::BTreeSet<String> = opened
        .store
        .list(&ListFilter::all())
        .await?
        .into_iter()
        .map(|meta| meta.environment)
        .collect();
    if environments.is_empty() || environments.contains(&globals.environment) {
        return Ok(());
    }
    let environments: Vec<String> = environments.into_iter().collect();
    Err(Failure::new(
        Status::Invalid,
        "unknown_environment",
        format!(
            "environment `{}` holds no credentials; the store's environments: {} (`cred put` \
             starts a new one)",
            globals.environment,
            environments.join(", ")
        ),
    ))
}
