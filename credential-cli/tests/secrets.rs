//! Secret hygiene, end to end: secrets typed at the no-echo prompt or piped in never show up in
//! an argument list, an error, `--json` output, the audit trail, or a file in the clear; a
//! passphrase key asks at the terminal and refuses a mistyped passphrase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use support::{Cli, contains, files_under};

const CANARY: &str = "ghp_cli_canary_7f3a9d2e";

#[test]
fn a_prompted_secret_is_not_echoed_and_is_stored_sealed() {
    if !support::tools::installed(&[("script", "bsdutils")]) {
        return;
    }
    let cli = Cli::initialized("prompt");
    let put = cli.run_at_terminal(
        &["put", "bearer_token", "ci/deploy", "--activate"],
        &[("token (secret, required):", CANARY)],
    );
    assert_eq!(put.code, 0, "{put:?}");
    assert!(!put.stdout.contains(CANARY), "echoed: {}", put.stdout);
    let revealed = cli.run(&["get", "ci/deploy", "--reveal", "--field", "token"]).ok();
    assert_eq!(revealed.stdout.trim(), CANARY);
    // A rotation at the terminal: an empty answer keeps the current value.
    let kept = cli.run_at_terminal(
        &["rotate", "ci/deploy", "--commit"],
        &[("token (secret, empty keeps it):", "")],
    );
    assert_eq!(kept.code, 0, "{kept:?}");
    let revealed = cli.run(&["get", "ci/deploy", "--reveal", "--field", "token"]).ok();
    assert_eq!(revealed.stdout.trim(), CANARY);
}

#[test]
fn a_canary_appears_only_where_it_was_asked_for() {
    let cli = Cli::initialized("canary");
    let mut outputs = Vec::new();
    let put = ["--json", "put", "bearer_token", "ci/deploy", "--set", "token=-", "--activate"];
    outputs.push(cli.run_with_input(&put, CANARY.as_bytes()).ok());
    // Given on the command line by mistake: refused, and not repeated.
    let literal = format!("token={CANARY}");
    let refused = cli.run(&["--json", "put", "bearer_token", "ci/other", "--set", &literal]);
    let refused = refused.fails_with(2);
    assert!(refused.stderr.contains("token=@FILE"));
    outputs.push(refused);
    let rotate = ["--json", "rotate", "ci/deploy", "--set", &literal];
    outputs.push(cli.run(&rotate).fails_with(2));
    // Every read-only command, in both output forms, and every error.
    for args in [
        &["get", "ci/deploy"][..],
        &["--json", "get", "ci/deploy"],
        &["list"],
        &["--json", "list"],
        &["history", "ci/deploy"],
        &["audit", "query"],
        &["--json", "audit", "query"],
        &["--json", "audit", "summary"],
        &["audit", "verify"],
        &["doctor", "--deep"],
        &["--json", "doctor", "--deep"],
        &["--json", "get", "ci/deploy", "--field", "token"],
        &["--json", "activate", "ci/deploy"],
        &["--json", "commit", "ci/deploy"],
    ] {
        outputs.push(cli.run(args));
    }
    for run in &outputs {
        assert!(!run.all().contains(CANARY), "leaked: {run:?}");
    }
    // The one place it shows: an explicit reveal, which the trail records.
    let revealed = cli.run(&["--json", "get", "ci/deploy", "--reveal"]).ok();
    assert_eq!(revealed.json()["fields"]["token"]["value"], CANARY);
    let reveals = cli.run(&["--json", "audit", "query", "--action", "reveal"]).ok().json();
    assert_eq!(reveals.as_array().unwrap().len(), 1);
    assert_eq!(reveals[0]["principal"], "ops:tester");
    // No file under the store holds it: database, audit trail, key file.
    let files = files_under(&cli.dir);
    assert!(files.len() >= 3, "{:?}", files.iter().map(|(p, _)| p).collect::<Vec<_>>());
    for (path, bytes) in files {
        assert!(!contains(&bytes, CANARY), "{path:?} holds the canary");
    }
}

/// A file store under `cli`'s directory with a passphrase key, the passphrase typed at a
/// terminal: its URL, and the run of `init`.
fn passphrase_store(cli: &Cli, passphrase: &str) -> (String, support::Run) {
    let store = format!("file:{}", cli.path("files").display());
    let init = cli.run_at_terminal(
        &["--store", &store, "init", "--passphrase"],
        &[("New passphrase:", passphrase), ("Repeat the passphrase:", passphrase)],
    );
    assert_eq!(init.code, 0, "{init:?}");
    (store, init)
}

