use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    #[credential(validate(length(min = 40, max = 10)))]
    token: SecretString,
}

fn main() {}
