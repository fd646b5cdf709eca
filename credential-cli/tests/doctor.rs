//! `cred doctor`: every check passes on a healthy store, and each kind of trouble is one FAIL
//! line with its fix and exit code 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::os::unix::fs::PermissionsExt;

use support::Cli;

#[test]
fn a_healthy_store_passes_every_check() {
    let cli = Cli::initialized("doctor-healthy");
    cli.run_with_input(&["put", "api_key", "stripe", "--set", "key=-", "--activate"], b"sk").ok();
    let report = cli.run(&["--json", "doctor", "--deep"]).ok().json();
    assert_eq!(report["ok"], true);
    let checks: Vec<_> =
        report["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(
        checks,
        ["key", "store", "master key", "crypto", "audit", "hygiene", "tags", "restores", "deep"]
    );
    assert!(report["checks"].as_array().unwrap().iter().all(|check| check["status"] == "ok"));
}

#[test]
fn a_tampered_audit_trail_fails_with_its_fix() {
    let cli = Cli::initialized("doctor-audit");
    for id in ["a", "b"] {
        cli.run_with_input(&["put", "api_key", id, "--set", "key=-"], b"sk").ok();
    }
    let trail = cli.path("store/credentials.db.audit.jsonl");
    let text = std::fs::read_to_string(&trail).unwrap();
    std::fs::write(&trail, text.replacen("\"a\"", "\"z\"", 1)).unwrap();
    let run = cli.run(&["doctor"]).fails_with(1);
    assert!(run.stdout.contains("FAIL  audit: audit trail tampered with at line 1"), "{run:?}");
    assert!(run.stdout.contains("fix: keep the trail as evidence"));
    cli.run(&["audit", "verify"]).fails_with(6);
}

#[test]
fn an_audit_trail_cut_short_fails_and_a_new_one_is_named_a_warning() {
    let cli = Cli::initialized("doctor-audit-cut");
    for id in ["a", "b"] {
        cli.run_with_input(&["put", "api_key", id, "--set", "key=-"], b"sk").ok();
    }
    let verified = cli.run(&["--json", "audit", "verify"]).ok().json();
    assert_eq!(
        (verified["lines"].as_u64(), verified["anchored_line"].as_u64()),
        (Some(2), Some(2))
    );

    // The last line (the put of `b`) cut off: the chain is intact, the store names line 2.
    let trail = cli.path("store/credentials.db.audit.jsonl");
    let text = std::fs::read_to_string(&trail).unwrap();
    std::fs::write(&trail, format!("{}\n", text.lines().next().unwrap())).unwrap();
    let run = cli.run(&["doctor"]).fails_with(1);
    assert!(run.stdout.contains("FAIL  audit: audit trail tampered with"), "{run:?}");
    assert!(run.stdout.contains("the trail ends at line 1"), "{run:?}");
    cli.run(&["audit", "verify"]).fails_with(6);

    // A trail started afresh: the records name the old one, which doctor says, not as a failure.
    std::fs::remove_file(&trail).unwrap();
    let run = cli.run(&["doctor"]).ok();
    assert!(run.stdout.contains("warn  audit:") && run.stdout.contains("1 other trail"), "{run:?}");
}

#[test]
fn a_wrong_or_exposed_key_and_a_damaged_record_fail() {
    let cli = Cli::new("doctor-records");
    let store = format!("file:{}", cli.path("files").display());
    let store_args = ["--store", store.as_str()];
    cli.run(&[&store_args[..], &["init"]].concat()).ok();
    let put = [&store_args[..], &["put", "api_key", "svc/one", "--set", "key=-", "--activate"]];
    cli.run_with_input(&put.concat(), b"sk_one").ok();

    // Another key: it opens none of the credentials.
    let other = cli.path("other.key");
    let other_args = ["--key-file", other.to_str().unwrap()];
    cli.run(&[&other_args[..], &store_args[..], &["init"]].concat()).fails_with(6);
    let run = cli.run(&[&other_args[..], &store_args[..], &["doctor"]].concat()).fails_with(1);
    assert!(
        run.stdout.contains("FAIL  master key: credentials are sealed under key(s)"),
        "{run:?}"
    );

    // A key file others can read.
    std::fs::set_permissions(&cli.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = cli.run(&[&store_args[..], &["doctor"]].concat()).fails_with(1);
    assert!(run.stdout.contains("FAIL  key:") && run.stdout.contains("fix: chmod 600"), "{run:?}");
    std::fs::set_permissions(&cli.key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // One sealed byte flipped: only the deep check opens it, and says which.
    let record = cli.path("files/default~svc~one.rec");
    let mut bytes = std::fs::read(&record).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&record, &bytes).unwrap();
    cli.run(&[&store_args[..], &["doctor"]].concat()).ok();
    let run = cli.run(&[&store_args[..], &["doctor", "--deep"]].concat()).fails_with(1);
    assert!(
        run.stdout.contains("FAIL  deep: 1 record(s) or sealed version(s) are damaged"),
        "{run:?}"
    );
    assert!(run.stdout.contains("default/svc/one v1"), "{run:?}");
}

/// A file store made through the CLI holding `svc/one`, rotated once (version 1 deprecated, 2
/// current), then rewritten by `edit` as a writer of the directory without the master key would.
fn rotated_then_edited(cli: &Cli, edit: impl FnOnce(&mut credential::store::Record)) -> String {
    use credential::store::{FileStore, Precondition, Store};

    let files = cli.path("files");
    let store = format!("file:{}", files.display());
    cli.run(&["--store", &store, "init"]).ok();
    let put = ["--store", &store, "put", "api_key", "svc/one", "--set", "key=-", "--activate"];
    cli.run_with_input(&put, b"sk_one").ok();
    let rotate = ["--store", &store, "rotate", "svc/one", "--set", "key=-", "--commit"];
    cli.run_with_input(&rotate, b"sk_two").ok();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let files = FileStore::open(&files).await.unwrap();
        let mut record = files.get("default/svc/one").await.unwrap().unwrap();
        let revision = record.meta.revision;
        edit(&mut record);
        files.put(record, Precondition::Revision(revision)).await.unwrap();
    });
    store
}

