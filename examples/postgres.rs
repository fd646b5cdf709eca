//! PostgreSQL, the store shared by many machines: two managers stand for two machines, each
//! caching for an hour; a revoke on one is refused on the other within milliseconds, because every
//! write notifies every listener on the database.
//!
//! Run with `CREDENTIAL_POSTGRES_URL=postgres://… cargo run --example postgres --features postgres`
//! (`eval "$(bash .ci/postgres.sh start)"` starts a throwaway server and sets
//! `CREDENTIAL_TEST_POSTGRES_URL`, which this example also reads).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use credential::CacheConfig;
use credential::audit::PostgresAuditSink;
use credential::crypto::MasterKey;
use credential::kinds::ApiKey;
use credential::prelude::*;
use credential::store::PostgresStore;

async fn machine(url: &str, key: &MasterKey, environment: &str) -> credential::Result<Manager> {
    let store = PostgresStore::connect(url).await?;
    Manager::builder()
        .audit(PostgresAuditSink::new(&store)?)
        .store(store)
        .key_ring(KeyRing::new(key.clone()))
        .environment(environment)
        .cache(CacheConfig::new(Duration::from_secs(3600), 10_000))
        .build()
        .await
}

#[tokio::main]
async fn main() -> credential::Result<()> {
    let Some(url) = ["CREDENTIAL_POSTGRES_URL", "CREDENTIAL_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok())
    else {
        println!("set CREDENTIAL_POSTGRES_URL to a PostgreSQL URL to run this example");
        return Ok(());
    };
    // Both machines share the master key (from a KMS or a key file in real deployments). The
    // database outlives the run, so the run works in an environment of its own.
    let key = MasterKey::generate()?;
    let environment = format!("example-{}", Utc::now().format("%Y%m%d-%H%M%S-%3f"));
    let a = machine(&url, &key, &environment).await?;
    let b = machine(&url, &key, &environment).await?;

    let active =
        a.create("payments/stripe", ApiKey::new("sk_live_51H8".into())).await?.activate().await?;
    let on_b = b.context(Principal::new("workflow/billing", "action/charge"));
    println!("machine b reads: {}", on_b.get::<ApiKey>("payments/stripe").await?.redacted());
    println!(
        "machine b reads again, from its cache: {}",
        on_b.get::<ApiKey>("payments/stripe").await.is_ok()
    );

    active.revoke("leaked").await?;
    let revoked = Instant::now();
    loop {
        match on_b.get::<ApiKey>("payments/stripe").await {
            Ok(_) if revoked.elapsed() < Duration::from_secs(5) => tokio::task::yield_now().await,
            Ok(_) => {
                println!("machine b still serves the revoked key?!");
                break;
            }
            Err(error) => {
                println!(
                    "machine b refuses {:?} after the revoke on a: {error}",
                    revoked.elapsed()
                );
                break;
            }
        }
    }
    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}
