use credential::prelude::*;

#[derive(Credential)]
struct Borrowed<'a> {
    #[secret]
    token: SecretString,
    username: &'a str,
}

fn main() {}
