//! `cred put` and `cred rotate`: new credentials and new versions, from field values.

use clap::ArgMatches;

use super::{id, print_handle};
use crate::exit::{Failure, Outcome, Status};
use crate::field_input::Given;
use crate::globals::Globals;

fn sets(args: &ArgMatches) -> Vec<String> {
    args.get_many::<String>("set").map(|sets| sets.cloned().collect()).unwrap_or_default()
}

/// A missing or malformed field reported by the decoder is the operator's input, not stored data.
fn input_failure(error: credential::Error) -> Failure {
    let failure = Failure::from(error);
    if failure.code == "decode" { Failure { status: Status::Invalid, ..failure } } else { failure }
}

pub(super) async fn put(globals: &Globals, args: &ArgMatches) -> Outcome {
    let manager = globals.manager().await?;
    let kind = args.get_one::<String>("kind").map_or("", String::as_str);
    let values = Given::read(&manager, kind, &sets(args))?.complete(None)?;
    let mut handle = manager.create_dyn(kind, id(args), &values).await.map_err(input_failure)?;
    let mut verb = "created";
    if args.get_flag("activate") {
        handle = handle.activate().await?;
        verb = "created and activated";
    }
    print_handle(globals, &handle, verb);
    Ok(())
}

pub(super) async fn rotate(globals: &Globals, args: &ArgMatches) -> Outcome {
    let manager = globals.manager().await?;
    let handle = manager.load_dyn(id(args)).await?;
    let kind = handle.kind().to_owned();
    let given = Given::read(&manager, &kind, &sets(args))?;
    // Fields the operator does not give keep their current values.
    let current = if given.incomplete() { handle.reveal().await? } else { Vec::new() };
    let values = given.complete(Some(&current))?;
    let mut handle = handle.rotate(&values).await.map_err(input_failure)?;
    let mut verb = "rotation started for";
    if args.get_flag("commit") {
        handle = handle.commit().await?;
        verb = "rotated";
    }
    print_handle(globals, &handle, verb);
    Ok(())
}
