use credential::prelude::*;

#[derive(Credential)]
enum Token {
    Bearer(SecretString),
}

fn main() {}
