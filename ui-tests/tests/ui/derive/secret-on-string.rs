use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    token: String,
}

fn main() {}
