use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    #[credential(validate(pattern = "^ghp_(["))]
    token: SecretString,
}

fn main() {}
