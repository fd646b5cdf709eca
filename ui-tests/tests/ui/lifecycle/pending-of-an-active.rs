#![allow(unused_imports)]
use credential::prelude::*;
use credential::{Active, Draft, Managed, Revoked, Rotating};

#[derive(Credential)]
struct Token {
    #[secret]
    token: SecretString,
}

fn flow(active: &Managed<Token, Active>) -> usize {
    active.pending().token.expose_secret().len()
}

fn main() {}
