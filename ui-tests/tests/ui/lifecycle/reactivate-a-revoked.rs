#![allow(unused_imports)]
use credential::prelude::*;
use credential::{Active, Draft, Managed, Revoked, Rotating};

#[derive(Credential)]
struct Token {
    #[secret]
    token: SecretString,
}

async fn flow(revoked: Managed<Token, Revoked>) -> credential::Result<()> {
    revoked.activate().await?;
    Ok(())
}

fn main() {}