#[test]
fn an_edited_record_fails_the_deep_check_and_is_never_served() {
    let cli = Cli::new("doctor-edited");
    let store = rotated_then_edited(&cli, |record| {
        for version in &mut record.versions {
            version.state = match version.state {
                credential::VersionState::Current => credential::VersionState::Deprecated,
                _ => credential::VersionState::Current,
            };
        }
    });
    let run = cli.run(&["--store", &store, "doctor", "--deep"]).fails_with(1);
    assert!(run.stdout.contains("default/svc/one (its tag does not match)"), "{run:?}");
    let get = cli.run(&["--store", &store, "get", "svc/one", "--reveal"]).fails_with(6);
    assert!(!get.all().contains("sk_one"), "{get:?}");
}

#[test]
fn an_untagged_record_is_named_until_a_rekey_tags_it() {
    let cli = Cli::new("doctor-untagged");
    let store = rotated_then_edited(&cli, |record| record.meta.tag.clear());
    let run = cli.run(&["--store", &store, "doctor"]).ok();
    assert!(run.stdout.contains("warn  tags: 1 credential(s) written before"), "{run:?}");
    assert!(run.stdout.contains("svc/one") && run.stdout.contains("cred rekey"), "{run:?}");
    cli.run(&["--store", &store, "rekey"]).ok();
    let run = cli.run(&["--store", &store, "doctor", "--deep"]).ok();
    assert!(run.stdout.contains("ok    tags: 1 credential(s), every one tagged"), "{run:?}");
}

#[test]
fn a_record_put_back_from_a_backup_is_named() {
    let cli = Cli::new("doctor-restored");
    let files = cli.path("files");
    let store = format!("file:{}", files.display());
    cli.run(&["--store", &store, "init"]).ok();
    let put = ["--store", &store, "put", "api_key", "svc/one", "--set", "key=-", "--activate"];
    cli.run_with_input(&put, b"sk_one").ok();
    let record = files.join("default~svc~one.rec");
    let backup = std::fs::read(&record).unwrap();
    cli.run(&["--store", &store, "doctor"]).ok();
    let revoke = ["--store", &store, "revoke", "svc/one", "--reason", "leaked"];
    cli.run(&revoke).ok();
    std::fs::write(&record, &backup).unwrap();
    let run = cli.run(&["--store", &store, "doctor"]).fails_with(1);
    assert!(
        run.stdout.contains("FAIL  restores: 1 revoked credential(s) readable again"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("FAIL  restores: 1 credential(s) behind the audit trail"),
        "{run:?}"
    );
    assert!(run.stdout.contains("svc/one"), "{run:?}");
}

#[test]
fn a_damaged_database_is_an_integrity_failure_whose_fix_is_a_backup() {
    let cli = Cli::initialized("doctor-corrupt");
    let db = cli.path("store/credentials.db");
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let list = cli.run(&["list"]).fails_with(6);
    assert!(list.stderr.contains("damaged"), "{list:?}");
    let doctor = cli.run(&["doctor"]).fails_with(1);
    assert!(doctor.stdout.contains("restore the store from a backup"), "{doctor:?}");
    assert!(!doctor.stdout.contains("`cred init` creates"), "{doctor:?}");
}
