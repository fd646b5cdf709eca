use credential::prelude::*;

#[derive(Credential)]
struct Database {
    #[secret]
    password: SecretString,
    #[credential(validate(length(max = 5)))]
    port: u16,
}

fn main() {}
