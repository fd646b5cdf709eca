use credential::prelude::*;

#[derive(Credential)]
#[secret]
struct GitHub {
    #[secret]
    token: SecretString,
}

fn main() {}
