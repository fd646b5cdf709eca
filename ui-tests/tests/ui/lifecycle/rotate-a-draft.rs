#![allow(unused_imports)]
use credential::prelude::*;
use credential::{Active, Draft, Managed, Revoked, Rotating};

#[derive(Credential)]
struct Token {
    #[secret]
    token: SecretString,
}

async fn flow(draft: Managed<Token, Draft>) -> credential::Result<()> {
    draft.rotate(Token { token: "new".into() }).await?;
    Ok(())
}

fn main() {}
