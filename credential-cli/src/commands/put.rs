//! `cred put` and `cred rotate`: new credentials and new versions, from field values.

use clap::ArgMatches;
use credential::kinds::{Certificate, Database};
use credential::{Credential, DynManaged, ExposeSecret, FieldValues};

use super::{id, print_handle};
use crate::exit::{Failure, Outcome, Status};
use crate::field_input::{Given, read_secret};
use crate::globals::Globals;

/// The `--set` values, with a `database` driver spelled as its URL schemes spell it
/// (`postgres`, `mariadb`) given the kind's own name for it.
fn sets(args: &ArgMatches, kind: &str) -> Vec<String> {
    let sets = args.get_many::<String>("set").into_iter().flatten().cloned();
    if kind != Database::KIND {
        return sets.collect();
    }
    sets.map(|set| {
        let driver = set.strip_prefix("driver=").and_then(Database::driver_named);
        driver.map_or(set, |driver| format!("driver={driver}"))
    })
    .collect()
}

/// A missing or malformed field reported by the decoder is the operator's input, not stored data.
fn input_failure(error: credential::Error) -> Failure {
    let failure = Failure::from(error);
    if failure.code == "decode" { Failure { status: Status::Invalid, ..failure } } else { failure }
}

pub(super) async fn put(globals: &Globals, args: &ArgMatches) -> Outcome {
    let kind = args.get_one::<String>("kind").map_or("", String::as_str);
    if let Some(source) = args.get_one::<String>("url") {
        return put_database_url(globals, args, kind, source).await;
    }
    let manager = globals.manager().await?;
    let values = match certificate_values(args, kind)? {
        Some(values) => values,
        None => Given::read(&manager, kind, &sets(args, kind))?.complete(None)?,
    };
    let handle = manager.create_dyn(kind, id(args), &values).await.map_err(create_failure)?;
    created(globals, args, handle).await
}

/// A create's failure: an id that exists is said plainly, and a malformed value is the
/// operator's input.
fn create_failure(error: credential::Error) -> Failure {
    match error {
        credential::Error::Conflict { id } => Failure::new(
            Status::Conflict,
            "exists",
            format!("credential `{id}` exists already: `cred rotate {id}` gives it a new version"),
        ),
        other => input_failure(other),
    }
}

/// Activates `handle`, just created, if asked to, and prints it.
async fn created(globals: &Globals, args: &ArgMatches, mut handle: DynManaged) -> Outcome {
    let mut verb = "created";
    if args.get_flag("activate") {
        handle = handle.activate().await?;
        verb = "created and activated";
    }
    print_handle(globals, &handle, verb);
    Ok(())
}

/// `put database ID --url -|@FILE`: the fields read from a connection URL, which holds the
/// password and so never comes from the command line.
async fn put_database_url(
    globals: &Globals,
    args: &ArgMatches,
    kind: &str,
    source: &str,
) -> Outcome {
    if kind != Database::KIND {
        return Err(Failure::usage("--url is for the `database` kind"));
    }
    let url = read_secret("url", source, &mut false)?;
    let database = Database::from_url(url.expose_secret())?;
    drop(url);
    let manager = globals.manager().await?;
    manager.create(id(args), database).await.map_err(create_failure)?;
    created(globals, args, manager.load_dyn(id(args)).await?).await
}

/// `--chain` and `--private-key`: a `certificate`'s fields from its PEM files (or standard
/// input), with its expiry read from the leaf, so that `list --expiring` and `doctor` see it.
fn certificate_values(args: &ArgMatches, kind: &str) -> Outcome<Option<FieldValues>> {
    let (Some(chain), Some(key)) =
        (args.get_one::<String>("chain"), args.get_one::<String>("private-key"))
    else {
        return Ok(None);
    };
    if kind != Certificate::KIND {
        return Err(Failure::usage("--chain and --private-key are for the `certificate` kind"));
    }
    let mut stdin_taken = false;
    let chain = read_secret("chain", chain, &mut stdin_taken)?;
    let key = read_secret("private_key", key, &mut stdin_taken)?;
    let certificate = Certificate::new(chain.expose_secret().to_owned(), key)?;
    let mut values = FieldValues::new()
        .plain("chain", &certificate.chain)
        .secret("private_key", certificate.private_key);
    if let Some(expires) = certificate.expires {
        values = values.plain("expires", &expires.to_rfc3339());
    }
    Ok(Some(values))
}

pub(super) async fn rotate(globals: &Globals, args: &ArgMatches) -> Outcome {
    let manager = globals.manager().await?;
    let handle = manager.load_dyn(id(args)).await?;
    let kind = handle.kind().to_owned();
    let values = match certificate_values(args, &kind)? {
        Some(values) => values,
        None => {
            let given = Given::read(&manager, &kind, &sets(args, &kind))?;
            // Fields the operator does not give keep their current values.
            let current = if given.incomplete() { handle.reveal().await? } else { Vec::new() };
            given.complete(Some(&current))?
        }
    };
    let mut handle = handle.rotate(&values).await.map_err(input_failure)?;
    let mut verb = "rotation started for";
    if args.get_flag("commit") {
        handle = handle.commit().await?;
        verb = "rotated";
    }
    print_handle(globals, &handle, verb);
    Ok(())
}
