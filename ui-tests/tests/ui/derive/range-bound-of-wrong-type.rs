use credential::prelude::*;

#[derive(Credential)]
struct Database {
    #[secret]
    password: SecretString,
    #[credential(validate(range(min = 0.5)))]
    port: u16,
}

fn main() {}
