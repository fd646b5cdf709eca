use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    #[credential(default)]
    token: SecretSlice<u8>,
    #[credential(default)]
    endpoint: credential::field::Url,
}

fn main() {}
