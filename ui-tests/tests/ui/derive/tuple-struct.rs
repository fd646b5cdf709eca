use credential::prelude::*;

#[derive(Credential)]
struct Token(#[secret] SecretString);

fn main() {}
