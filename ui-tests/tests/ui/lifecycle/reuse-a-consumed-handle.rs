#![allow(unused_imports)]
use credential::prelude::*;
use credential::{Active, Draft, Managed, Revoked, Rotating};

#[derive(Credential)]
struct Token {
    #[secret]
    token: SecretString,
}

async fn flow(active: Managed<Token, Active>) -> credential::Result<()> {
    let rotating: Managed<Token, Rotating> = active.rotate(Token { token: "new".into() }).await?;
    rotating.commit().await?;
    active.rotate(Token { token: "again".into() }).await?;
    Ok(())
}

fn main() {}
