//! With `tracing` and `metrics` on and everything captured (every span and event at TRACE, every
//! metric key and label), a canary secret that goes through every operation appears nowhere,
//! while what an operator needs does: ids, principals, actions, outcomes, error codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use credential::kinds::ApiKey;
use credential::store::Store;
use credential::{AccessPolicy, Grant, KeyRing, Manager, MemoryStore, Principal};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};

use support::spans::Spans;

const CANARY: &str = "sk_live_TELEMETRY_CANARY_93c1";

/// Every metric key registered, with its labels, as text.
#[derive(Default, Clone)]
struct Keys(Arc<Mutex<String>>);

impl Keys {
    fn note(&self, key: &Key) {
        let mut text = self.0.lock().unwrap();
        let _ = write!(text, "\n{}", key.name());
        for label in key.labels() {
            let _ = write!(text, " {}={}", label.key(), label.value());
        }
    }
}

impl metrics::Recorder for Keys {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.note(key);
        Counter::noop()
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.note(key);
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.note(key);
        Histogram::noop()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_span_event_or_metric_carries_a_secret() {
    let spans = Arc::new(Spans::default());
    let keys = Keys::default();
    metrics::set_global_recorder(keys.clone()).unwrap();
    let _subscriber = tracing::subscriber::set_default(Arc::clone(&spans));

    let store = Arc::new(MemoryStore::new());
    let policy = AccessPolicy::new()
        .grant(Grant::admin("operator", "*"))
        .grant(Grant::read("billing", "payments/stripe"));
    let manager = Manager::builder()
        .store(Arc::clone(&store))
        .key_ring(KeyRing::generate().unwrap())
        .access_policy(policy)
        .build()
        .await
        .unwrap();
    let active = manager
        .create("payments/stripe", ApiKey::new(CANARY.into()))
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();
    let billing = manager.context(Principal::named("billing"));
    billing.get::<ApiKey>("payments/stripe").await.unwrap();
    billing.get::<ApiKey>("payments/stripe").await.unwrap();
    billing.resolve("Bearer {{payments/stripe.key}}").await.unwrap();
    // Denied: another principal, and an id outside the grant.
    let stranger = manager.context(Principal::named("stranger"));
    assert!(stranger.get::<ApiKey>("payments/stripe").await.is_err());
    assert!(billing.get::<ApiKey>("payments/missing").await.is_err());
    let active = active
        .rotate(ApiKey::new(format!("{CANARY}-rotated").into()))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();

    // A payload that does not open: the record is sealed under a key this manager lacks.
    let mut record = store.get("default/payments/stripe").await.unwrap().unwrap();
    let revision = record.meta.revision;
    record.versions.last_mut().unwrap().sealed[40] ^= 1;
    store.put(record, credential::store::Precondition::Revision(revision)).await.unwrap();
    let tampered = manager.context(Principal::named("billing"));
    assert!(tampered.get::<ApiKey>("payments/stripe").await.is_err());
    drop(active);

    let spans = spans.text.lock().unwrap().clone();
    let keys = keys.0.lock().unwrap().clone();
    for (what, text) in [("tracing", &spans), ("metrics", &keys)] {
        assert!(!text.contains("CANARY"), "the secret reached {what}:\n{text}");
    }
    // And the telemetry is there, saying what an operator needs.
    for expected in [
        "span credential op=\"read\"",
        "span credential op=\"commit\"",
        "span credential.store op=\"get\"",
        "id=\"payments/stripe\"",
        "principal=\"billing\"",
        "outcome=\"denied\"",
        "error=\"decrypt\"",
        "event WARN",
        "event ERROR",
        "event INFO",
    ] {
        assert!(spans.contains(expected), "no `{expected}` in the trace:\n{spans}");
    }
    for expected in [
        "credential_reads_total source=cache outcome=success",
        "credential_commits_total action=commit outcome=success",
        "credential_denials_total action=read",
        "credential_decrypt_failures_total",
        "credential_store_call_seconds op=get",
    ] {
        assert!(keys.contains(expected), "no `{expected}` among the metrics:\n{keys}");
    }
}

/// A log file shared with a subscriber.
#[derive(Clone, Default)]
struct LogLines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_engine_logging_at_info_sees_what_changed_and_no_read_and_no_value() {
    let log = LogLines::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .build()
        .await
        .unwrap();
    let active = manager
        .create("svc/info", ApiKey::new(CANARY.into()))
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();
    let ctx = manager.context(Principal::new("workflow/ci", "action/read"));
    ctx.get::<ApiKey>("svc/info").await.unwrap();
    active.revoke("rotated out").await.unwrap();

    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let changes: Vec<_> = log.lines().filter(|line| line.contains("credential changed")).collect();
    assert_eq!(changes.len(), 3, "{log}");
    for (line, action) in changes.iter().zip(["create", "activate", "revoke"]) {
        for field in [
            "id=\"svc/info\"",
            "kind=\"api_key\"",
            &format!("action=\"{action}\""),
            "outcome=\"success\"",
            "principal=\"operator\"",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
    }
    assert!(!log.contains("workflow/ci"), "a read logged at INFO: {log}");
    assert!(!log.contains(CANARY));
}
