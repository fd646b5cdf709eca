#![allow(unused_imports)]
use credential::prelude::*;
use credential::{Active, Draft, Managed, Revoked, Rotating};

#[derive(Credential)]
struct Token {
    #[secret]
    token: SecretString,
}

struct Forged;

impl credential::State for Forged {
    type Data<C: credential::Credential> = ();
    const STATE: credential::LifecycleState = credential::LifecycleState::Active;
}

fn main() {}
