//! A revoke committed in one process is refused by a manager in another process on the same
//! SQLite file, file-store directory, PostgreSQL database or OpenBao KV mount within 100 ms,
//! although that manager caches for an hour; on PostgreSQL also when the other process's listener
//! connection was just terminated by the server or its backend hangs (SIGSTOP). OpenBao has no
//! change feed: the bound holds because a manager over a store without one serves a cached value
//! for at most the feeds' lag.
//!
//! The reader is this test binary re-run as a child (`--ignored --exact reader_process`). For each
//! round the parent creates a credential and tells the child to read it; once the child has it
//! cached it says so and keeps reading, noting when each successful read started, until one is
//! refused. The parent revokes and notes when the revoke returned. No read that started more
//! than 100 ms after that may have succeeded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::support;

use std::io::BufRead;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use credential::crypto::MasterKey;
use credential::kinds::ApiKey;
use credential::store::{FileStore, PostgresStore, Store, VaultStore};
use credential::{CacheConfig, KeyRing, Manager, Principal, SecretString, SqliteStore};
use support::conversation::{Conversation, TAG, child_test};
use support::vault::Bao;
use support::{PgSchema, feed_backends, psql, scratch_dir};

const ROUNDS: usize = 20;
const BOUND: Duration = Duration::from_millis(100);

fn unix_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// A manager caching for an hour over `backend`'s store in `dir` (or at the PostgreSQL `url`, or
/// on the OpenBao KV mount `url` names).
async fn open_manager(backend: &str, dir: &Path, url: &str) -> Manager {
    let store: Arc<dyn Store> = match backend {
        "sqlite" => Arc::new(SqliteStore::open(dir.join("credentials.db")).await.unwrap()),
        "file" => Arc::new(FileStore::open(dir.join("records")).await.unwrap()),
        "postgres" => Arc::new(PostgresStore::connect(url).await.unwrap()),
        "vault" => {
            let bao = Bao::shared("reader").unwrap();
            let builder = VaultStore::builder(&bao.address).token(SecretString::from(bao.token));
            Arc::new(builder.mount(url).connect().await.unwrap())
        }
        other => panic!("unknown backend {other}"),
    };
    Manager::builder()
        .store(store)
        .key_ring(KeyRing::from_file(dir.join("master.key")).unwrap())
        .cache(CacheConfig::new(Duration::from_secs(3600), 1_000))
        .build()
        .await
        .unwrap()
}

/// The reader: for each `READ <id>` on stdin, reads `<id>` until it is cached, says `READY`, then
/// reads in a loop until refused and reports `DONE <last success start> <refusal> <error code>`.
/// Does nothing when not started by one of the tests below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the tests below"]
async fn reader_process() {
    // Run directly (`--include-ignored`), there is no parent to serve.
    let (Ok(backend), Ok(dir)) = (std::env::var("READER_BACKEND"), std::env::var("READER_DIR"))
    else {
        return;
    };
    let url = std::env::var("READER_POSTGRES_URL").unwrap_or_default();
    let manager = open_manager(&backend, Path::new(&dir), &url).await;
    let ctx = manager.context(Principal::named("reader"));
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let Some(id) = line.strip_prefix("READ ") else { break };
        ctx.get::<ApiKey>(id).await.unwrap();
        println!("{TAG}READY");
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut last_success = 0;
        loop {
            let started = unix_nanos();
            match ctx.get::<ApiKey>(id).await {
                Ok(_) if Instant::now() < give_up => last_success = started,
                Ok(_) => {
                    println!("{TAG}DONE {last_success} 0 still-served");
                    break;
                }
                Err(error) => {
                    println!("{TAG}DONE {last_success} {} {}", unix_nanos(), error.code());
                    break;
                }
            }
        }
    }
}

/// The reader child, started for `backend`'s store in `dir` (or at `url`).
fn start_reader(backend: &str, dir: &Path, url: &str) -> Conversation {
    let mut command = child_test(module_path!(), "reader_process");
    command.env("READER_BACKEND", backend).env("READER_DIR", dir).env("READER_POSTGRES_URL", url);
    Conversation::start(command)
}

