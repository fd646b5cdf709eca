//! `cred`, the operator command line for `credential` stores, as a library: an application
//! builds its own operator tool, and every command works for the application's kinds.
//!
//! Every non-generic type that derives `Credential` in the program is known to the tool as it is
//! to a manager (the derive registers it at link time), so an application's binary is one line:
//!
//! ```no_run
//! use credential::prelude::*;
//!
//! #[derive(Credential)]
//! #[credential(kind = "webhook")]
//! struct Webhook {
//!     #[secret]
//!     signing_key: SecretString,
//!     url: String,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     credential_cli::Cli::new().run()
//! }
//! ```
//!
//! Run `cred --help` for the commands, the store URLs, where the master key comes from and the
//! exit codes.

mod backup_format;
mod cli;
mod commands;
mod duration_arg;
mod exit;
mod field_input;
mod files;
mod globals;
mod key_source;
mod output;
mod progress;
mod prompt;
mod store_location;

use std::process::ExitCode;

use credential::{Credential, ManagerBuilder};

use crate::exit::{Failure, Status};
use crate::globals::Globals;
use crate::output::Output;

/// The command line, with the kinds it knows beyond those linked into the program.
#[derive(Debug, Default)]
pub struct Cli {
    registrations: Vec<fn(ManagerBuilder) -> ManagerBuilder>,
}

impl Cli {
    /// The command line as `cred` ships it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also knows kind `C`: needed only for a generic credential type, whose every instance is a
    /// kind of its own (a non-generic type that derives `Credential` is known already).
    #[must_use]
    pub fn kind<C: Credential>(mut self) -> Self {
        self.registrations.push(|builder| builder.register::<C>());
        self
    }

    /// Parses the process's arguments, runs the command and says how it ended: the exit code
    /// scripts rely on (`cred --help` lists them).
    pub fn run(self) -> ExitCode {
        let matches = match cli::command().try_get_matches() {
            Ok(matches) => matches,
            Err(error) => {
                let usage = error.use_stderr();
                // A command line that does not parse still asked for JSON: its error says so in JSON.
                if usage && json_requested() {
                    let rendered = error.render().to_string();
                    let message = rendered.trim().trim_start_matches("error: ");
                    return report(Output::new(true), &Failure::usage(message));
                }
                let _ = error.print();
                return if usage {
                    ExitCode::from(Status::Usage.code())
                } else {
                    ExitCode::SUCCESS
                };
            }
        };
        let globals = match Globals::read(&matches, self.registrations) {
            Ok(globals) => globals,
            Err(failure) => return report(Output::new(matches.get_flag("json")), &failure),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                let failure =
                    Failure::new(Status::Failed, "runtime", format!("cannot start: {error}"));
                return report(globals.output, &failure);
            }
        };
        let outcome = runtime.block_on(async {
            let outcome = commands::run(&globals, &matches).await;
            // Read events are queued; they are written before the process ends, however it ends.
            let flushed = globals.flush_audit().await;
            outcome.and(flushed)
        });
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => report(globals.output, &failure),
        }
    }
}

/// Whether `--json` is among the options (before a `--`), read from the raw arguments because
/// they did not parse.
fn json_requested() -> bool {
    std::env::args_os().skip(1).take_while(|arg| arg != "--").any(|arg| arg == "--json")
}

fn report(output: Output, failure: &Failure) -> ExitCode {
    output.failure(failure);
    failure.exit_code()
}
