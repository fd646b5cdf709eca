use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret(reveal_last = 300)]
    token: SecretString,
}

fn main() {}