/// What happens to the reader's change feed right before each revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disruption {
    None,
    /// The server ends the reader's listener connection (`pg_terminate_backend`).
    TerminateListener,
    /// The reader's listener backend stops answering (SIGSTOP), silently.
    StopListener,
}

async fn revokes_reach_the_other_process(backend: &str, rounds: usize, disruption: Disruption) {
    let dir = scratch_dir(&format!("revoke-across-{backend}-{disruption:?}"));
    let schema = match backend {
        "postgres" => match PgSchema::create(&format!("revoke_{disruption:?}")) {
            Some(schema) => Some(schema),
            None => return,
        },
        _ => None,
    };
    let bao = match backend {
        "vault" => match Bao::shared("revoke_across_processes") {
            Some(bao) => Some(bao),
            None => return,
        },
        _ => None,
    };
    let mount = bao.as_ref().map(|bao| bao.kv_mount("revoke-across"));
    let url = match (&schema, &mount) {
        (Some(schema), _) => schema.url.clone(),
        (_, Some(mount)) => mount.path.clone(),
        _ => String::new(),
    };
    MasterKey::generate().unwrap().write_file(dir.join("master.key")).unwrap();
    let writer = open_manager(backend, &dir, &url).await;
    let mut reader = start_reader(backend, &dir, &url);
    let mut worst = Duration::ZERO;
    for round in 0..rounds {
        let id = format!("revoke/round-{round}");
        let key = ApiKey::new(format!("sk_round_{round}").into());
        let active = writer.create(&id, key).await.unwrap().activate().await.unwrap();
        reader.send(&format!("READ {id}"));
        assert_eq!(reader.expect(), "READY");
        let stopped = disrupt(&url, reader.child.id(), disruption);
        active.revoke("leaked").await.unwrap();
        let revoked_at = unix_nanos();
        let done = reader.expect();
        for pid in stopped {
            signal("CONT", pid);
        }
        let fields: Vec<&str> = done.split(' ').collect();
        assert_eq!(fields[0], "DONE", "{done}");
        assert_eq!(fields[3], "revoked", "round {round}: the reader never saw the revoke");
        let last_success: u128 = fields[1].parse().unwrap();
        let late = Duration::from_nanos(last_success.saturating_sub(revoked_at) as u64);
        worst = worst.max(late);
    }
    reader.send("STOP");
    assert!(reader.child.wait().unwrap().success());
    println!(
        "{backend} ({disruption:?}): latest successful read began {worst:?} after the revoke returned"
    );
    assert!(worst <= BOUND, "{backend}: a read {worst:?} after the revoke was still served");
}

/// Disrupts the change feed of process `reader`; returns the backends it stopped.
fn disrupt(url: &str, reader: u32, disruption: Disruption) -> Vec<u32> {
    if disruption == Disruption::None {
        return Vec::new();
    }
    // After the previous round's disruption the reader's feed may still be reconnecting: wait
    // until it listens again, on one connection.
    let mut backends = feed_backends(url, reader);
    for _ in 0..200 {
        if backends.len() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        backends = feed_backends(url, reader);
    }
    assert_eq!(backends.len(), 1, "the reader listens on one connection: {backends:?}");
    match disruption {
        Disruption::TerminateListener => {
            psql(url, &format!("SELECT pg_terminate_backend({})", backends[0]));
            Vec::new()
        }
        _ => {
            signal("STOP", backends[0]);
            backends
        }
    }
}

fn signal(name: &str, pid: u32) {
    let status =
        Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_in_one_process_is_refused_in_another_on_sqlite() {
    revokes_reach_the_other_process("sqlite", ROUNDS, Disruption::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_in_one_process_is_refused_in_another_on_a_file_store() {
    revokes_reach_the_other_process("file", ROUNDS, Disruption::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_in_one_process_is_refused_in_another_on_postgres() {
    revokes_reach_the_other_process("postgres", ROUNDS, Disruption::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_in_one_process_is_refused_in_another_on_openbao() {
    revokes_reach_the_other_process("vault", ROUNDS, Disruption::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_is_refused_in_another_process_whose_listener_was_just_terminated() {
    revokes_reach_the_other_process("postgres", 5, Disruption::TerminateListener).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_is_refused_in_another_process_whose_listener_hangs() {
    revokes_reach_the_other_process("postgres", 5, Disruption::StopListener).await;
}
