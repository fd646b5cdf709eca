use credential::{Credential, SecretString};

#[derive(Credential)]
#[credential(kind = "webhook")]
struct Webhook {
    #[secret]
    #[credential(validate(url))]
    endpoint: SecretString,
    #[credential(validate(pattern = "^[a-z]+$"))]
    name: String,
}

fn main() {}
