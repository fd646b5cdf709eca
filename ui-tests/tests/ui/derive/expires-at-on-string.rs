use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    token: SecretString,
    #[credential(expires_at)]
    expires: String,
}

fn main() {}
