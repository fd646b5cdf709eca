use credential::prelude::*;

#[derive(Credential)]
struct Database {
    #[secret]
    password: SecretString,
    #[credential(validate(range(min = 1)))]
    host: String,
}

fn main() {}
