use credential::prelude::*;

#[derive(Credential)]
struct Webhook {
    #[secret]
    signing_key: SecretString,
    #[credential(validate(pattern = "^[a-z]+$"))]
    channels: Vec<String>,
}

fn main() {}
