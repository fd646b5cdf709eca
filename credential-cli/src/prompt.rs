//! Questions at the terminal: secrets and passphrases without echo.

use std::io::IsTerminal;

use credential::{ExposeSecret, SecretString};

use crate::exit::{Failure, Outcome, Status};

/// Whether there is someone at a terminal to ask (standard input is one).
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks for a secret without echo; `None` for an empty answer.
pub(crate) fn secret(question: &str) -> Outcome<Option<SecretString>> {
    if !interactive() {
        return Err(Failure::usage(format!(
            "{question} is needed, and standard input is not a terminal to ask it at"
        )));
    }
    let answer = rpassword::prompt_password(format!("{question}: ")).map_err(|error| {
        Failure::new(Status::Failed, "io", format!("cannot read from the terminal: {error}"))
    })?;
    let answer = SecretString::from(answer);
    Ok((!answer.expose_secret().is_empty()).then_some(answer))
}

/// Asks for a passphrase; refuses an empty one.
pub(crate) fn passphrase(question: &str) -> Outcome<SecretString> {
    secret(question)?.ok_or_else(|| Failure::usage("the passphrase is empty"))
}

/// Asks for a new passphrase twice.
pub(crate) fn new_passphrase() -> Outcome<SecretString> {
    let first = passphrase("New passphrase")?;
    let again = passphrase("Repeat the passphrase")?;
    if first.expose_secret() != again.expose_secret() {
        return Err(Failure::usage("the two passphrases differ"));
    }
    Ok(first)
}
