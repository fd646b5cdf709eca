use credential::prelude::*;

#[derive(Credential)]
#[credential(kinf = "github")]
struct GitHub {
    #[secret]
    token: SecretString,
}

fn main() {}
