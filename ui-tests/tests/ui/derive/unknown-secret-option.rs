use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret(show_last = 4)]
    token: SecretString,
}

fn main() {}
