//! Quick start: the whole life of a credential on the embedded SQLite default.
//!
//! Define a typed credential, store it encrypted, activate it, read it from an action through a
//! context, rotate and commit, roll a rotation back, revoke it, and print the audit trail.
//!
//! Run with `cargo run --example quickstart`. Set `CREDENTIAL_MASTER_KEY` (32 bytes, hex or
//! base64) to use your own master key; otherwise a fresh one is generated for this run. To run it
//! on PostgreSQL, set `CREDENTIAL_POSTGRES_URL` and add `--features postgres`.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;

use credential::audit::{AuditQuery, AuditSink, SqliteAuditSink};
use credential::prelude::*;
use credential::rules::RuleError;
use credential::store::Store;

/// A GitHub personal access token, as a workflow author declares it.
#[derive(Credential)]
#[credential(kind = "github")]
struct GitHub {
    /// Redacted everywhere, zeroized on drop, encrypted at rest; shown at most as `****abcd`.
    #[secret(reveal_last = 4)]
    #[credential(validate(non_empty, custom = looks_like_a_token))]
    token: SecretString,
    #[credential(validate(non_empty, length(max = 39)))]
    username: String,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

fn looks_like_a_token(token: &SecretString) -> Result<(), RuleError> {
    let token = token.expose_secret();
    if token.starts_with("ghp_") || token.starts_with("github_pat_") {
        Ok(())
    } else {
        Err(RuleError::new("must start with `ghp_` or `github_pat_`"))
    }
}

fn github(token: &str) -> GitHub {
    GitHub {
        token: token.into(),
        username: "octocat".into(),
        expires: DateTime::from_timestamp(1_893_456_000, 0),
    }
}

#[tokio::main]
async fn main() -> credential::Result<()> {
    // Storage: a SQLite file (a fresh one per run here) or PostgreSQL. Keys: from the
    // environment, if set.
    let storage = match std::env::var("CREDENTIAL_POSTGRES_URL") {
        Ok(url) => postgres(&url).await?,
        Err(_) => sqlite().await?,
    };
    let key_ring = match std::env::var_os("CREDENTIAL_MASTER_KEY") {
        Some(_) => KeyRing::from_env("CREDENTIAL_MASTER_KEY")?,
        None => KeyRing::generate()?,
    };
    let audit = Arc::clone(&storage.audit);
    let manager = Manager::builder()
        .store(Arc::clone(&storage.store))
        .key_ring(key_ring)
        .environment(&storage.environment)
        .audit(Arc::clone(&audit))
        .build()
        .await?;
    println!("store: {} (environment `{}`)", storage.location, storage.environment);

    // Validation reports every failed rule at once, naming fields and rules, never values.
    let broken = GitHub { token: "hunter2".into(), username: String::new(), expires: None };
    if let Err(errors) = broken.validate() {
        println!("rejected: {errors}");
    }

    // Create → activate: the type says which steps are possible.
    let draft =
        manager.create("github/main", github("ghp_16C7e42F292c6912E7710c838347Ae178B4a")).await?;
    println!("created:  {}", draft.credential().redacted());
    let active = draft.activate().await?;

    // An action reads it through a context: access check, audit, cache.
    let ctx = manager.context(Principal::new("workflow/release", "action/tag"));
    let gh = ctx.get::<GitHub>("github/main").await?;
    println!("action sees {gh:?}");

    // Rotate: the old version keeps serving until commit.
    let rotating = active.rotate(github("ghp_9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2fAAAA")).await?;
    println!("rotating: still serving {:?}", ctx.get::<GitHub>("github/main").await?.token);
    let active = rotating.commit().await?;
    println!("committed: now serving {}", ctx.get::<GitHub>("github/main").await?.redacted());

    // Templates fill `{{id.field}}` placeholders; the result is a secret too.
    let header = ctx.resolve("token {{github/main.token}}").await?;
    println!(
        "resolved an Authorization header of {} characters: {header:?}",
        header.expose_secret().len()
    );

    // A rotation can be rolled back; an old version can be restored.
    let active = active
        .rotate(github("ghp_0000000000000000000000000000000000BBBB"))
        .await?
        .rollback()
        .await?;
    println!("rolled back: still serving {}", ctx.get::<GitHub>("github/main").await?.redacted());
    let active = active.rollback_to(1).await?;
    println!("restored version 1 as version {}", active.version());

    // Revoke: terminal; payloads destroyed, metadata and history kept.
    let _revoked = active.revoke("leaked in CI log").await?;
    match ctx.get::<GitHub>("github/main").await {
        Err(error) => println!("after revoke: {error}"),
        Ok(_) => println!("after revoke: still readable?!"),
    }
    for version in manager.history("github/main").await? {
        println!(
            "  version {} {:<10} changed {}",
            version.version,
            version.state,
            version.changed_at.format("%H:%M:%S%.3f")
        );
    }

    println!("audit trail:");
    let trail = audit.query(&AuditQuery::all()).await?;
    for event in trail.into_iter().filter(|event| *event.environment == *manager.environment()) {
        let version = event.version.map(|v| format!(" v{v}")).unwrap_or_default();
        let error = event.error.map(|e| format!(" ({e})")).unwrap_or_default();
        println!(
            "  {} {:<24} {:<12} {:<11} {}{version}{error}",
            event.time.format("%H:%M:%S%.3f"),
            event.principal,
            event.action,
            event.outcome,
            event.credential
        );
    }
    // Before the process exits: every audit event written, background work stopped.
    manager.shutdown().await?;
    // A scratch store goes with the run.
    drop((manager, audit, storage.store, storage.audit));
    if let Some(dir) = storage.scratch {
        std::fs::remove_dir_all(&dir).map_err(|source| credential::Error::Io {
            context: "removing the scratch dir".into(),
            source: source.into(),
        })?;
    }
    Ok(())
}

/// Where this run keeps its credentials and audit trail.
struct Storage {
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditSink>,
    /// What to print for the store.
    location: String,
    environment: String,
    /// A directory to remove after the run.
    scratch: Option<PathBuf>,
}

/// A fresh SQLite database with its audit table, in a directory of its own.
async fn sqlite() -> credential::Result<Storage> {
    let dir = std::env::temp_dir().join(format!("credential-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| credential::Error::Io {
        context: "creating a scratch dir".into(),
        source: source.into(),
    })?;
    let store = SqliteStore::open(dir.join("credentials.db")).await?;
    let audit = SqliteAuditSink::new(&store)?;
    Ok(Storage {
        location: dir.join("credentials.db").display().to_string(),
        store: Arc::new(store),
        audit: Arc::new(audit),
        environment: credential::DEFAULT_ENVIRONMENT.to_owned(),
        scratch: Some(dir),
    })
}

/// The PostgreSQL database at `url`, with its audit table. A shared database outlives the run, so
/// each run works in an environment of its own.
#[cfg(feature = "postgres")]
async fn postgres(url: &str) -> credential::Result<Storage> {
    let store = credential::store::PostgresStore::connect(url).await?;
    let audit = credential::audit::PostgresAuditSink::new(&store)?;
    Ok(Storage {
        location: "PostgreSQL".to_owned(),
        store: Arc::new(store),
        audit: Arc::new(audit),
        environment: format!("quickstart-{}", Utc::now().format("%Y%m%d-%H%M%S-%3f")),
        scratch: None,
    })
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_: &str) -> credential::Result<Storage> {
    Err(credential::Error::Config {
        reason: "CREDENTIAL_POSTGRES_URL is set: run with `--features postgres`",
    })
}