#[test]
fn a_passphrase_key_is_asked_for_and_a_wrong_one_is_refused() {
    if !support::tools::installed(&[("script", "bsdutils")]) {
        return;
    }
    let cli = Cli::with_passphrase("passphrase");
    let passphrase = "correct horse battery canary";
    let (store, init) = passphrase_store(&cli, passphrase);
    assert!(cli.path("files/passphrase.kdf").exists());
    let put = ["--store", &store, "put", "api_key", "k", "--set", "key=@/dev/stdin"];
    // No terminal: nothing to ask the passphrase with.
    cli.run(&put).fails_with(2);

    let list = ["--store", &store, "--json", "list"];
    let wrong = cli.run_at_terminal(&list, &[("Passphrase:", "correct horse battery")]);
    assert_eq!(wrong.code, 6, "{wrong:?}");
    assert!(wrong.stdout.contains("wrong passphrase"));
    let right = cli.run_at_terminal(&list, &[("Passphrase:", passphrase)]);
    assert_eq!(right.code, 0, "{right:?}");
    let doctor =
        cli.run_at_terminal(&["--store", &store, "doctor"], &[("Passphrase:", passphrase)]);
    assert!(doctor.stdout.contains("ok    key: master key"), "{doctor:?}");
    // A secret piped in, the passphrase typed at the terminal: both at once.
    let piped = format!(
        "printf 'sk_piped_7d1e' | {}",
        cli.shell_line(&["--store", &store, "put", "api_key", "piped", "--set", "key=-"])
    );
    let put_piped = cli.run_line_at_terminal(&piped, &[("Passphrase:", passphrase)]);
    assert_eq!(put_piped.code, 0, "{put_piped:?}");
    let get = ["--store", &store, "get", "piped", "--reveal", "--field", "key"];
    let revealed = cli.run_at_terminal(&get, &[("Passphrase:", passphrase)]);
    assert!(revealed.stdout.contains("sk_piped_7d1e"), "{revealed:?}");
    for run in [&init, &wrong, &right, &doctor, &put_piped] {
        assert!(!run.all().contains(passphrase));
    }
}

#[test]
fn ctrl_c_at_a_hidden_prompt_leaves_the_terminal_echoing() {
    if !support::tools::installed(&[("script", "bsdutils")]) {
        return;
    }
    let cli = Cli::with_passphrase("ctrl-c");
    let (store, _) = passphrase_store(&cli, "correct horse battery");
    // Ctrl-C (the terminal turns it into SIGINT) while echo is off; then the terminal's settings.
    // The shell around it traps the signal, so it goes on to print them.
    let line = format!(
        "trap : INT; {}; echo \"exit=$?\"; stty -a",
        cli.shell_line(&["--store", &store, "list"])
    );
    let interrupted = cli.run_line_at_terminal(&line, &[("Passphrase:", "\u{3}")]);
    assert!(interrupted.stdout.contains("exit=130"), "{interrupted:?}");
    let settings = interrupted.stdout.split("exit=130").nth(1).unwrap_or_default().to_owned();
    assert!(
        settings.split_whitespace().any(|setting| setting == "echo"),
        "echo is still off: {settings}"
    );
}

#[test]
fn a_passphrase_file_serves_cron_and_ci_and_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::with_passphrase("passphrase-file");
    let store = format!("file:{}", cli.path("files").display());
    let file = cli.path("passphrase");
    std::fs::write(&file, "correct horse battery file\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_file = ["--store", &store, "--passphrase-file", file.to_str().unwrap()];
    cli.run(&[&with_file[..], &["init", "--passphrase"]].concat()).ok();
    let put = [&with_file[..], &["put", "api_key", "nightly", "--set", "key=-"]].concat();
    cli.run_with_input(&put, b"sk_nightly").ok();
    let key = cli.run(&[&with_file[..], &["get", "nightly", "--reveal", "-f", "key"]].concat());
    assert_eq!(key.ok().stdout.trim(), "sk_nightly");
    // The same through the environment, as a cron job sets it.
    let mut listed = cli.command(&["--store", &store, "list"]);
    let listed = listed.env("CRED_PASSPHRASE_FILE", &file).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    // A wrong passphrase is refused as at the terminal; a file others can read is refused.
    let wrong = cli.path("wrong");
    std::fs::write(&wrong, "not it\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_wrong = ["--store", &store, "--passphrase-file", wrong.to_str().unwrap(), "list"];
    cli.run(&with_wrong).fails_with(6);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = cli.run(&[&with_file[..], &["list"]].concat()).fails_with(5);
    assert!(open.stderr.contains("chmod 600"), "{open:?}");
}
