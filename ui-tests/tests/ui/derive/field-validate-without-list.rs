use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    #[credential(validate = check)]
    token: SecretString,
}

fn main() {}
