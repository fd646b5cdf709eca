//! A planted secret goes through the whole lifecycle and appears in no audit record, error,
//! `Debug` output or stored byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use credential::ListFilter;
use credential::audit::{AuditQuery, AuditSink, JsonlAuditSink, SqliteAuditSink};
use credential::prelude::*;
use credential::store::Store;
use support::scratch_dir;

const CANARY: &str = "CANARY-3c9e1f7a-lifecycle-secret";

#[derive(Credential)]
#[credential(kind = "lifecycle_canary")]
struct Canary {
    #[secret]
    #[credential(validate(length(max = 40)))]
    token: SecretString,
    label: String,
}

fn planted(suffix: &str) -> Canary {
    Canary { token: format!("{CANARY}{suffix}").into(), label: "plain".into() }
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(CANARY), "{what} leaks the secret: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_audit_errors_debug_or_storage() {
    let dir = scratch_dir("lifecycle-canary");
    let store = SqliteStore::open(dir.join("credentials.db")).await.unwrap();
    let jsonl = JsonlAuditSink::open(dir.join("audit.jsonl")).unwrap();
    let manager = Manager::builder()
        .store(store.clone())
        .key_ring(KeyRing::generate().unwrap())
        .audit(jsonl.clone())
        .build()
        .await
        .unwrap();
    let ctx = manager.context(Principal::new("workflow/a", "action/b"));

    let draft = manager.create("canary/one", planted("-1")).await.unwrap();
    assert_clean("Managed Debug", &format!("{draft:?}"));
    let active = draft.activate().await.unwrap();
    let read = ctx.get::<Canary>("canary/one").await.unwrap();
    assert_clean("credential Debug", &format!("{read:?} {read:#?}"));
    let rotating = active.rotate(planted("-2")).await.unwrap();
    assert_clean("Rotating Debug", &format!("{rotating:?}"));
    let active = rotating.commit().await.unwrap();

    let mut errors = Vec::new();
    errors.push(active.rotate(planted("-this-one-is-far-too-long-to-pass")).await.unwrap_err());
    errors.push(manager.create("canary/one", planted("-dup")).await.unwrap_err());
    errors.push(ctx.get::<Canary>("canary/missing").await.unwrap_err());
    let stale = manager.load::<Canary>("canary/one").await.unwrap().into_active().unwrap();
    let fresh = manager.load::<Canary>("canary/one").await.unwrap().into_active().unwrap();
    fresh.revoke("planted canary").await.unwrap();
    errors.push(stale.rotate(planted("-3")).await.unwrap_err());
    errors.push(ctx.get::<Canary>("canary/one").await.unwrap_err());
    for error in &errors {
        assert_clean("error Display", &error.to_string());
        assert_clean("error Debug", &format!("{error:?}"));
    }

    // Operators without the type, reads by version, templates.
    manager.create("canary/two", planted("-4")).await.unwrap().activate().await.unwrap();
    let untyped = manager.load_dyn("canary/two").await.unwrap();
    assert_clean("DynManaged Debug", &format!("{untyped:?}"));
    let view = untyped.redacted().await.unwrap();
    assert_clean("redacted view", &format!("{view:?}"));
    errors.push(untyped.commit().await.unwrap_err());
    errors.push(ctx.get_version::<Canary>("canary/two", 9).await.unwrap_err());
    let resolved = ctx.resolve("Bearer {{canary/two.token}}").await.unwrap();
    assert_clean("resolved template Debug", &format!("{resolved:?}"));
    for error in &errors {
        assert_clean("error Display", &error.to_string());
        assert_clean("error Debug", &format!("{error:?}"));
    }

    // The audit trail, through queries (which wait for queued events) and in the file.
    let events = jsonl.query(&AuditQuery::all()).await.unwrap();
    assert_clean("audit file", &std::fs::read_to_string(dir.join("audit.jsonl")).unwrap());
    assert!(events.len() >= 8);
    assert_clean("audit events", &format!("{events:?}"));
    jsonl.verify().await.unwrap();

    // Storage holds sealed bytes only: the database and WAL files contain no plaintext.
    drop(manager);
    let records = store.list(&ListFilter::all()).await.unwrap();
    assert_clean("record metadata", &format!("{records:?}"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(CANARY.len()).any(|window| window == CANARY.as_bytes()),
            "plaintext on disk"
        );
    }
    // And the SQL sink records no value either.
    let sql = SqliteAuditSink::new(&store).unwrap();
    let audited = Manager::builder()
        .store(store.clone())
        .key_ring(KeyRing::generate().unwrap())
        .environment("audited")
        .audit(sql.clone())
        .build()
        .await
        .unwrap();
    audited.create("canary/sql", planted("-5")).await.unwrap().activate().await.unwrap();
    let reader = audited.context(Principal::named("reader"));
    for _ in 0..10 {
        reader.get::<Canary>("canary/sql").await.unwrap();
    }
    let sql_events = sql.query(&AuditQuery::all()).await.unwrap();
    assert!(sql_events.len() >= 3);
    assert_clean("SQL audit", &format!("{sql_events:?}"));
}
