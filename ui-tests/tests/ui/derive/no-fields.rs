use credential::prelude::*;

#[derive(Credential)]
struct Empty {}

fn main() {}
