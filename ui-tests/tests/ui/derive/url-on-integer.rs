use credential::prelude::*;

#[derive(Credential)]
struct Service {
    #[secret]
    token: SecretString,
    #[credential(validate(url))]
    port: u16,
}

fn main() {}
