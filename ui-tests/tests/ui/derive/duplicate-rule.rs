use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    token: SecretString,
    #[credential(validate(non_empty, length(max = 39), non_empty))]
    username: String,
}

fn main() {}
