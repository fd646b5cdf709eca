use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    token: SecretString,
    username: String,
}

fn main() {}
