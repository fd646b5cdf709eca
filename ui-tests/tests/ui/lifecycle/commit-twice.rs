#![allow(unused_imports)]
use credential::prelude::*;
use credential::{Active, Draft, Managed, Revoked, Rotating};

#[derive(Credential)]
struct Token {
    #[secret]
    token: SecretString,
}

async fn flow(rotating: Managed<Token, Rotating>) -> credential::Result<()> {
    let _active = rotating.commit().await?;
    rotating.commit().await?;
    Ok(())
}

fn main() {}
