//! Keeping secrets out of logs: an action that logs carelessly (a connection URL with the
//! password in it, a Basic auth header, a child process echoing its environment) writes through
//! the manager's masker, and every value it was served comes out as `***`.
//!
//! Run with `cargo run --example masked_logs`.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use credential::kinds::Database;
use credential::prelude::*;
use credential::{Context, Error};
use tokio::io::AsyncWriteExt;

/// An action as a workflow author writes it: it reads its credential and logs more than it should.
async fn sync_orders(ctx: &Context) -> credential::Result<()> {
    let db = ctx.get::<Database>("db/orders").await?;
    // The careless line: the URL carries the password, percent-encoded.
    tracing::info!(url = %db.url().expose_secret(), "connecting");
    let basic = format!("{}:{}", db.user, db.password.expose_secret());
    tracing::debug!(header = %format!("Basic {}", base64(basic.as_bytes())), "proxy auth");
    tracing::warn!(
        "retrying after `password authentication failed for {}`",
        db.password.expose_secret()
    );
    Ok(())
}

/// A log file shared with the subscriber, so the example can show what reached it.
#[derive(Clone, Default)]
struct LogFile(Arc<Mutex<Vec<u8>>>);

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> credential::Result<()> {
    let manager =
        Manager::builder().store(MemoryStore::new()).key_ring(KeyRing::generate()?).build().await?;
    let password = "Tr0ub4dor&3/horse";
    let db = Database::from_url("postgresql://sync:Tr0ub4dor%263%2Fhorse@db.internal/orders")?;
    manager.create("db/orders", db).await?.activate().await?;

    // Every event the engine's subscriber writes goes through the masker.
    let log = LogFile::default();
    let file = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(manager.masker().make_writer(move || file.clone()))
        .finish();
    let ctx = manager.context(Principal::new("workflow/orders", "action/sync"));
    {
        let _default = tracing::subscriber::set_default(subscriber);
        sync_orders(&ctx).await?;
    }

    // A child process's output, masked on its way into the same log.
    let child = std::process::Command::new("sh")
        .args(["-c", "echo \"psql: connecting as sync with PGPASSWORD=$PGPASSWORD\""])
        .env("PGPASSWORD", password)
        .output()
        .map_err(|_| Error::Config { reason: "cannot run sh" })?;
    let mut child_log = manager.masker().async_writer(Vec::new());
    let io_failed = |_| Error::Config { reason: "cannot write the child's log" };
    child_log.write_all(&child.stdout).await.map_err(io_failed)?;
    child_log.shutdown().await.map_err(io_failed)?;
    log.clone().write_all(child_log.get_ref()).map_err(io_failed)?;

    let text =
        String::from_utf8_lossy(&log.0.lock().map_err(|_| Error::Config { reason: "poisoned" })?)
            .into_owned();
    println!("{text}");
    if text.contains(password) || text.contains("Tr0ub4dor%263") {
        return Err(Error::Config { reason: "a secret reached the log" });
    }
    println!("the log holds {} masked values and no secret", text.matches("***").count());
    manager.shutdown().await?;
    Ok(())
}

/// Standard base64, as an HTTP client would write a Basic auth header.
fn base64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}
