use credential::prelude::*;

#[derive(Credential)]
struct Nothing;

fn main() {}
