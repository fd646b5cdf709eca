use credential::prelude::*;

#[derive(Credential)]
union Raw {
    bits: u64,
}

fn main() {}
