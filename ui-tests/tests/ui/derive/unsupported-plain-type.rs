use credential::prelude::*;

struct Opaque;

#[derive(Credential)]
struct Custom {
    #[secret]
    token: SecretString,
    extra: Opaque,
}

fn main() {}
