use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    token: SecretString,
    #[credential(renamed = "user")]
    username: String,
}

fn main() {}
