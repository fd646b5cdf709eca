//! One module per group of commands; `run` dispatches a parsed command line.

mod audit;
mod backup;
mod completions;
mod doctor;
mod init;
mod put;
mod rekey;
mod rotation;
mod show;
mod transitions;

use clap::ArgMatches;
use credential::DynManaged;
use serde_json::json;

use crate::exit::Outcome;
use crate::globals::Globals;

/// Runs the subcommand in `matches`.
pub(crate) async fn run(globals: &Globals, matches: &ArgMatches) -> Outcome {
    let Some((name, args)) = matches.subcommand() else {
        return Err(crate::exit::Failure::usage("no command given; see `cred --help`"));
    };
    match name {
        "init" => init::run(globals, args).await,
        "put" => put::put(globals, args).await,
        "rotate" if args.get_flag("auto") => rotation::auto(globals, args).await,
        "rotate" => put::rotate(globals, args).await,
        "rotation" => rotation::list(globals, args).await,
        "activate" | "commit" | "rollback" | "revoke" => {
            transitions::run(globals, name, args).await
        }
        "get" => show::get(globals, args).await,
        "list" => show::list(globals, args).await,
        "history" => show::history(globals, args).await,
        "audit" => audit::run(globals, args).await,
        "rekey" => rekey::run(globals, args).await,
        "doctor" => doctor::run(globals, args).await,
        "export" => backup::export(globals, args).await,
        "import" => backup::import(globals, args).await,
        "completions" => completions::run(args),
        other => Err(crate::exit::Failure::usage(format!("unknown command `{other}`"))),
    }
}

/// The id argument every credential command takes.
fn id(args: &ArgMatches) -> &str {
    args.get_one::<String>("id").map_or("", String::as_str)
}

/// Prints what a command did to a credential: one line, or its JSON.
fn print_handle(globals: &Globals, handle: &DynManaged, verb: &str) {
    let human = format!(
        "{verb} {} ({}): {}, version {}",
        handle.id(),
        handle.kind(),
        handle.state(),
        handle.version()
    );
    let value = json!({
        "id": handle.id(),
        "kind": handle.kind(),
        "state": handle.state().as_str(),
        "revision": handle.revision(),
        "version": handle.version(),
    });
    globals.output.either(&human, &value);
}
