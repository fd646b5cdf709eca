use credential::prelude::*;

#[derive(Credential)]
struct Pin {
    #[secret]
    #[credential(validate(range(max = 9999)))]
    code: SecretString,
}

fn main() {}
