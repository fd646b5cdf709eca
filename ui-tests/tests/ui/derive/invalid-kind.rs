use credential::prelude::*;

#[derive(Credential)]
#[credential(kind = "Git Hub")]
struct GitHub {
    #[secret]
    token: SecretString,
}

fn main() {}
