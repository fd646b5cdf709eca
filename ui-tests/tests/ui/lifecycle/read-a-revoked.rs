#![allow(unused_imports)]
use credential::prelude::*;
use credential::{Active, Draft, Managed, Revoked, Rotating};

#[derive(Credential)]
struct Token {
    #[secret]
    token: SecretString,
}

fn flow(revoked: &Managed<Token, Revoked>) -> usize {
    revoked.credential().token.expose_secret().len()
}

fn main() {}
