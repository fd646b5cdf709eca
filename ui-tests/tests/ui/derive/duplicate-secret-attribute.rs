use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    #[secret(reveal_last = 4)]
    token: SecretString,
}

fn main() {}
