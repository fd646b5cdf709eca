//! Backups in the age format, checked against the real `age` tool: what `cred export` writes,
//! `age -d` reads; what `age` encrypts, `cred import` restores, under another master key; a
//! truncated or altered backup imports nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::process::Command;

use support::{Cli, contains, files_under};

const CANARY: &str = "sk_live_backup_canary_51Hx";

/// An age identity made by `age-keygen`, and its recipient.
fn age_identity(cli: &Cli) -> (std::path::PathBuf, String) {
    let path = cli.path("identity.txt");
    let made = Command::new("age-keygen").arg("-o").arg(&path).output().expect("age-keygen");
    assert!(made.status.success(), "{made:?}");
    let recipient = Command::new("age-keygen").arg("-y").arg(&path).output().unwrap();
    (path, String::from_utf8(recipient.stdout).unwrap().trim().to_owned())
}

/// A store with an active credential rotated once, a draft, and a revoked one.
fn populated(name: &str) -> Cli {
    let cli = Cli::initialized(name);
    cli.run_with_input(
        &["put", "api_key", "stripe/live", "--set", "key=-", "--activate"],
        b"sk_old_1",
    )
    .ok();
    cli.run_with_input(&["rotate", "stripe/live", "--set", "key=-", "--commit"], CANARY.as_bytes())
        .ok();
    cli.run_with_input(&["put", "bearer_token", "ci/draft", "--set", "token=-"], b"tok_draft").ok();
    cli.run_with_input(&["put", "api_key", "old", "--set", "key=-", "--activate"], b"sk_gone").ok();
    cli.run(&["revoke", "old", "--reason", "rotated out"]).ok();
    cli
}

/// A second store in the same directory, under a different master key.
fn other_store(cli: &Cli) -> [String; 4] {
    let store = format!("sqlite:{}", cli.path("restored/credentials.db").display());
    let key = cli.path("restored.key").display().to_string();
    ["--store".into(), store, "--key-file".into(), key]
}

#[test]
fn a_backup_is_read_by_age_and_restored_under_another_master_key() {
    if !support::tools::installed(&[("age", "age"), ("age-keygen", "age")]) {
        return;
    }
    let cli = populated("backup-x25519");
    let (identity, recipient) = age_identity(&cli);
    let backup = cli.path("backup.age");
    let export = cli.run(&["--json", "export", "-r", &recipient, "-o", backup.to_str().unwrap()]);
    assert_eq!(export.ok().json()["credentials"], 3);
    let bytes = std::fs::read(&backup).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    assert!(!contains(&bytes, CANARY));

    // The real `age` decrypts it, and finds the credentials inside.
    let decrypted = Command::new("age").arg("-d").arg("-i").arg(&identity).arg(&backup).output();
    let decrypted = decrypted.expect("the `age` tool");
    assert!(decrypted.status.success(), "{decrypted:?}");
    let document: serde_json::Value = serde_json::from_slice(&decrypted.stdout).unwrap();
    assert_eq!(document["format"], "credential-backup");
    assert_eq!(document["credentials"].as_array().unwrap().len(), 3);
    // Each version's fields are there to read by hand, secrets in the clear.
    let stripe = document["credentials"].as_array().unwrap().iter();
    let stripe = stripe.clone().find(|credential| credential["id"] == "stripe/live").unwrap();
    assert_eq!(stripe["versions"][0]["fields"]["key"], "sk_old_1");
    assert_eq!(stripe["versions"][1]["fields"]["key"], CANARY);

    // Restored into a new store under a new key: values, history and states come back.
    let other = other_store(&cli);
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    cli.run(&[&other[..], &["init"]].concat()).ok();
    let import = [&other[..], &["--json", "import", backup.to_str().unwrap(), "-i"]].concat();
    let imported = cli.run(&[&import[..], &[identity.to_str().unwrap()]].concat()).ok();
    assert_eq!(imported.json()["credentials"], 3);
    let key = cli.run(&[&other[..], &["get", "stripe/live", "--reveal", "-f", "key"]].concat());
    assert_eq!(key.ok().stdout.trim(), CANARY);
    let history = cli.run(&[&other[..], &["--json", "history", "stripe/live"]].concat()).ok();
    assert_eq!(history.json().as_array().unwrap().len(), 2);
    cli.run(&[&other[..], &["get", "old"]].concat()).fails_with(7);
    let draft = cli.run(&[&other[..], &["--json", "get", "ci/draft"]].concat()).ok().json();
    assert_eq!(draft["state"], "draft");
    cli.run(&[&other[..], &["rollback", "stripe/live", "--to", "1"]].concat()).ok();
    let old = cli.run(&[&other[..], &["get", "stripe/live", "--reveal", "-f", "key"]].concat());
    assert_eq!(old.ok().stdout.trim(), "sk_old_1");
    // The audit trail of the new store names the import.
    let trail =
        cli.run(&[&other[..], &["--json", "audit", "query", "--action", "import"]].concat());
    assert_eq!(trail.ok().json().as_array().unwrap().len(), 3);

    // A second import of the same backup clashes and imports nothing: exit 4.
    let again = cli.run(&[&import[..], &[identity.to_str().unwrap()]].concat()).fails_with(4);
    assert!(again.stderr.contains("nothing was imported"));
    // Neither store's files hold the secret in the clear.
    for (path, bytes) in files_under(&cli.dir) {
        if path != backup {
            assert!(!contains(&bytes, CANARY) || path.ends_with("identity.txt"), "{path:?}");
        }
    }
}

