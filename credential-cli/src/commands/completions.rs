//! `cred completions SHELL`: a completion script on standard output.

use clap::ArgMatches;
use clap_complete::Shell;

use crate::exit::{Failure, Outcome};

pub(super) fn run(args: &ArgMatches) -> Outcome {
    let shell = *args.get_one::<Shell>("shell").ok_or_else(|| Failure::usage("give a shell"))?;
    let mut command = crate::cli::command();
    clap_complete::generate(shell, &mut command, "cred", &mut std::io::stdout());
    Ok(())
}
