//! Audit trails: the hash-chained JSONL file detects every kind of tampering; the SQL sink keeps
//! events beside the records; queries and summaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use credential::audit::{
    AuditAction, AuditOutcome, AuditQuery, AuditSink, JsonlAuditSink, SqliteAuditSink,
};
use credential::prelude::*;
use credential::store::Store;
use credential::{Error, SqliteStore};
use support::scratch_dir;

#[derive(Credential)]
#[credential(kind = "audited_key")]
struct ApiKey {
    #[secret]
    key: SecretString,
}

/// A manager over a memory store, auditing to `sink`.
async fn manager_auditing_to(sink: impl AuditSink) -> Manager {
    Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .audit(sink)
        .build()
        .await
        .unwrap()
}

/// A manager auditing to `sink` with `api/key` active, and a workflow's context.
async fn active_key_audited_to(
    sink: impl AuditSink,
) -> (Manager, credential::Managed<ApiKey, credential::Active>, credential::Context) {
    let manager = manager_auditing_to(sink).await;
    let draft = manager.create("api/key", ApiKey { key: "k1".into() }).await.unwrap();
    let active = draft.activate().await.unwrap();
    let ctx = manager.context(Principal::new("workflow/a", "action/b"));
    (manager, active, ctx)
}

/// Writes a trail of `reads` reads plus the lifecycle of one credential; returns its lines.
async fn trail(path: &std::path::Path, reads: usize) -> Vec<String> {
    let sink = JsonlAuditSink::open(path).unwrap();
    let (_manager, active, ctx) = active_key_audited_to(sink.clone()).await;
    for _ in 0..reads {
        ctx.get::<ApiKey>("api/key").await.unwrap();
        // Each read in a batch of its own, so none is coalesced with the next: one line each.
        sink.verify().await.unwrap();
    }
    active.rotate(ApiKey { key: "k2".into() }).await.unwrap().commit().await.unwrap();
    let report = sink.verify().await.unwrap();
    assert_eq!(report.lines as usize, 4 + reads);
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

async fn verify_lines(
    path: &std::path::Path,
    lines: &[String],
) -> credential::Result<credential::audit::ChainReport> {
    write_lines(path, lines);
    JsonlAuditSink::open(path).unwrap().verify().await
}

fn broken_at(result: credential::Result<credential::audit::ChainReport>) -> Option<u64> {
    match result {
        Err(Error::AuditTampered { line, .. }) => line,
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[tokio::test]
async fn an_edited_line_is_detected() {
    let scratch = scratch_dir("audit-edit");
    let path = scratch.join("audit.jsonl");
    let mut lines = trail(&path, 3).await;
    lines[2] = lines[2].replace("workflow/a:action/b", "workflow/x:action/y");
    assert_eq!(broken_at(verify_lines(&path, &lines).await), Some(3));
}

#[tokio::test]
async fn a_deleted_line_is_detected() {
    let scratch = scratch_dir("audit-delete");
    let path = scratch.join("audit.jsonl");
    let mut lines = trail(&path, 3).await;
    lines.remove(1);
    assert_eq!(broken_at(verify_lines(&path, &lines).await), Some(2));
}

#[tokio::test]
async fn an_inserted_line_is_detected() {
    let scratch = scratch_dir("audit-insert");
    let path = scratch.join("audit.jsonl");
    let mut lines = trail(&path, 3).await;
    let copy = lines[1].clone();
    lines.insert(3, copy);
    assert_eq!(broken_at(verify_lines(&path, &lines).await), Some(4));
}

#[tokio::test]
async fn reordered_lines_are_detected() {
    let scratch = scratch_dir("audit-reorder");
    let path = scratch.join("audit.jsonl");
    let mut lines = trail(&path, 3).await;
    lines.swap(2, 3);
    assert_eq!(broken_at(verify_lines(&path, &lines).await), Some(3));
}

#[tokio::test]
async fn an_untouched_trail_verifies_and_answers_queries() {
    let scratch = scratch_dir("audit-ok");
    let path = scratch.join("audit.jsonl");
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
    let scratch = scratch_dir("audit-sql");
    let store = SqliteStore::open(scratch.join("credentials.db")).await.unwrap();
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
        async fn record(&self, _: credential::audit::AuditEvent) -> credential::Result<()> {
            Err(Error::audit("disk full"))
        }
        fn record_read(&self, _: credential::audit::AuditEvent) -> credential::Result<()> {
            Err(Error::audit("disk full"))
        }
        async fn query(
            &self,
            _: &AuditQuery,
        ) -> credential::Result<Vec<credential::audit::AuditEvent>> {
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
    use credential::store::Store;
    assert!(
        store.list(&credential::ListFilter::all()).await.unwrap().is_empty(),
        "an unaudited change was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_and_reasons_leave_the_trail_working() {
    let dir = scratch_dir("audit-hostile");
    let path = dir.join("audit.jsonl");
    let sink = JsonlAuditSink::open(&path).unwrap();
    let (manager, active, ctx) = active_key_audited_to(sink.clone()).await;

    // A 70 KB id is refused before it reaches an event; the trail records a bounded stand-in.
    let huge_id = "a".repeat(70_000);
    assert!(matches!(ctx.get::<ApiKey>(&huge_id).await, Err(Error::InvalidId { .. })));
    let odd_id = format!("../{}\n\u{0}", "x".repeat(300));
    assert!(matches!(ctx.get::<ApiKey>(&odd_id).await, Err(Error::InvalidId { .. })));
    // A principal name of 100 KB is cut, with a digest that keeps it apart from others.
    let loud = manager.context(Principal::named(&"p".repeat(100_000)));
    loud.get::<ApiKey>("api/key").await.unwrap();
    // A 1 MB reason is cut too.
    active.revoke(&"r".repeat(1_000_000)).await.unwrap();

    // Everything after still works, and the chain verifies.
    manager.create("api/other", ApiKey { key: "k2".into() }).await.unwrap();
    let report = sink.verify().await.unwrap();
    assert_eq!(report.lines, 7);
    let longest = std::fs::read_to_string(&path).unwrap().lines().map(str::len).max().unwrap();
    assert!(longest < 4_096, "an audit line of {longest} bytes");
    let events = sink.query(&AuditQuery::all()).await.unwrap();
    assert!(events.iter().all(|event| event.credential.len() <= 1_000));
    assert!(
        events
            .iter()
            .all(|event| event.principal.len() <= credential::audit::MAX_AUDIT_PRINCIPAL_LEN)
    );
    let revoke = events.iter().find(|event| event.action == AuditAction::Revoke).unwrap();
    assert!(revoke.reason.as_ref().unwrap().len() <= credential::audit::MAX_AUDIT_REASON_LEN);
}

/// A manager over an SQLite store in `dir`, auditing to the trail at `path`.
async fn sqlite_manager_with_trail(
    dir: &std::path::Path,
    path: &std::path::Path,
    ring: &KeyRing,
) -> (Manager, JsonlAuditSink, SqliteStore) {
    let store = SqliteStore::open(dir.join("store.db")).await.unwrap();
    let sink = JsonlAuditSink::open(path).unwrap();
    let manager = Manager::builder()
        .store(store.clone())
        .key_ring(ring.clone())
        .audit(sink.clone())
        .build()
        .await
        .unwrap();
    (manager, sink, store)
}

fn write_lines(path: &std::path::Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|line| format!("{line}\n")).collect::<String>()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trail_whose_end_was_cut_off_fails_against_the_store() {
    let dir = scratch_dir("audit-anchor");
    let path = dir.join("audit.jsonl");
    let ring = KeyRing::generate().unwrap();
    let (manager, sink, store) = sqlite_manager_with_trail(&dir, &path, &ring).await;
    let active = manager.create("api/key", ApiKey { key: "k1".into() }).await.unwrap();
    let active = active.activate().await.unwrap();
    let ctx = manager.context(Principal::new("workflow/a", "action/b"));
    ctx.get::<ApiKey>("api/key").await.unwrap();
    active.rotate(ApiKey { key: "k2".into() }).await.unwrap().commit().await.unwrap();
    manager.shutdown().await.unwrap();

    // create, activate, read, rotate, commit: the record names the commit's line.
    let report = sink.verify_against_store(&store).await.unwrap();
    assert_eq!((report.lines, report.anchored_line, report.other_trails), (5, Some(5), 0));
    let lines: Vec<String> =
        std::fs::read_to_string(&path).unwrap().lines().map(str::to_owned).collect();

    // The last line cut off: the chain alone still verifies; against the store it does not.
    write_lines(&path, &lines[..4]);
    let reopened = JsonlAuditSink::open(&path).unwrap();
    assert_eq!(reopened.verify().await.unwrap().lines, 4, "a cut end leaves a valid chain");
    match reopened.verify_against_store(&store).await {
        Err(Error::AuditTampered { line: None, reason }) => {
            assert!(reason.contains("ends at line 4") && reason.contains("line 5"), "{reason}");
        }
        other => panic!("the cut was not noticed: {other:?}"),
    }

    // Cut further and written on by another manager: the chain is valid and longer than before,
    // and new records name its new lines, but line 5 is not the line `api/key` names.
    write_lines(&path, &lines[..2]);
    let (manager, sink, _) = sqlite_manager_with_trail(&dir, &path, &ring).await;
    for id in ["other/a", "other/b", "other/c", "other/d"] {
        manager.create(id, ApiKey { key: "k".into() }).await.unwrap();
    }
    manager.shutdown().await.unwrap();
    assert_eq!(sink.verify().await.unwrap().lines, 6);
    assert_eq!(broken_at(sink.verify_against_store(&store).await), Some(5));

    // A new, empty trail: the store's records name another trail, which is no cut of this one.
    let fresh = JsonlAuditSink::open(dir.join("fresh.jsonl")).unwrap();
    let report = fresh.verify_against_store(&store).await.unwrap();
    assert_eq!((report.lines, report.anchored_line, report.other_trails), (0, None, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_torn_by_a_crash_is_cut_before_the_next_append() {
    let dir = scratch_dir("audit-tail");
    let path = dir.join("audit.jsonl");
    let lines = trail(&path, 1).await;
    // A line half-written by a crash is cut off before the next append.
    let mut torn = lines.join("\n");
    torn.push_str("\n{\"seq\":6,\"prev\":\"abc");
    std::fs::write(&path, torn).unwrap();
    let reopened = JsonlAuditSink::open(&path).unwrap();
    let manager = manager_auditing_to(reopened.clone()).await;
    manager.create("api/key", ApiKey { key: "k".into() }).await.unwrap();
    assert_eq!(reopened.verify().await.unwrap().lines, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_events_reach_durable_sinks_without_waiting_for_them() {
    let dir = scratch_dir("audit-batched");
    let store = SqliteStore::open(dir.join("credentials.db")).await.unwrap();
    let sql = SqliteAuditSink::new(&store).unwrap();
    let jsonl = JsonlAuditSink::open(dir.join("audit.jsonl")).unwrap();
    for sink in
        [std::sync::Arc::new(sql) as std::sync::Arc<dyn AuditSink>, std::sync::Arc::new(jsonl)]
    {
        let manager = manager_auditing_to(std::sync::Arc::clone(&sink)).await;
        manager
            .create("api/key", ApiKey { key: "k".into() })
            .await
            .unwrap()
            .activate()
            .await
            .unwrap();
        let ctx = manager.context(Principal::new("workflow/a", "action/b"));
        for _ in 0..1_000 {
            ctx.get::<ApiKey>("api/key").await.unwrap();
        }
        // A query waits for the queue: all 1,000 reads are there, repeated ones counted.
        let reads = sink.query(&AuditQuery::all().action(AuditAction::Read)).await.unwrap();
        assert!(!reads.is_empty() && reads.len() <= 1_000);
        assert_eq!(reads.iter().map(|event| event.count).sum::<u64>(), 1_000);
        let summary = sink.summary(&AuditQuery::all().action(AuditAction::Read)).await.unwrap();
        assert_eq!(summary.by_credential.get("api/key"), Some(&1_000));
    }
}

/// A trail the sink opened, then replaced by a FIFO: every batch after that fails at once.
fn trail_replaced_by_a_fifo(name: &str) -> (support::ScratchDir, JsonlAuditSink) {
    let dir = scratch_dir(name);
    let path = dir.join("audit.jsonl");
    let sink = JsonlAuditSink::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    (dir, sink)
}

#[tokio::test]
async fn a_trail_that_cannot_be_written_refuses_the_mutation_as_an_audit_failure() {
    let (_dir, sink) = trail_replaced_by_a_fifo("audit-unwritable");
    let store = std::sync::Arc::new(MemoryStore::new());
    let manager = Manager::builder()
        .store(std::sync::Arc::clone(&store))
        .key_ring(KeyRing::generate().unwrap())
        .audit(sink)
        .build()
        .await
        .unwrap();
    let created = manager.create("stripe", ApiKey { key: "sk_live_1".into() }).await;
    let Err(Error::Audit { reason, .. }) = created else {
        panic!("created without an audit trail")
    };
    assert!(reason.contains("is a FIFO"), "{reason}");
    assert!(store.get("default/stripe").await.unwrap().is_none(), "nothing was written");
    // Reads are refused too while the trail fails (fail closed).
    assert!(matches!(manager.load_dyn("stripe").await, Err(Error::AuditBackpressure)));
    // The writer stops before the directory goes: a writer still trying would make the trail
    // anew as the directory is removed.
    let _ = manager.shutdown().await;
}

#[tokio::test]
async fn a_fifo_device_or_link_where_the_trail_should_be_fails_at_once() {
    let dir = scratch_dir("audit-hostile");
    let fifo = dir.join("fifo.jsonl");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let link = dir.join("link.jsonl");
    std::os::unix::fs::symlink(dir.join("elsewhere.jsonl"), &link).unwrap();
    let socket = dir.join("socket.jsonl");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    for path in [fifo.as_path(), std::path::Path::new("/dev/full"), &link, &socket] {
        assert!(JsonlAuditSink::open(path).is_err(), "{}", path.display());
    }
    assert!(!dir.join("elsewhere.jsonl").exists(), "nothing written through the link");
}

#[tokio::test]
async fn cached_reads_are_counted_in_order_and_refused_once_the_trail_fails() {
    let dir = scratch_dir("audit-counted");
    let sink = JsonlAuditSink::open(dir.join("audit.jsonl")).unwrap();
    let (_manager, active, _) = active_key_audited_to(sink.clone()).await;
    // Fresh contexts, as engines make them; two principals take turns on one thread.
    let manager = &_manager;
    for n in 0..800 {
        let principal = if n % 8 < 5 { "workflow/a" } else { "workflow/b" };
        let ctx = manager.context(Principal::new(principal, "action/read"));
        ctx.get::<ApiKey>("api/key").await.unwrap();
    }
    active.revoke("rotated out").await.unwrap();
    let ctx = manager.context(Principal::new("workflow/a", "action/read"));
    assert!(matches!(ctx.get::<ApiKey>("api/key").await, Err(Error::Revoked { .. })));

    let events = sink.query(&AuditQuery::all()).await.unwrap();
    let revoke = events.iter().position(|event| event.action == AuditAction::Revoke).unwrap();
    let counted = |principal: &str| {
        events[..revoke]
            .iter()
            .filter(|event| event.action == AuditAction::Read && &*event.principal == principal)
            .map(|event| event.count)
            .sum::<u64>()
    };
    assert_eq!(counted("workflow/a:action/read"), 500);
    assert_eq!(counted("workflow/b:action/read"), 300);
    let after = &events[revoke + 1..];
    assert!(after.iter().all(|event| event.outcome == AuditOutcome::Failure), "{after:?}");
    assert_eq!(sink.verify().await.unwrap().lines as usize, events.len());

    // A trail that cannot be written: a read served from the cache is refused once the sink knows.
    let store = std::sync::Arc::new(MemoryStore::new());
    let ring = KeyRing::generate().unwrap();
    let writer = Manager::builder()
        .store(std::sync::Arc::clone(&store))
        .key_ring(ring.clone())
        .build()
        .await
        .unwrap();
    writer.create("api/key", ApiKey { key: "k".into() }).await.unwrap().activate().await.unwrap();
    let (_dir, full) = trail_replaced_by_a_fifo("audit-counted-unwritable");
    let reader =
        Manager::builder().store(store).key_ring(ring).audit(full.clone()).build().await.unwrap();
    let ctx = reader.context(Principal::new("workflow/a", "action/read"));
    // A load, then a cache hit; either read may already be refused if the writer failed first.
    for _ in 0..2 {
        let read = ctx.get::<ApiKey>("api/key").await;
        assert!(matches!(read, Ok(_) | Err(Error::AuditBackpressure)), "{read:?}");
    }
    assert!(full.flush().await.is_err());
    assert!(matches!(ctx.get::<ApiKey>("api/key").await, Err(Error::AuditBackpressure)));
    // As above: the writer stops before the directory goes.
    let _ = reader.shutdown().await;
}

/// How many reads the shutdown child makes before it shuts down and exits at once.
const CHILD_READS: u64 = 200;

#[tokio::test]
#[ignore = "run by shutdown_writes_every_read_event_before_the_process_exits in a child process"]
async fn shutdown_child() {
    let path = std::env::var("CREDENTIAL_TEST_TRAIL").unwrap();
    let (manager, _active, ctx) = active_key_audited_to(JsonlAuditSink::open(path).unwrap()).await;
    for _ in 0..CHILD_READS {
        ctx.get::<ApiKey>("api/key").await.unwrap();
    }
    manager.shutdown().await.unwrap();
    // Exits with the audit writer's thread still alive, as a process whose main returns does.
    std::process::exit(0);
}

#[tokio::test]
async fn shutdown_writes_every_read_event_before_the_process_exits() {
    let scratch = scratch_dir("audit-shutdown");
    let path = scratch.join("trail.jsonl");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            support::test_named(module_path!(), "shutdown_child").as_str(),
            "--nocapture",
        ])
        .env("CREDENTIAL_TEST_TRAIL", &path)
        .status()
        .unwrap();
    assert!(status.success());
    let sink = JsonlAuditSink::open(&path).unwrap();
    sink.verify().await.unwrap();
    let reads = sink.query(&AuditQuery::all().action(AuditAction::Read)).await.unwrap();
    assert_eq!(reads.iter().map(|read| read.count).sum::<u64>(), CHILD_READS);
}

#[tokio::test]
async fn a_shut_down_manager_its_clones_contexts_and_handles_serve_and_change_nothing() {
    let scratch = scratch_dir("audit-shut-down");
    let sink = JsonlAuditSink::open(scratch.join("trail.jsonl")).unwrap();
    let (manager, active, ctx) = active_key_audited_to(sink.clone()).await;
    ctx.get::<ApiKey>("api/key").await.unwrap();
    let clone = manager.clone();
    manager.shutdown().await.unwrap();

    assert!(matches!(ctx.get::<ApiKey>("api/key").await, Err(Error::ShutDown)));
    assert!(matches!(clone.load::<ApiKey>("api/key").await, Err(Error::ShutDown)));
    let created = clone.create("api/other", ApiKey { key: "k9".into() }).await;
    assert!(matches!(created, Err(Error::ShutDown)));
    assert!(matches!(active.revoke("leaving").await, Err(Error::ShutDown)));
    let listed = clone.list(&credential::store::ListFilter::all()).await;
    assert!(matches!(listed, Err(Error::ShutDown)));
    assert_eq!(Error::ShutDown.code(), "shut_down");
    // A second call finds nothing to do; the trail still answers, and holds no refused call.
    clone.shutdown().await.unwrap();
    let events = sink.query(&AuditQuery::all()).await.unwrap();
    assert!(events.iter().all(|event| event.outcome == AuditOutcome::Success), "{events:?}");
    assert!(events.iter().any(|event| event.action == AuditAction::Read));
}
