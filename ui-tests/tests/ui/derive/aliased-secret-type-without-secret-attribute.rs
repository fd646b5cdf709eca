use credential::prelude::*;

type Token = SecretString;

#[derive(Credential)]
struct GitHub {
    token: Token,
}

fn main() {}
