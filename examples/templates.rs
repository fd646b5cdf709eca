//! Templates: fill `{{id.field}}` placeholders in header and query maps from credentials, through
//! the same access check, audit and cache as `get`; the results are secrets too.
//!
//! Run with `cargo run --example templates`.
#![allow(clippy::print_stdout)]

use credential::MemoryStore;
use credential::kinds::{ApiKey, BasicAuth, BearerToken};
use credential::prelude::*;

#[tokio::main]
async fn main() -> credential::Result<()> {
    let manager =
        Manager::builder().store(MemoryStore::new()).key_ring(KeyRing::generate()?).build().await?;
    manager
        .create("github/main", BearerToken::new("ghp_16C7e42F292c6912E7710c838347Ae178B4a".into()))
        .await?
        .activate()
        .await?;
    manager.create("maps/key", ApiKey::new("AIzaSyD-example".into())).await?.activate().await?;
    manager
        .create(
            "jira/bot",
            BasicAuth { username: "bot@example.com".into(), password: "jira-pass".into() },
        )
        .await?
        .activate()
        .await?;

    let ctx = manager.context(Principal::new("workflow/sync", "action/fetch"));
    // `{{id}}` takes the sole secret field; `{{id.field}}` names one (the field is what follows
    // the last `.`, so ids may contain `/`).
    let headers = ctx
        .resolve_headers([
            ("Authorization", "Bearer {{github/main}}"),
            ("X-Jira-User", "{{jira/bot.username}}"),
        ])
        .await?;
    for (name, value) in &headers {
        println!("{name}: {value:?} ({} characters)", value.expose_secret().len());
    }
    let params = ctx.resolve_params([("key", "{{maps/key}}")]).await?;
    println!("query: key={:?}", params["key"]);
    // A placeholder for something that does not exist is an error that names it, never a value.
    match ctx.resolve("Bearer {{github/missing}}").await {
        Err(error) => println!("missing: {error}"),
        Ok(_) => println!("missing: resolved?!"),
    }
    manager.shutdown().await?;
    Ok(())
}
