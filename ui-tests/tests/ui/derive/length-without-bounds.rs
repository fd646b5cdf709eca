use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    #[credential(validate(length()))]
    token: SecretString,
}

fn main() {}
