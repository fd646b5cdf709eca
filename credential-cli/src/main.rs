//! `cred`: the operator command line for `credential` stores.
//!
//! Run `cred --help` for the commands, the store URLs, where the master key comes from and the
//! exit codes.

fn main() -> std::process::ExitCode {
    credential_cli::Cli::new().run()
}
