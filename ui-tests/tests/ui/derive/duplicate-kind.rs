use credential::prelude::*;

#[derive(Credential)]
#[credential(kind = "github", kind = "gitlab")]
struct GitHub {
    #[secret]
    token: SecretString,
}

fn main() {}
