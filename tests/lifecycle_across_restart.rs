//! End to end across a process restart: one process creates, activates and rotates a credential
//! in a SQLite file with a master key file; a second process reopens both and carries on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use credential::VersionState;
use credential::audit::{AuditQuery, AuditSink, JsonlAuditSink};
use credential::crypto::MasterKey;
use credential::prelude::*;

#[derive(Credential)]
#[credential(kind = "database")]
struct Database {
    #[secret]
    password: SecretString,
    host: String,
    port: u16,
}

fn db(password: &str) -> Database {
    Database { password: password.into(), host: "db.internal".into(), port: 5432 }
}

async fn open_manager(dir: &std::path::Path) -> Manager {
    Manager::builder()
        .store(SqliteStore::open(dir.join("credentials.db")).await.unwrap())
        .key_ring(KeyRing::from_file(dir.join("master.key")).unwrap())
        .audit(JsonlAuditSink::open(dir.join("audit.jsonl")).unwrap())
        .environment("production")
        .build()
        .await
        .unwrap()
}

/// The first process: runs only when started by the test below.
#[tokio::test]
#[ignore = "run as a child process by state_survives_a_process_restart"]
async fn first_process() {
    // Run directly (`--include-ignored`), there is no directory to work in.
    let Some(dir) = std::env::var_os("E2E_DIR").map(PathBuf::from) else {
        return;
    };
    let manager = open_manager(&dir).await;
    let active =
        manager.create("db/main", db("first-password")).await.unwrap().activate().await.unwrap();
    // Leave a rotation pending: the next process must find it and commit it.
    active.rotate(db("second-password")).await.unwrap();
}

#[tokio::test]
async fn state_survives_a_process_restart() {
    let dir = Scratch::new();
    MasterKey::generate().unwrap().write_file(dir.join("master.key")).unwrap();

    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "first_process"])
        .env("E2E_DIR", &*dir)
        .output()
        .unwrap();
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed")
    );

    let manager = open_manager(&dir).await;
    let ctx = manager.context(Principal::new("workflow/report", "action/query"));
    assert_eq!(
        ctx.get::<Database>("db/main").await.unwrap().password.expose_secret(),
        "first-password"
    );
    let rotating = manager.load::<Database>("db/main").await.unwrap().into_rotating().unwrap();
    assert_eq!(rotating.pending().password.expose_secret(), "second-password");
    rotating.commit().await.unwrap();
    assert_eq!(
        ctx.get::<Database>("db/main").await.unwrap().password.expose_secret(),
        "second-password"
    );

    let states: Vec<_> =
        manager.history("db/main").await.unwrap().into_iter().map(|v| v.state).collect();
    assert_eq!(states, [VersionState::Deprecated, VersionState::Current]);
    // Read events are written within milliseconds; another handle on the trail sees them once
    // they are.
    manager.audit().flush().await.unwrap();
    let sink = JsonlAuditSink::open(dir.join("audit.jsonl")).unwrap();
    assert_eq!(sink.verify().await.unwrap().lines, 8);
    assert_eq!(sink.query(&AuditQuery::all()).await.unwrap().len(), 8);
    drop((manager, sink));
}

/// The test's directory, removed when dropped, whether the test passed or not.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("credential-e2e-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
