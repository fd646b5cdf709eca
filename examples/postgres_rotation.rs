//! Scheduled rotation of a real PostgreSQL password: a manager that owns a rotation policy
//! changes a role's password at the server on its own (create, set, test, finish), the
//! application keeps reading the credential through a context, and the old password stops
//! working.
//!
//! Run with `CREDENTIAL_POSTGRES_URL=postgres://… cargo run --example postgres_rotation --features
//! postgres`, the URL of a role that may create roles (`eval "$(bash .ci/postgres.sh start)"`
//! starts a throwaway server and sets `CREDENTIAL_TEST_POSTGRES_URL`, which this example also
//! reads). The example creates a role of its own and drops it at the end.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use credential::kinds::Database;
use credential::prelude::*;
use credential::rotation::{PostgresRotator, RotationConfig, RotationPolicy};
use credential::{Error, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let Some(admin_url) = ["CREDENTIAL_POSTGRES_URL", "CREDENTIAL_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok())
    else {
        println!("set CREDENTIAL_POSTGRES_URL to a PostgreSQL URL to run this example");
        return Ok(());
    };
    // What an operator does once, beforehand: a role for the application.
    let admin = Database::from_url(&admin_url)?;
    let role = format!("orders_app_{}", std::process::id());
    let initial = "initial-password-4f1c9a";
    execute(&admin, &format!("CREATE ROLE {role} LOGIN PASSWORD '{initial}'")).await?;

    let outcome = rotate_on_schedule(&admin_url, &role, initial).await;
    execute(&admin, &format!("DROP ROLE {role}")).await?;
    outcome
}

/// The credential of `role` with `password`, on the server of `admin_url`.
fn role_credential(admin_url: &str, role: &str, password: &str) -> Result<Database> {
    let mut database = Database::from_url(admin_url)?;
    database.user = role.to_owned();
    database.password = password.into();
    Ok(database)
}

async fn rotate_on_schedule(admin_url: &str, role: &str, initial: &str) -> Result<()> {
    // Rotate every `db/*` credential whose password is two seconds old (thirty days, say, in
    // production); the schedule looks every half second.
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate()?)
        .rotator(PostgresRotator::single_user())
        .rotation_policy(RotationPolicy::new("db/*").every(Duration::from_secs(2)))
        .rotation_config(RotationConfig::default().tick(Duration::from_millis(500)))
        .build()
        .await?;
    manager
        .create("db/orders", role_credential(admin_url, role, initial)?)
        .await?
        .activate()
        .await?;

    let ctx = manager.context(Principal::new("workflow/orders", "action/sync"));
    let started = Instant::now();
    while manager.history("db/orders").await?.len() < 2 {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(Error::Config { reason: "the schedule did not rotate within 30 s" });
        }
        // What the application does meanwhile: read the credential and use it.
        let db = ctx.get::<Database>("db/orders").await?;
        execute(&db, "SELECT 1").await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("rotated on schedule after {:.1} s", started.elapsed().as_secs_f64());

    let db = ctx.get::<Database>("db/orders").await?;
    execute(&db, "SELECT 1").await?;
    println!(
        "the application logs in with the new password (version {})",
        manager.history("db/orders").await?.len()
    );
    match execute(&role_credential(admin_url, role, initial)?, "SELECT 1").await {
        Err(_) => println!("the initial password is refused"),
        Ok(()) => return Err(Error::Config { reason: "the initial password still works" }),
    }

    // An operator can also rotate at once and see what each step did.
    let report = manager.rotate_now("db/orders").await?;
    for step in &report.steps {
        println!(
            "  {:<8} {}",
            step.step.as_str(),
            if step.error.is_none() { "done" } else { "failed" }
        );
    }
    println!("rotate_now: {:?}", report.outcome);
    manager.shutdown().await?;
    Ok(())
}

/// Runs `sql` as `database`'s role.
async fn execute(database: &Database, sql: &str) -> Result<()> {
    let client = database.connect_postgres().await?;
    client.batch_execute(sql).await.map_err(|_| Error::Config { reason: "the statement failed" })
}
