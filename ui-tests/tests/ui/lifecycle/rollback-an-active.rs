#![allow(unused_imports)]
use credential::prelude::*;
use credential::{Active, Draft, Managed, Revoked, Rotating};

#[derive(Credential)]
struct Token {
    #[secret]
    token: SecretString,
}

async fn flow(active: Managed<Token, Active>) -> credential::Result<()> {
    active.rollback().await?;
    Ok(())
}

fn main() {}
