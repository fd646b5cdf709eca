//! The command tree: every command, option and help text `cred` has.

use clap::{Arg, ArgAction, Command, value_parser};
use credential::audit::AuditAction;

use crate::exit::EXIT_CODES_HELP;

const ABOUT: &str = "Operate `credential` stores: put credentials in, rotate, revoke, read the \
audit trail, rekey, check health and back up.";

const AFTER_HELP: &str = "\
Secrets never come from the command line. Give a secret field as NAME=- (standard input),
NAME=@FILE (a file), or leave it out to be asked for it without echo.

Store URLs:
  sqlite:PATH          an SQLite database (created by `cred init`)
  file:DIR             a directory of record files
  postgres://...       a PostgreSQL database (builds with the `postgres` feature)

The master key comes from --key-file, --key-env, or a passphrase asked for at the terminal
(its salt and cost are kept beside the store by `cred init --passphrase`).

Audit: every command is recorded as --principal in a hash-chained JSONL trail beside the store
(SQLite: PATH.audit.jsonl, files: DIR/audit.jsonl) or --audit-file; on PostgreSQL in its
credential_audit table unless --audit-file is given.
";

/// `cred` and its subcommands.
pub(crate) fn command() -> Command {
    Command::new("cred")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .after_help(format!("{AFTER_HELP}\n{EXIT_CODES_HELP}"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .args(global_args())
        .subcommand(init())
        .subcommand(put())
        .subcommand(id_command("activate", "Start serving a draft"))
        .subcommand(get())
        .subcommand(list())
        .subcommand(rotate())
        .subcommand(rotation())
        .subcommand(id_command("commit", "Make a rotation's new version current"))
        .subcommand(rollback())
        .subcommand(revoke())
        .subcommand(id_command("history", "Show a credential's versions"))
        .subcommand(audit())
        .subcommand(rekey())
        .subcommand(doctor())
        .subcommand(export())
        .subcommand(import())
        .subcommand(completions())
}

fn global_args() -> Vec<Arg> {
    vec![
        Arg::new("store")
            .long("store")
            .env("CRED_STORE")
            .value_name("URL")
            .global(true)
            .hide_env_values(true)
            .help("Where the credentials are (sqlite:PATH, file:DIR, postgres://...)"),
        Arg::new("behind-pooler")
            .long("behind-pooler")
            .env("CRED_STORE_SERVER")
            .value_name("URL")
            .global(true)
            .hide_env_values(true)
            .help(
                "The PostgreSQL server behind a --store URL that names a pooler in transaction \
                 mode (PgBouncer): statements then go through the pooler unnamed, migrations \
                 to the server",
            ),
        Arg::new("key-file")
            .long("key-file")
            .env("CRED_KEY_FILE")
            .value_name("PATH")
            .global(true)
            .value_parser(value_parser!(std::path::PathBuf))
            .help("Read the master key from this file (mode 0600; `cred init` writes one)"),
        Arg::new("key-env")
            .long("key-env")
            .env("CRED_KEY_ENV")
            .value_name("VAR")
            .global(true)
            .conflicts_with("key-file")
            .help("Read the master key (hex or base64) from this environment variable"),
        Arg::new("passphrase-file")
            .long("passphrase-file")
            .env("CRED_PASSPHRASE_FILE")
            .value_name("PATH")
            .global(true)
            .value_parser(value_parser!(std::path::PathBuf))
            .help(
                "Read a passphrase key's passphrase from this file (its first line; mode 0600) \
                 instead of asking at the terminal: for cron and CI",
            ),
        Arg::new("kdf-file")
            .long("kdf-file")
            .env("CRED_KDF_FILE")
            .value_name("PATH")
            .global(true)
            .value_parser(value_parser!(std::path::PathBuf))
            .help("Where a passphrase key's salt and cost are kept [default: beside the store]"),
        Arg::new("env")
            .long("env")
            .env("CRED_ENV")
            .value_name("NAME")
            .global(true)
            .default_value(credential::DEFAULT_ENVIRONMENT)
            .help("The environment (dev, staging, production, ...)"),
        Arg::new("principal")
            .long("principal")
            .env("CRED_PRINCIPAL")
            .value_name("NAME")
            .global(true)
            .help("Who the audit trail names [default: user:<login name>]"),
        Arg::new("audit-file")
            .long("audit-file")
            .env("CRED_AUDIT_FILE")
            .value_name("PATH")
            .global(true)
            .value_parser(value_parser!(std::path::PathBuf))
            .help("The JSONL audit trail [default: beside the store]"),
        Arg::new("json")
            .long("json")
            .global(true)
            .action(ArgAction::SetTrue)
            .help("Print results and errors as JSON"),
    ]
}

fn id_arg() -> Arg {
    Arg::new("id").required(true).value_name("ID").help("The credential id, e.g. github/main")
}

fn id_command(name: &'static str, about: &'static str) -> Command {
    Command::new(name).about(about).arg(id_arg())
}

fn set_arg() -> Arg {
    Arg::new("set")
        .long("set")
        .short('s')
        .value_name("FIELD=VALUE")
        .action(ArgAction::Append)
        .help("A field value; for a secret field only FIELD=- (stdin) or FIELD=@FILE")
}

fn init() -> Command {
    Command::new("init")
        .about("Create the store and its master key (or check an existing pair)")
        .long_about(
            "Create the store and its master key, or check that an existing key opens an existing \
             store.\n\nWith --key-file PATH and no file at PATH, a new random key is written there \
             (mode 0600). With --passphrase, the key is derived from a passphrase asked for twice \
             at the terminal; its salt and cost are written beside the store.",
        )
        .arg(
            Arg::new("passphrase")
                .long("passphrase")
                .action(ArgAction::SetTrue)
                .conflicts_with_all(["key-file", "key-env"])
                .help("Derive the master key from a passphrase (Argon2id)"),
        )
}

/// `--chain` and `--private-key`: a `certificate` from its PEM files, its expiry read from the
/// leaf.
fn certificate_args() -> [Arg; 2] {
    [
        Arg::new("chain")
            .long("chain")
            .value_name("-|@FILE")
            .requires("private-key")
            .conflicts_with("set")
            .help(
                "For `certificate`: the PEM chain, leaf first, from standard input (-) or a file \
                 (@FILE); the expiry is the leaf's notAfter",
            ),
        Arg::new("private-key")
            .long("private-key")
            .value_name("-|@FILE")
            .requires("chain")
            .help("For `certificate`: the leaf's PEM private key, from standard input or a file"),
    ]
}

fn put() -> Command {
    Command::new("put")
        .about("Create a credential as a draft")
        .after_help(format!(
            "Example:\n  \
             printf %s \"$TOKEN\" | cred put bearer_token ci/deploy --set token=- --activate\n\n{}",
            kinds_help()
        ))
        .arg(Arg::new("kind").required(true).value_name("KIND").help("The kind, e.g. api_key"))
        .arg(id_arg())
        .arg(set_arg())
        .arg(Arg::new("url").long("url").value_name("-|@FILE").conflicts_with("set").help(
            "For `database`: the connection URL (postgres://, postgresql://, mysql://), \
                     from standard input (-) or a file (@FILE), never the command line",
        ))
        .args(certificate_args().map(|arg| arg.conflicts_with("url")))
        .arg(
            Arg::new("activate")
                .long("activate")
                .action(ArgAction::SetTrue)
                .help("Activate it at once"),
        )
}

/// The built-in kinds and their fields, secret ones marked.
fn kinds_help() -> String {
    use credential::Credential;
    use credential::field::FieldSchema;
    use credential::kinds::{
        ApiKey, Aws, BasicAuth, BearerToken, Certificate, Database, OAuth2Client, OAuth2Token,
        SshKey,
    };
    fn line<C: Credential>() -> String {
        let fields: Vec<String> =
            C::FIELDS
                .iter()
                .map(|field: &FieldSchema| {
                    if field.is_secret() {
                        format!("{}*", field.name)
                    } else {
                        field.name.to_owned()
                    }
                })
                .collect();
        format!("  {:<14}{}", C::KIND, fields.join(" "))
    }
    let lines = [
        line::<ApiKey>(),
        line::<Aws>(),
        line::<BasicAuth>(),
        line::<BearerToken>(),
        line::<Certificate>(),
        line::<Database>(),
        line::<OAuth2Client>(),
        line::<OAuth2Token>(),
        line::<SshKey>(),
    ];
    format!("Built-in kinds and their fields (* secret):\n{}", lines.join("\n"))
}

fn get() -> Command {
    Command::new("get")
        .about("Show a credential, secrets redacted unless --reveal")
        .arg(id_arg())
        .arg(
            Arg::new("reveal")
                .long("reveal")
                .action(ArgAction::SetTrue)
                .help("Show secret values (recorded in the audit trail as a reveal)"),
        )
        .arg(
            Arg::new("field")
                .long("field")
                .short('f')
                .value_name("FIELD")
                .help("Print only this field's value, for pipes"),
        )
}

fn list() -> Command {
    Command::new("list")
        .about("List credentials (metadata only)")
        .arg(Arg::new("kind").long("kind").value_name("KIND").help("Only this kind"))
        .arg(
            Arg::new("state")
                .long("state")
                .value_name("STATE")
                .value_parser(["draft", "active", "rotating", "revoked"])
                .help("Only this state"),
        )
        .arg(Arg::new("prefix").long("prefix").value_name("PREFIX").help("Only ids starting so"))
        .arg(
            Arg::new("expiring")
                .long("expiring")
                .value_name("WITHIN")
                .help("Only those expiring within this long (30m, 12h, 7d)"),
        )
}

fn rotate() -> Command {
    Command::new("rotate")
        .about("Start a rotation to a new version (the current one is served until commit)")
        .long_about(
            "Start a rotation to a new version given with --set (the current one is served until \
             commit), or with --auto rotate it at the system it opens: a PostgreSQL `database` \
             credential gets a new random password, set at the server (sent as a SCRAM-SHA-256 \
             verifier), tested and committed. Builds with the `postgres` feature.",
        )
        .arg(id_arg())
        .arg(set_arg().conflicts_with("auto"))
        .args(certificate_args().map(|arg| arg.conflicts_with("auto")))
        .arg(
            Arg::new("commit")
                .long("commit")
                .action(ArgAction::SetTrue)
                .conflicts_with("auto")
                .help("Commit the new version at once"),
        )
        .arg(
            Arg::new("auto")
                .long("auto")
                .action(ArgAction::SetTrue)
                .help("Rotate at the target system: create, set, test, finish"),
        )
        .arg(
            Arg::new("strategy")
                .long("strategy")
                .value_name("STRATEGY")
                .value_parser(["single-user", "alternating-users"])
                .default_value("single-user")
                .requires("auto")
                .help(
                    "single-user: the role changes its own password; alternating-users: the \
                       role and its _clone twin take turns (needs --admin)",
                ),
        )
        .arg(
            Arg::new("admin")
                .long("admin")
                .value_name("ID")
                .requires("auto")
                .help("With alternating-users: the credential of a role that may ALTER ROLE both"),
        )
}

fn rotation() -> Command {
    Command::new("rotation")
        .about("Automatic rotation: where each credential stands")
        .subcommand_required(true)
        .subcommand(
            Command::new("list")
                .about(
                    "Credentials of kinds cred rotates (database), with their last rotation, the \
                     next one under the policy given, a rotation pending or in progress, and the \
                     last failure from the audit trail",
                )
                .arg(
                    Arg::new("pattern")
                        .long("pattern")
                        .value_name("GLOB")
                        .default_value("*")
                        .help("The ids the policy covers (`*` matches anything)"),
                )
                .arg(
                    Arg::new("every")
                        .long("every")
                        .value_name("INTERVAL")
                        .help("Policy: rotate once the served version is this old (30d, 12h)"),
                )
                .arg(
                    Arg::new("before-expiry")
                        .long("before-expiry")
                        .value_name("WINDOW")
                        .help("Policy: rotate once the credential expires within this long"),
                ),
        )
}

fn rollback() -> Command {
    Command::new("rollback")
        .about("Discard a pending rotation, or restore an older version with --to")
        .arg(id_arg())
        .arg(
            Arg::new("to")
                .long("to")
                .value_name("VERSION")
                .value_parser(value_parser!(u64))
                .help("Restore this deprecated version as the new current one"),
        )
}

fn revoke() -> Command {
    Command::new("revoke")
        .about("Revoke a credential: every payload destroyed, refused everywhere")
        .arg(id_arg())
        .arg(
            Arg::new("reason")
                .long("reason")
                .required(true)
                .value_name("TEXT")
                .help("Why, for the audit trail"),
        )
}

fn audit_filters(command: Command) -> Command {
    command
        .arg(Arg::new("id").long("id").value_name("ID").help("Only this credential"))
        .arg(Arg::new("by").long("by").value_name("PRINCIPAL").help("Only this principal"))
        .arg(
            Arg::new("action")
                .long("action")
                .value_name("ACTION")
                .value_parser(AuditAction::ALL.map(AuditAction::as_str))
                .help("Only this action"),
        )
        .arg(
            Arg::new("outcome")
                .long("outcome")
                .value_name("OUTCOME")
                .value_parser(["success", "denied", "failure"])
                .help("Only this outcome"),
        )
        .arg(
            Arg::new("since")
                .long("since")
                .value_name("WHEN")
                .help("Only events this recent (30m, 12h, 7d) or since an RFC 3339 time"),
        )
}

fn audit() -> Command {
    Command::new("audit")
        .about("Read and check the audit trail")
        .subcommand_required(true)
        .subcommand(
            audit_filters(Command::new("query").about("List audit events, oldest first")).arg(
                Arg::new("limit")
                    .long("limit")
                    .value_name("N")
                    .value_parser(value_parser!(usize))
                    .help("At most N events (the newest)"),
            ),
        )
        .subcommand(audit_filters(
            Command::new("summary").about("Totals per credential and principal"),
        ))
        .subcommand(Command::new("verify").about("Check the trail's hash chain"))
}

fn rekey() -> Command {
    Command::new("rekey")
        .about("Re-seal every credential under a new master key (resumable)")
        .long_about(
            "Re-seal every credential of the environment under a new master key, one record at a \
             time. Safe to interrupt and to run again: records already under the new key are \
             skipped. The current key comes from --key-file/--key-env/passphrase as usual; when \
             the run reports only the new key in use, switch to it. Without --new-key-file, the \
             current key stays and only records written before records were tagged are \
             rewritten, tagged.",
        )
        .arg(
            Arg::new("new-key-file")
                .long("new-key-file")
                .value_name("PATH")
                .value_parser(value_parser!(std::path::PathBuf))
                .help("The new key (generated there, mode 0600, when the file does not exist)"),
        )
}

fn doctor() -> Command {
    Command::new("doctor")
        .about("Check the key, the store, the audit trail and the credentials' health")
        .arg(
            Arg::new("deep")
                .long("deep")
                .action(ArgAction::SetTrue)
                .help("Also open every sealed version of every credential"),
        )
}

fn export() -> Command {
    Command::new("export")
        .about("Write an encrypted backup in the age format")
        .long_about(
            "Write every credential of the environment, with its versions, to a backup encrypted \
             in the age format (age-encryption.org/v1): to X25519 recipients, or to a passphrase \
             asked for at the terminal. The `age` tool decrypts it; `cred import` restores it \
             under any master key.",
        )
        .arg(
            Arg::new("recipient")
                .long("recipient")
                .short('r')
                .value_name("AGE1...")
                .action(ArgAction::Append)
                .help("Encrypt to this X25519 recipient (repeatable)"),
        )
        .arg(
            Arg::new("recipients-file")
                .long("recipients-file")
                .short('R')
                .value_name("PATH")
                .action(ArgAction::Append)
                .help("Encrypt to the recipients listed in this file"),
        )
        .arg(
            Arg::new("passphrase")
                .long("passphrase")
                .short('p')
                .action(ArgAction::SetTrue)
                .conflicts_with_all(["recipient", "recipients-file"])
                .help("Encrypt to a passphrase asked for at the terminal"),
        )
        .arg(
            Arg::new("armor")
                .long("armor")
                .short('a')
                .action(ArgAction::SetTrue)
                .help("Write PEM-style text instead of binary"),
        )
        .arg(output_arg())
}

fn output_arg() -> Arg {
    Arg::new("output")
        .long("output")
        .short('o')
        .value_name("PATH")
        .value_parser(value_parser!(std::path::PathBuf))
        .help("Write here instead of standard output")
}

fn import() -> Command {
    Command::new("import")
        .about("Restore a backup made by `cred export` (or any age file holding one)")
        .arg(
            Arg::new("file")
                .required(true)
                .value_name("FILE")
                .help("The backup, or - for standard input"),
        )
        .arg(
            Arg::new("identity")
                .long("identity")
                .short('i')
                .value_name("PATH")
                .action(ArgAction::Append)
                .help("An age identity file (age-keygen format) to decrypt with"),
        )
}

fn completions() -> Command {
    Command::new("completions").about("Print a shell completion script").arg(
        Arg::new("shell")
            .required(true)
            .value_parser(value_parser!(clap_complete::Shell))
            .help("bash, zsh, fish, elvish or powershell"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_tree_is_consistent() {
        super::command().debug_assert();
    }
}
