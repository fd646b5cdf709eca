use credential::prelude::*;

#[derive(Credential)]
struct Login {
    #[secret]
    password: SecretString,
    user: String,
    #[credential(rename = "user")]
    login: String,
}

fn main() {}