#[test]
fn a_file_made_by_age_imports_and_a_damaged_one_imports_nothing() {
    if !support::tools::installed(&[("age", "age"), ("age-keygen", "age")]) {
        return;
    }
    let cli = populated("backup-age-made");
    let (identity, recipient) = age_identity(&cli);
    let armored = cli.run(&["export", "-r", &recipient, "--armor"]).ok();
    assert!(armored.stdout.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!armored.stdout.contains(CANARY));
    std::fs::write(cli.path("armored.age"), &armored.stdout).unwrap();
    // `age` decrypts the armored form too; its plaintext, encrypted again by `age`, imports.
    let plain = cli.path("plain.json");
    let status = Command::new("age")
        .args(["-d", "-i"])
        .arg(&identity)
        .arg("-o")
        .arg(&plain)
        .arg(cli.path("armored.age"))
        .status()
        .unwrap();
    assert!(status.success());
    let age_made = cli.path("age-made.age");
    let status =
        Command::new("age").args(["-r", &recipient, "-o"]).arg(&age_made).arg(&plain).status();
    assert!(status.unwrap().success());
    // Edited by hand (a field changed, its payload not): encrypted again, it is refused.
    let text = std::fs::read_to_string(&plain).unwrap();
    std::fs::write(&plain, text.replace(CANARY, "sk_live_edited_by_hand")).unwrap();
    let edited = cli.path("edited.age");
    let status =
        Command::new("age").args(["-r", &recipient, "-o"]).arg(&edited).arg(&plain).status();
    assert!(status.unwrap().success());
    std::fs::remove_file(&plain).unwrap();

    let other = other_store(&cli);
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    cli.run(&[&other[..], &["init"]].concat()).ok();
    let bytes = std::fs::read(&age_made).unwrap();
    let id = identity.to_str().unwrap();

    // Truncated: the last chunk is missing. Altered: one payload byte flipped. Edited: a field
    // that no longer matches its payload. Each exits 6 and leaves the store empty.
    let truncated = cli.path("truncated.age");
    std::fs::write(&truncated, &bytes[..bytes.len() - 20]).unwrap();
    let altered = cli.path("altered.age");
    let mut flipped = bytes.clone();
    let at = flipped.len() - 30;
    flipped[at] ^= 0x01;
    std::fs::write(&altered, &flipped).unwrap();
    for damaged in [&truncated, &altered, &edited] {
        let import = [&other[..], &["import", damaged.to_str().unwrap(), "-i", id]].concat();
        let run = cli.run(&import).fails_with(6);
        assert!(run.stderr.contains("nothing was imported"), "{run:?}");
        let listed = cli.run(&[&other[..], &["--json", "list"]].concat()).ok().json();
        assert!(listed.as_array().unwrap().is_empty());
    }
    // Not an age file at all, and the wrong identity: exit 6 too; no identity given: usage.
    let import = [&other[..], &["import", "-", "-i", id]].concat();
    cli.run_with_input(&import, b"hello").fails_with(6);
    let stranger = cli.path("stranger.txt");
    Command::new("age-keygen").arg("-o").arg(&stranger).output().unwrap();
    let import = [&other[..], &["import", age_made.to_str().unwrap(), "-i"]].concat();
    cli.run(&[&import[..], &[stranger.to_str().unwrap()]].concat()).fails_with(6);
    cli.run(&[&other[..], &["import", age_made.to_str().unwrap()]].concat()).fails_with(2);

    // The intact file, from standard input, imports everything.
    let import = [&other[..], &["import", "-", "-i", id]].concat();
    cli.run_with_input(&import, &bytes).ok();
    let listed = cli.run(&[&other[..], &["--json", "list"]].concat()).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

#[test]
fn a_passphrase_backup_round_trips_at_the_terminal() {
    if !support::tools::installed(&[("age", "age"), ("age-keygen", "age"), ("script", "bsdutils")])
    {
        return;
    }
    let cli = populated("backup-passphrase");
    let backup = cli.path("backup.age");
    let passphrase = "a long backup passphrase, canary";
    let export = cli.run_at_terminal(
        &["export", "--passphrase", "-o", backup.to_str().unwrap()],
        &[("New passphrase:", passphrase), ("Repeat the passphrase:", passphrase)],
    );
    assert_eq!(export.code, 0, "{export:?}");
    assert!(!export.stdout.contains(passphrase), "the passphrase is not echoed");
    // Without a terminal there is no one to ask: usage error.
    cli.run(&["export", "--passphrase", "-o", "x.age"]).fails_with(2);

    let other = other_store(&cli);
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    cli.run(&[&other[..], &["init"]].concat()).ok();
    let import = [&other[..], &["import", backup.to_str().unwrap()]].concat();
    let wrong = cli.run_at_terminal(&import, &[("Backup passphrase:", "not it")]);
    assert_eq!(wrong.code, 6, "{wrong:?}");
    let right = cli.run_at_terminal(&import, &[("Backup passphrase:", passphrase)]);
    assert_eq!(right.code, 0, "{right:?}");
    let key = cli.run(&[&other[..], &["get", "stripe/live", "--reveal", "-f", "key"]].concat());
    assert_eq!(key.ok().stdout.trim(), CANARY);
}
