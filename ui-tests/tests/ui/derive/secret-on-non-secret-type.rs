use credential::prelude::*;

#[derive(Credential)]
struct Pin {
    #[secret]
    code: u32,
}

fn main() {}
