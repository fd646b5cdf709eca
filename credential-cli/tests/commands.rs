//! Every command as an operator runs it: the happy path, the errors, and the exit codes scripts
//! rely on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::os::unix::fs::PermissionsExt;

use support::Cli;

#[test]
fn init_creates_the_store_and_a_private_key_file_and_checks_them_again() {
    let cli = Cli::new("init");
    let first = cli.run(&["--json", "init"]).ok();
    let key_id = first.json()["key_id"].as_str().unwrap().to_owned();
    assert!(first.stderr.contains("wrote a new master key"));
    let mode = std::fs::metadata(&cli.key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = cli.run(&["--json", "init"]).ok();
    assert_eq!(again.json()["key_id"], key_id.as_str());
    assert!(!again.stderr.contains("wrote a new master key"));

    // A store with credentials refuses another key: integrity, exit 6.
    cli.run_with_input(&["put", "api_key", "stripe", "--set", "key=-"], b"sk_1").ok();
    let other = cli.path("other.key");
    let wrong = cli.run(&["--key-file", other.to_str().unwrap(), "init"]).fails_with(6);
    assert!(wrong.stderr.contains("wrong master key"), "{wrong:?}");
    // A key file others may read is refused.
    std::fs::set_permissions(&cli.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = cli.run(&["list"]);
    assert!(open.stderr.contains("chmod"), "{open:?}");
    assert_ne!(open.code, 0);
}

#[test]
fn only_init_creates_a_store_and_a_mistyped_one_is_an_error_that_says_so() {
    let cli = Cli::initialized("no-store");
    let typo = format!("sqlite:{}", cli.path("stroe/credentials.db").display());
    let put = cli
        .run_with_input(&["--store", &typo, "put", "api_key", "stripe", "--set", "key=-"], b"sk_1");
    let put = put.fails_with(9);
    assert!(put.stderr.contains("`cred init` creates it"), "{put:?}");
    assert!(!cli.path("stroe").exists(), "nothing was created, not even the directory");
    let files = format!("file:{}", cli.path("no-such-dir").display());
    cli.run(&["--store", &files, "list"]).fails_with(9);
    assert!(!cli.path("no-such-dir").exists());
    // Doctor says the store is missing, and how to make one.
    let doctor = cli.run(&["--store", &typo, "doctor"]);
    assert_ne!(doctor.code, 0, "{doctor:?}");
    assert!(doctor.all().contains("cred init"), "{doctor:?}");
    assert!(!cli.path("stroe").exists());
}

#[test]
fn a_secret_field_alone_is_printed_only_when_revealed() {
    let cli = Cli::initialized("field-reveal");
    let put = ["put", "basic_auth", "svc/db", "--set", "username=ops", "--set", "password=-"];
    cli.run_with_input(&put, b"hunter2-field").ok();
    // Without --reveal the masked value would go down a pipe as the password: refused.
    let masked = cli.run(&["get", "svc/db", "--field", "password"]).fails_with(2);
    assert!(masked.stderr.contains("--reveal") && masked.stdout.is_empty(), "{masked:?}");
    assert_eq!(cli.run(&["get", "svc/db", "--field", "username"]).ok().stdout, "ops\n");
    let revealed = cli.run(&["get", "svc/db", "--field", "password", "--reveal"]).ok();
    assert_eq!(revealed.stdout, "hunter2-field\n");
    // A value with a line break cannot forge a row of the table: it is shown escaped.
    let forged =
        ["put", "basic_auth", "svc/odd", "--set", "username=ops\nFORGED", "--set", "password=-"];
    cli.run_with_input(&forged, b"pw").ok();
    let table = cli.run(&["get", "svc/odd"]).ok();
    assert!(table.stdout.contains("ops\\nFORGED"), "{table:?}");
    assert!(!table.stdout.lines().any(|line| line.trim_start().starts_with("FORGED")));
}

#[test]
fn list_fields_such_as_scopes_are_set_as_comma_separated_items() {
    let cli = Cli::initialized("scopes");
    let put = [
        "--json",
        "put",
        "oauth2_client",
        "idp/reports",
        "--set",
        "token_endpoint=https://idp.example/token",
        "--set",
        "client_id=reports",
        "--set",
        "client_secret=-",
        "--set",
        "scopes=api, reports.read",
    ];
    cli.run_with_input(&put, b"cs-7f3a91").ok();
    let shown = cli.run(&["--json", "get", "idp/reports"]).ok().json();
    let scopes = shown["fields"]["scopes"]["value"].as_str().unwrap().to_owned();
    assert!(scopes.contains("api") && scopes.contains("reports.read"), "{scopes}");
}

#[test]
fn an_existing_id_and_an_empty_revoke_reason_are_refused_saying_why() {
    let cli = Cli::initialized("refusals");
    let put = ["put", "api_key", "stripe", "--set", "key=-"];
    cli.run_with_input(&put, b"sk_first").ok();
    let again = cli.run_with_input(&put, b"sk_second").fails_with(4);
    assert!(
        again.stderr.contains("exists already") && again.stderr.contains("cred rotate"),
        "{again:?}"
    );
    for reason in ["", "  "] {
        let empty = cli.run(&["revoke", "stripe", "--reason", reason]).fails_with(2);
        assert!(empty.stderr.contains("needs a reason"), "{empty:?}");
    }
    let served = cli.run(&["get", "stripe", "--reveal", "--field", "key"]).ok();
    assert_eq!(served.stdout.trim(), "sk_first", "neither refusal changed anything");
    // A kind that is neither known nor stored is a typo, not an empty list.
    let typo = cli.run(&["list", "--kind", "api_kye"]).fails_with(5);
    assert!(typo.stderr.contains("api_key") && typo.stderr.contains("basic_auth"), "{typo:?}");
    assert!(cli.run(&["list", "--kind", "api_key"]).ok().stdout.contains("stripe"));
    // So is an environment that holds nothing while others do.
    let env_typo = cli.run(&["--env", "prodution", "list"]).fails_with(5);
    assert!(env_typo.stderr.contains("environments: default"), "{env_typo:?}");
}

#[test]
fn a_database_goes_in_from_its_url_on_standard_input() {
    let cli = Cli::initialized("database-url");
    let url = b"postgres://orders_app:p%40ss-7c2e@db.internal/orders?sslmode=verify-full";
    let put = ["--json", "put", "database", "db/orders", "--url", "-", "--activate"];
    let created = cli.run_with_input(&put, url).ok();
    assert_eq!(created.json()["state"], "active");
    let shown = cli.run(&["--json", "get", "db/orders"]).ok().json();
    assert_eq!(shown["fields"]["driver"]["value"], "postgresql");
    assert_eq!(shown["fields"]["user"]["value"], "orders_app");
    assert_eq!(shown["fields"]["tls_mode"]["value"], "verify-full");
    let password = cli.run(&["get", "db/orders", "--reveal", "--field", "password"]).ok();
    assert_eq!(password.stdout.trim(), "p@ss-7c2e");
    // A malformed URL is refused without being repeated; --url is for databases only.
    let bad = cli.run_with_input(&["put", "database", "db/bad", "--url", "-"], b"ftp://x@p-7c2e/");
    let bad = bad.fails_with(5);
    assert!(!bad.all().contains("p-7c2e"), "{bad:?}");
    cli.run_with_input(&["put", "api_key", "k", "--url", "-"], url).fails_with(2);
}

#[test]
fn a_database_driver_may_be_spelled_as_its_url_scheme() {
    let cli = Cli::initialized("database-driver");
    let put = |id: &str, driver: &str| {
        let driver = format!("driver={driver}");
        let mut args = vec!["--json", "put", "database", id];
        for set in [&driver[..], "host=db", "port=5432", "database=o", "user=app", "password=-"] {
            args.extend(["--set", set]);
        }
        cli.run_with_input(&args, b"p-7c2e")
    };
    for (id, driver, stored) in [("db/pg", "postgres", "postgresql"), ("db/my", "mariadb", "mysql")]
    {
        put(id, driver).ok();
        let shown = cli.run(&["--json", "get", id]).ok().json();
        assert_eq!(shown["fields"]["driver"]["value"], stored);
    }
    let refused = put("db/x", "redis").fails_with(5);
    assert!(refused.stderr.contains("`postgresql` or `mysql`"), "{refused:?}");
}

#[test]
fn usage_errors_exit_2_and_name_what_is_missing() {
    let cli = Cli::new("usage");
    let run = cli.run(&[]).fails_with(2);
    assert!(run.all().contains("Usage"));
    cli.run(&["revoke", "x"]).fails_with(2);
    let no_store = cli.command(&["list"]).env_remove("CRED_STORE").output().unwrap();
    assert_eq!(no_store.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_store.stderr).contains("--store"));
    cli.run(&["--store", "redis://x", "list"]).fails_with(2);
    // Under --json every error is JSON, a command line that does not parse included.
    for args in
        [&["--json", "revoke"][..], &["--json", "list", "--no-such-flag"], &["--json", "nope"]]
    {
        let run = cli.run(args).fails_with(2);
        let printed: serde_json::Value = serde_json::from_str(run.stderr.trim()).unwrap();
        let error = &printed["error"];
        assert_eq!(error["code"], "usage", "{run:?}");
        assert_eq!(error["exit"], 2);
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    let help = cli.run(&["--help"]).ok();
    assert!(help.stdout.contains("Exit codes:") && help.stdout.contains("NAME=@FILE"));
    assert!(cli.run(&["completions", "bash"]).ok().stdout.contains("_cred"));
}

#[test]
fn a_credential_goes_through_its_whole_lifecycle() {
    let cli = Cli::initialized("lifecycle");
    std::fs::write(cli.path("password.txt"), "hunter2-first\n").unwrap();
    let put = ["--json", "put", "basic_auth", "svc/legacy", "--set", "username=ops"];
    let created = cli.run(&[&put[..], &["--set", "password=@password.txt"]].concat()).ok();
    assert_eq!(created.json()["state"], "draft");
    let draft = cli.run(&["get", "svc/legacy", "--reveal", "--field", "password"]).ok();
    assert_eq!(draft.stdout, "hunter2-first\n", "one final newline of the file is dropped");

    // Wrong step for the state: exit 7.
    cli.run(&["commit", "svc/legacy"]).fails_with(7);
    assert_eq!(cli.run(&["--json", "activate", "svc/legacy"]).ok().json()["state"], "active");

    let rotate = ["--json", "rotate", "svc/legacy", "--set", "password=-"];
    let rotating = cli.run_with_input(&rotate, b"hunter2-second\n").ok();
    assert_eq!(rotating.json()["state"], "rotating");
    // The current version is served until the commit.
    let served = cli.run(&["get", "svc/legacy", "--reveal", "--field", "password"]).ok();
    assert_eq!(served.stdout.trim(), "hunter2-first");
    cli.run(&["rollback", "svc/legacy"]).ok();
    let rotate = ["rotate", "svc/legacy", "--set", "password=-", "--commit"];
    cli.run_with_input(&rotate, b"hunter2-third").ok();
    let third = cli.run(&["get", "svc/legacy", "--reveal", "-f", "password"]).ok();
    assert_eq!(third.stdout.trim(), "hunter2-third");

    let restored = cli.run(&["--json", "rollback", "svc/legacy", "--to", "1"]).ok().json();
    assert_eq!(restored["version"], 4);
    let first = cli.run(&["get", "svc/legacy", "--reveal", "-f", "password"]).ok();
    assert_eq!(first.stdout.trim(), "hunter2-first");
    cli.run(&["rollback", "svc/legacy", "--to", "4"]).fails_with(7);

    let history = cli.run(&["--json", "history", "svc/legacy"]).ok().json();
    let states: Vec<_> =
        history.as_array().unwrap().iter().map(|v| v["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["deprecated", "destroyed", "deprecated", "current"]);

    // Redacted unless --reveal; the table shows the plain fields.
    let shown = cli.run(&["get", "svc/legacy"]).ok();
    assert!(shown.stdout.contains("[REDACTED]") && shown.stdout.contains("ops"));
    assert!(!shown.stdout.contains("hunter2"));

    let revoke = ["--json", "revoke", "svc/legacy", "--reason", "leaked in a log"];
    assert_eq!(cli.run(&revoke).ok().json()["state"], "revoked");
    cli.run(&["get", "svc/legacy"]).fails_with(7);
    cli.run(&["revoke", "svc/legacy", "--reason", "again"]).fails_with(7);
    let query = ["--json", "audit", "query", "--id", "svc/legacy", "--action", "revoke"];
    let events = cli.run(&query).ok().json();
    assert_eq!(events[0]["reason"], "leaked in a log");
    assert_eq!(events[0]["principal"], "ops:tester");
}

#[test]
fn bad_input_is_refused_with_its_own_exit_code() {
    let cli = Cli::initialized("errors");
    // Not found (3), and the same code under --json, in a stable shape on stderr.
    cli.run(&["get", "nope"]).fails_with(3);
    let error = cli.run(&["--json", "activate", "nope"]).fails_with(3);
    let error: serde_json::Value = serde_json::from_str(error.stderr.trim()).unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    assert_eq!(error["error"]["exit"], 3);
    // Invalid kind, field, id, value (5).
    let kind = cli.run_with_input(&["put", "no_such_kind", "x", "--set", "a=-"], b"v");
    let kind = kind.fails_with(5);
    assert!(kind.stderr.contains("known kinds") && kind.stderr.contains("api_key"));
    // An unknown state or action is a usage error that lists the valid ones.
    let state = cli.run(&["list", "--state", "live"]).fails_with(2);
    assert!(state.stderr.contains("rotating"), "{state:?}");
    let action = cli.run(&["audit", "query", "--action", "rotation"]).fails_with(2);
    assert!(action.stderr.contains("rotate_set") && action.stderr.contains("set_policy"));
    let field = cli.run(&["put", "api_key", "x", "--set", "nope=1"]).fails_with(5);
    assert!(field.stderr.contains("key (secret)"), "{field:?}");
    cli.run_with_input(&["put", "api_key", "../escape", "--set", "key=-"], b"v").fails_with(5);
    cli.run_with_input(&["put", "api_key", "x", "--set", "key=-"], b"").fails_with(5);
    // A required secret neither given nor askable (no terminal): 5, and nothing is created.
    cli.run(&["put", "api_key", "x"]).fails_with(5);
    cli.run(&["get", "x"]).fails_with(3);
    // Conflict (4).
    cli.run_with_input(&["put", "api_key", "dup", "--set", "key=-"], b"k1").ok();
    cli.run_with_input(&["put", "api_key", "dup", "--set", "key=-"], b"k2").fails_with(4);
    // A secret file that is not there: 1.
    cli.run(&["put", "api_key", "y", "--set", "key=@missing"]).fails_with(1);
    // Store unusable (9): the database path is a directory. No trail is left beside it.
    std::fs::create_dir(cli.path("not-a-database")).unwrap();
    let dir = format!("sqlite:{}", cli.path("not-a-database").display());
    cli.run(&["--store", &dir, "list"]).fails_with(9);
    assert!(!cli.path("not-a-database.audit.jsonl").exists());
}

#[test]
fn list_filters_and_expiring_soon() {
    let cli = Cli::initialized("list");
    let soon = (chrono::Utc::now() + chrono::TimeDelta::days(2)).to_rfc3339();
    let later = (chrono::Utc::now() + chrono::TimeDelta::days(60)).to_rfc3339();
    std::fs::write(cli.path("akid"), "AKIAIOSFODNN7EXAMPLE").unwrap();
    for (id, expires) in [("aws/soon", &soon), ("aws/later", &later)] {
        let expires = format!("expires={expires}");
        let args = ["put", "aws", id, "--set", "access_key_id=@akid", "--set", "region=eu-west-1"];
        let more = ["--set", "secret_access_key=-", "--set", &expires, "--activate"];
        cli.run_with_input(&[&args[..], &more[..]].concat(), b"wJalrXUtnFEMI/K7MDENG").ok();
    }
    cli.run_with_input(&["put", "api_key", "stripe", "--set", "key=-"], b"sk").ok();
    let all = cli.run(&["--json", "list"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let expiring = cli.run(&["--json", "list", "--expiring", "7d"]).ok().json();
    let ids: Vec<_> =
        expiring.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["aws/soon"]);
    let drafts = cli.run(&["--json", "list", "--state", "draft"]).ok().json();
    assert_eq!(drafts[0]["id"], "stripe");
    let by_kind = cli.run(&["list", "--kind", "aws", "--prefix", "aws/l"]).ok();
    assert!(by_kind.stdout.contains("aws/later") && !by_kind.stdout.contains("aws/soon"));
    cli.run(&["list", "--expiring", "soon"]).fails_with(2);

    let doctor = cli.run(&["doctor"]).ok();
    assert!(doctor.stdout.contains("warn  hygiene: aws/soon expires"), "{doctor:?}");
}

#[test]
fn an_ssh_key_goes_in_from_its_file() {
    if !support::tools::installed(&[("ssh-keygen", "openssh-client")]) {
        return;
    }
    let cli = Cli::initialized("ssh");
    let key = cli.path("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "deploy", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let put = ["put", "ssh_key", "deploy/ssh", "--set", "private_key=@id_ed25519", "--activate"];
    cli.run(&put).ok();
    let shown = cli.run(&["--json", "get", "deploy/ssh"]).ok().json();
    assert_eq!(shown["fields"]["private_key"]["secret"], true);
    let revealed = cli.run(&["get", "deploy/ssh", "--reveal", "-f", "private_key"]).ok();
    let original = std::fs::read_to_string(&key).unwrap();
    assert_eq!(revealed.stdout.trim_end(), original.trim_end());
    // Not a key at all: invalid, exit 5.
    std::fs::write(cli.path("junk"), "not a key").unwrap();
    cli.run(&["put", "ssh_key", "deploy/junk", "--set", "private_key=@junk"]).fails_with(5);
}

#[test]
fn a_certificate_goes_in_from_its_files_with_the_leafs_expiry() {
    if !support::tools::installed(&[("openssl", "openssl")]) {
        return;
    }
    let cli = Cli::initialized("certificate");
    let self_signed = |name: &str, days: &str| {
        let made = std::process::Command::new("openssl")
            .current_dir(cli.path(""))
            .args(["req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-subj", "/CN=credential.test", "-days", days])
            .args(["-keyout", &format!("{name}.key"), "-out", &format!("{name}.crt")])
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
    };
    self_signed("soon", "3");
    self_signed("later", "90");
    let put = ["put", "certificate", "web/tls", "--chain", "@soon.crt", "--private-key", "-"];
    cli.run_with_input(
        &[&put[..], &["--activate"]].concat(),
        &std::fs::read(cli.path("soon.key")).unwrap(),
    )
    .ok();
    let expiring = |cli: &Cli| {
        let listed = cli.run(&["--json", "list", "--expiring", "7d"]).ok().json();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(expiring(&cli), ["web/tls"], "the expiry is the leaf's notAfter");
    let doctor = cli.run(&["doctor"]).ok();
    assert!(doctor.stdout.contains("warn  hygiene: web/tls expires"), "{doctor:?}");

    // Renewed: a rotation from the new files, and the new notAfter is the expiry.
    let rotate = ["rotate", "web/tls", "--chain", "@later.crt", "--private-key", "@later.key"];
    cli.run(&[&rotate[..], &["--commit"]].concat()).ok();
    assert!(expiring(&cli).is_empty());

    // A key that is not the leaf's is refused, and --chain is for certificates only.
    let mismatched =
        ["put", "certificate", "web/bad", "--chain", "@soon.crt", "--private-key", "@later.key"];
    cli.run(&mismatched).fails_with(5);
    cli.run(&["put", "api_key", "k", "--chain", "@soon.crt", "--private-key", "@soon.key"])
        .fails_with(2);
}

#[test]
fn a_trail_that_cannot_be_written_stops_the_command_with_exit_8() {
    let cli = Cli::initialized("audit-failure");
    cli.run_with_input(&["put", "api_key", "kept", "--set", "key=-"], b"sk_kept_canary").ok();
    let full = ["--audit-file", "/dev/full"];
    let put = [&full[..], &["put", "api_key", "new", "--set", "key=-"]].concat();
    let refused = cli.run_with_input(&put, b"sk_new").fails_with(8);
    assert!(refused.stderr.contains("audit failed"), "{refused:?}");
    cli.run(&["get", "new"]).fails_with(3);
    // A reveal the trail cannot record shows nothing.
    let reveal = [&full[..], &["get", "kept", "--reveal"]].concat();
    let refused = cli.run(&reveal).fails_with(8);
    assert!(!refused.all().contains("sk_kept_canary"), "{refused:?}");
}

#[cfg(not(feature = "postgres"))]
#[test]
fn rotate_auto_needs_the_postgres_feature_and_says_so() {
    let cli = Cli::initialized("rotate_auto_without_postgres");
    let run = cli.run(&["rotate", "db/orders", "--auto"]).fails_with(2);
    assert!(run.stderr.contains("`postgres` feature"), "{run:?}");
    let listed = cli.run(&["--json", "rotation", "list"]).ok().json();
    assert_eq!(listed, serde_json::json!([]));
}
