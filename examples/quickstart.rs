//! Quick start: define a typed credential, validate it, look at it safely, and round-trip the
//! encoding that gets sealed for storage.
//!
//! Run with `cargo run --example quickstart`.
#![allow(clippy::print_stdout)]

use credential::RuleError;
use credential::prelude::*;

/// A GitHub personal access token, as a workflow author would declare it.
#[derive(Credential)]
#[credential(kind = "github")]
struct GitHub {
    /// The token itself: redacted everywhere, zeroized on drop, shown only as a `****` hint.
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

fn main() -> credential::Result<()> {
    let github = GitHub {
        token: "ghp_16C7e42F292c6912E7710c838347Ae178B4a".into(),
        username: "octocat".into(),
        expires: DateTime::from_timestamp(1_893_456_000, 0),
    };
    github.validate()?;
    println!("valid credential of kind `{}`", GitHub::KIND);

    // Secrets never reach Debug, Display or serialized output.
    println!("Debug:    {github:?}");
    println!("Display:  {}", github.redacted());
    let json = serde_json::to_string(&github.redacted()).unwrap_or_default();
    println!("JSON:     {json}");
    println!("expires:  {:?}", github.expires_at());

    // Validation reports every failed rule at once, naming fields and rules, never values.
    let broken = GitHub { token: "hunter2".into(), username: String::new(), expires: None };
    if let Err(errors) = broken.validate() {
        println!("rejected: {errors}");
    }

    // The storage encoding (the plaintext that gets sealed) lives in a zeroizing buffer.
    let encoded = github.encode();
    let decoded = GitHub::decode(&encoded)?;
    println!("round trip: {} bytes, username {}", encoded.len(), decoded.username);
    assert_eq!(decoded.token.expose_secret(), github.token.expose_secret());
    Ok(())
}
