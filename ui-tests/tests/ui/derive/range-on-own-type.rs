use credential::prelude::*;

type Host = String;

#[derive(Credential)]
struct Database {
    #[secret]
    password: SecretString,
    #[credential(validate(range(min = 1)))]
    host: Host,
}

fn main() {}
