//! Access policy and audit: who may read what, a denial that says no more than "not found" would,
//! and a tamper-evident trail an operator can query, summarize and verify.
//!
//! Run with `cargo run --example access_and_audit`.
#![allow(clippy::print_stdout)]

use credential::audit::{AuditQuery, AuditSink, JsonlAuditSink};
use credential::kinds::ApiKey;
use credential::prelude::*;
use credential::{AccessPolicy, Grant, MemoryStore};

#[tokio::main]
async fn main() -> credential::Result<()> {
    let dir = std::env::temp_dir().join(format!("credential-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| credential::Error::Io {
        context: "scratch dir".into(),
        source: source.into(),
    })?;
    // Everything not granted is denied: operators administer, billing reads its own keys.
    let policy = AccessPolicy::new()
        .grant(Grant::admin("operator", "*"))
        .grant(Grant::read("workflow/billing:*", "payments/*"));
    let audit = JsonlAuditSink::open(dir.join("audit.jsonl"))?;
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate()?)
        .access_policy(policy)
        .audit(audit.clone())
        .build()
        .await?;
    manager.create("payments/stripe", ApiKey::new("sk_live_51H8".into())).await?.activate().await?;
    manager.create("github/deploy", ApiKey::new("ghp_deploy".into())).await?.activate().await?;

    let billing = manager.context(Principal::new("workflow/billing", "action/charge"));
    let key = billing.get::<ApiKey>("payments/stripe").await?;
    println!("billing reads payments/stripe: {}", key.redacted());
    // Outside its grant: the same answer whether or not the credential exists.
    for id in ["github/deploy", "github/nothing-here"] {
        match billing.get::<ApiKey>(id).await {
            Err(error) => println!("billing reads {id}: {error}"),
            Ok(_) => println!("billing reads {id}: allowed?!"),
        }
    }

    println!("denials:");
    for event in
        audit.query(&AuditQuery::all().outcome(credential::audit::AuditOutcome::Denied)).await?
    {
        println!(
            "  {} {} {} {}",
            event.time.format("%H:%M:%S%.3f"),
            event.principal,
            event.action,
            event.credential
        );
    }
    let summary = audit.summary(&AuditQuery::all()).await?;
    println!("accesses per credential: {:?}", summary.by_credential);
    println!("denied or failed: {}", summary.failures);
    // Every line is chained to the one before it: an edit, a deletion or a reordering shows.
    let report = audit.verify().await?;
    println!("the trail verifies: {} lines, last hash {}", report.lines, &report.last_hash[..16]);

    // Before the process exits: every audit event written, background work stopped.
    manager.shutdown().await?;
    drop((manager, audit));
    std::fs::remove_dir_all(&dir).map_err(|source| credential::Error::Io {
        context: "scratch dir".into(),
        source: source.into(),
    })?;
    Ok(())
}
