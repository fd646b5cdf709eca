use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    token: SecretString,
    #[credential(validate(not_blank))]
    username: String,
}

fn main() {}
