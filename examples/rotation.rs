//! Rotation: the old version serves until the new one is committed, stays readable by number for
//! a grace period, and a bad rotation is rolled back; an older version can be restored.
//!
//! Run with `cargo run --example rotation`.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use credential::MemoryStore;
use credential::kinds::BasicAuth;
use credential::prelude::*;

fn login(password: &str) -> BasicAuth {
    BasicAuth { username: "deploy-bot".into(), password: password.into() }
}

#[tokio::main]
async fn main() -> credential::Result<()> {
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate()?)
        .grace_period(Duration::from_secs(3600))
        .build()
        .await?;
    let ctx = manager.context(Principal::new("workflow/deploy", "action/push"));
    let active = manager.create("registry/push", login("first-pass")).await?.activate().await?;
    println!("v{} serving", active.version());

    // Stage the new password; readers keep the old one until the commit.
    let rotating = active.rotate(login("second-pass")).await?;
    let served = ctx.get::<BasicAuth>("registry/push").await?;
    println!(
        "while rotating, readers get the old password: {}",
        served.password.expose_secret() == "first-pass"
    );
    let active = rotating.commit().await?;
    let served = ctx.get::<BasicAuth>("registry/push").await?;
    println!(
        "after commit, v{} serves the new one: {}",
        active.version(),
        served.password.expose_secret() == "second-pass"
    );
    // The previous version stays readable by number during the grace period.
    let previous = ctx.get_version::<BasicAuth>("registry/push", 1).await?;
    println!(
        "v1 is still readable for an hour: {}",
        previous.password.expose_secret() == "first-pass"
    );

    // A rotation that turned out wrong is rolled back; nothing was ever served from it.
    let active = active.rotate(login("typo-pass")).await?.rollback().await?;
    println!("rolled back: v{} still serves", active.version());
    // Restoring an older version makes it current again, as a new version.
    let active = active.rollback_to(1).await?;
    let served = ctx.get::<BasicAuth>("registry/push").await?;
    println!(
        "restored v1 as v{}: {}",
        active.version(),
        served.password.expose_secret() == "first-pass"
    );
    for version in manager.history("registry/push").await? {
        println!("  v{} {}", version.version, version.state);
    }
    manager.shutdown().await?;
    Ok(())
}
