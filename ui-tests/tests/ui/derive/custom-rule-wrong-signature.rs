use credential::prelude::*;
use credential::rules::RuleError;

fn check_port(port: &u16) -> Result<(), RuleError> {
    if *port == 0 { Err(RuleError::new("must not be 0")) } else { Ok(()) }
}

#[derive(Credential)]
struct GitHub {
    #[secret]
    token: SecretString,
    #[credential(validate(custom = check_port))]
    username: String,
}

fn main() {}
