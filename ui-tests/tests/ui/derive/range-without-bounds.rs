use credential::prelude::*;

#[derive(Credential)]
struct Database {
    #[secret]
    password: SecretString,
    #[credential(validate(range))]
    port: u16,
}

fn main() {}
