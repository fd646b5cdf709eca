//! Audit trails: the hash-chained JSONL file detects every kind of tampering; the SQL sink keeps
//! events beside the records; queries and summaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use credential::prelude::*;
use credential::{
    AuditAction, AuditOutcome, AuditQuery, AuditSink, Error, JsonlAuditSink, SqliteAuditSink,
};
use support::scratch_dir;

#[derive(Credential)]
#[credential(kind = "api_key")]
struct ApiKey {
    #[secret]
    key: SecretString,
}

/// Writes a trail of `reads` reads plus the lifecycle of one credential; returns its lines.
async fn trail(path: &std::path::Path, reads: usize) -> Vec<String> {
    let sink = JsonlAuditSink::open(path).unwrap();
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .audit(sink.clone())
        .build()
        .await
        .unwrap();
    let active = manager
        .create("api/key", ApiKey { key: "k1".into() })
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();
    let ctx = manager.context(Principal::new("workflow/a", "action/b"));
    for _ in 0..reads {
        ctx.get::<ApiKey>("api/key").await.unwrap();
    }
    active.rotate(ApiKey { key: "k2".into() }).await.unwrap().commit().await.unwrap();
    let report = sink.verify().await.unwrap();
    assert_eq!(report.lines as usize, 4 + reads);
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

async fn verify_lines(
    path: &std::path::Path,
    lines: &[String],
) -> credential::Result<credential::ChainReport> {
    std::fs::write(path, lines.iter().map(|line| format!("{line}\n")).collect::<String>()).unwrap();
    JsonlAuditSink::open(path).unwrap().verify().await
}

fn broken_at(result: credential::Result<credential::ChainReport>) -> Option<u64> {
    match result {
        Err(Error::AuditTampered { line, .. }) => line,
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[tokio::test]
async fn an_edited_line_is_detected() {
    let path = scratch_dir("audit-edit").join("audit.jsonl");
    let mut lines = trail(&path, 3).await;
    lines[2] = lines[2].replace("workflow/a:action/b", "workflow/x:action/y");
    assert_eq!(broken_at(verify_lines(&path, &lines).await), Some(3));
}

#[tokio::test]
async fn a_deleted_line_is_detected() {
    let path = scratch_dir("audit-delete").join("audit.jsonl");
    let mut lines = trail(&path, 3).await;
    lines.remove(1);
    assert_eq!(broken_at(verify_lines(&path, &lines).await), Some(2));
}

#[tokio::test]
async fn an_inserted_line_is_detected() {
    let path = scratch_dir("audit-insert").join("audit.jsonl");
    let mut lines = trail(&path, 3).await;
    let copy = lines[1].clone();
    lines.insert(3, copy);
    assert_eq!(broken_at(verify_lines(&path, &lines).await), Some(4));
}

#[tokio::test]
async fn reordered_lines_are_detected() {
    let path = scratch_dir("audit-reorder").join("audit.jsonl");
    let mut lines = trail(&path, 3).await;
    lines.swap(2, 3);
    assert_eq!(broken_at(verify_lines(&path, &lines).await), Some(3));
}

#[tokio::test]
async fn an_untouched_trail_verifies_and_answers_queries() {
    let path = scratch_dir("audit-ok").join("audit.jsonl");
    trail(&path, 5).await;
    let sink = JsonlAuditSink::open(&path).unwrap();
    let report = sink.verify().await.unwrap();
    assert_eq!(report.lines, 9);
    let reads = sink.query(&AuditQuery::all().action(AuditAction::Read)).await.unwrap();
    assert_eq!(reads.len(), 5);
    let last_two = sink.query(&AuditQuery::all().limit(2)).await.unwrap();
    assert_eq!(
        last_two.iter().map(|e| e.action).collect::<Vec<_>>(),
        [AuditAction::Rotate, AuditAction::Commit]
    );
    let summary = sink.summary(&AuditQuery::all()).await.unwrap();
    assert_eq!(summary.by_principal.get("workflow/a:action/b"), Some(&5));
    assert_eq!(summary.by_credential.get("api/key"), Some(&9));
}

#[tokio::test]
async fn sql_sink_keeps_events_in_the_store_database() {
    let store = SqliteStore::open(scratch_dir("audit-sql").join("credentials.db")).await.unwrap();
    let sink = SqliteAuditSink::new(&store).unwrap();
    let manager = Manager::builder()
        .store(store.clone())
        .key_ring(KeyRing::generate().unwrap())
        .audit(sink.clone())
        .build()
        .await
        .unwrap();
    manager.create("api/key", ApiKey { key: "k".into() }).await.unwrap().activate().await.unwrap();
    let ctx = manager.context(Principal::new("workflow/a", "action/b"));
    ctx.get::<ApiKey>("api/key").await.unwrap();
    assert!(ctx.get::<ApiKey>("api/missing").await.is_err());

    let all = sink.query(&AuditQuery::all()).await.unwrap();
    let actions: Vec<_> = all.iter().map(|e| (e.action, e.outcome)).collect();
    assert_eq!(
        actions,
        [
            (AuditAction::Create, AuditOutcome::Success),
            (AuditAction::Activate, AuditOutcome::Success),
            (AuditAction::Read, AuditOutcome::Success),
            (AuditAction::Read, AuditOutcome::Failure)
        ]
    );
    let failures = sink.query(&AuditQuery::all().outcome(AuditOutcome::Failure)).await.unwrap();
    assert_eq!(failures[0].error.as_deref(), Some("not_found"));
    let window = sink
        .query(
            &AuditQuery::all().between(all[1].time, all[3].time).principal("workflow/a:action/b"),
        )
        .await
        .unwrap();
    assert_eq!(window.len(), 1);
    let summary = sink.summary(&AuditQuery::all().credential("api/key")).await.unwrap();
    assert_eq!(summary.by_credential.get("api/key"), Some(&3));
}

#[tokio::test]
async fn a_failing_audit_sink_stops_mutations() {
    struct Broken;
    #[async_trait::async_trait]
    impl AuditSink for Broken {
        async fn record(&self, _: credential::AuditEvent) -> credential::Result<()> {
            Err(Error::Audit { reason: "disk full".into() })
        }
        fn record_read(&self, _: credential::AuditEvent) -> credential::Result<()> {
            Err(Error::Audit { reason: "disk full".into() })
        }
        async fn query(&self, _: &AuditQuery) -> credential::Result<Vec<credential::AuditEvent>> {
            Ok(Vec::new())
        }
    }
    let store = std::sync::Arc::new(MemoryStore::new());
    let manager = Manager::builder()
        .store(std::sync::Arc::clone(&store))
        .key_ring(KeyRing::generate().unwrap())
        .audit(Broken)
        .build()
        .await
        .unwrap();
    assert!(matches!(
        manager.create("a", ApiKey { key: "k".into() }).await,
        Err(Error::Audit { .. })
    ));
    use credential::Store;
    assert!(
        store.list(&credential::ListFilter::all()).await.unwrap().is_empty(),
        "an unaudited change was stored"
    );
}
