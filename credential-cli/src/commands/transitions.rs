//! `cred activate`, `commit`, `rollback [--to N]` and `revoke --reason`.

use clap::ArgMatches;

use super::{id, print_handle};
use crate::exit::{Failure, Outcome};
use crate::globals::Globals;

pub(super) async fn run(globals: &Globals, name: &str, args: &ArgMatches) -> Outcome {
    // Only `revoke` takes a reason (asking the others for one is a programming error in clap).
    let reason = if name == "revoke" {
        args.get_one::<String>("reason").map_or("", String::as_str)
    } else {
        ""
    };
    if name == "revoke" && reason.trim().is_empty() {
        return Err(Failure::usage(
            "a revoke needs a reason, for the audit trail: --reason \"leaked in a build log\"",
        ));
    }
    let manager = globals.manager().await?;
    let handle = manager.load_dyn(id(args)).await?;
    let (handle, verb) = match name {
        "activate" => (handle.activate().await?, "activated"),
        "commit" => (handle.commit().await?, "committed"),
        "rollback" => match args.get_one::<u64>("to") {
            Some(version) => (handle.rollback_to(*version).await?, "restored"),
            None => (handle.rollback().await?, "rolled back"),
        },
        "revoke" => (handle.revoke(reason).await?, "revoked"),
        other => return Err(Failure::usage(format!("unknown command `{other}`"))),
    };
    print_handle(globals, &handle, verb);
    Ok(())
}
