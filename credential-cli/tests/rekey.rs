//! `cred rekey` over thousands of credentials: it shows its progress, can be killed part-way,
//! and a second run finishes the job, re-sealing only what the first one did not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use credential::kinds::ApiKey;
use credential::store::Store;
use credential::{KeyRing, ListFilter, Manager, SqliteStore};
use support::Cli;

/// Enough that the first run, killed once it reports a tenth done, is still far from the end when
/// the kill lands (the other nine tenths take over a second), and that progress is reported in
/// steps. `CREDENTIAL_STRESS=1`: 100,000.
fn records() -> usize {
    support::stress::count(2_000, 100_000)
}

async fn sqlite(cli: &Cli) -> SqliteStore {
    SqliteStore::open(cli.path("store/credentials.db")).await.unwrap()
}

/// How many records are sealed under `key_id`.
async fn sealed_under(cli: &Cli, key_id: &str) -> usize {
    let metas = sqlite(cli).await.list(&ListFilter::all()).await.unwrap();
    metas.iter().filter(|meta| meta.key_id == key_id).count()
}

#[tokio::test(flavor = "current_thread")]
async fn a_rekey_of_thousands_of_credentials_can_be_interrupted_and_resumed() {
    let records = records();
    let cli = Cli::initialized("rekey");
    let manager = Manager::builder()
        .store(sqlite(&cli).await)
        .key_ring(KeyRing::from_file(&cli.key_file).unwrap())
        .build()
        .await
        .unwrap();
    for index in 0..records {
        let key = ApiKey::new(format!("sk_{index:05}").into());
        manager.create(&format!("svc/{index:05}"), key).await.unwrap();
    }
    drop(manager);

    // The first run is killed once it reports a tenth done.
    let new_key = cli.path("new.key");
    let mut first = cli
        .command(&["rekey", "--new-key-file", new_key.to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    let mut progress = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done: usize = line
            .strip_prefix("rekey: ")
            .and_then(|rest| rest.split('/').next())
            .and_then(|done| done.parse().ok())
            .unwrap_or(0);
        progress.push(line);
        if done >= records / 10 {
            break;
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(progress.iter().any(|line| line.contains(&format!("/{records} ("))), "{progress:?}");

    let new_id = credential::crypto::MasterKey::from_file(&new_key).unwrap().id().to_string();
    let done_before = sealed_under(&cli, &new_id).await;
    assert!((records / 10..records).contains(&done_before), "{done_before}");
    // Half done, neither key opens the store alone, and the tool says how to finish.
    for key in [&cli.key_file, &new_key] {
        let run = cli.run(&["--key-file", key.to_str().unwrap(), "list"]).fails_with(6);
        assert!(run.stderr.contains("a rekey was interrupted"), "{run:?}");
        assert!(run.stderr.contains("--new-key-file"), "{run:?}");
    }

    // The second run picks up where the first stopped.
    let second = cli.run(&["--json", "rekey", "--new-key-file", new_key.to_str().unwrap()]).ok();
    let report = second.json();
    assert_eq!(report["records"], records);
    assert_eq!(report["resealed"], records - done_before);
    assert_eq!(report["keys_in_use"], serde_json::json!([new_id]));
    let finished = format!("rekey: {records}/{records} (100%)");
    assert!(second.stderr.contains(&finished), "{}", second.stderr);
    assert_eq!(sealed_under(&cli, &new_id).await, records);

    // The new key alone opens everything; the old one no longer does.
    let new = new_key.to_str().unwrap();
    let last = format!("svc/{:05}", records - 1);
    let read = cli.run(&["--key-file", new, "get", &last, "--reveal", "-f", "key"]).ok();
    assert_eq!(read.stdout.trim(), format!("sk_{:05}", records - 1));
    cli.run(&["get", "svc/00000"]).fails_with(6);
    let doctor = cli.run(&["--key-file", new, "doctor"]).ok();
    assert!(doctor.stdout.contains("opens every credential (1 key(s) in use)"), "{doctor:?}");
}
