use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    #[credential(expires_at)]
    token: SecretString,
}

fn main() {}
