//! Questions at the terminal: secrets and passphrases without echo.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};

use credential::{ExposeSecret, SecretString};
use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};
use zeroize::Zeroizing;

use crate::exit::{Failure, Outcome};

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
    let answer = ask_without_echo(question)
        .map_err(|error| Failure::io("the terminal", "ask at", &error))?;
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

/// Turns the terminal's echo off, then prints the question and reads one line: echo is off
/// before anyone can see the question, so nothing typed after it is shown.
fn ask_without_echo(question: &str) -> std::io::Result<SecretString> {
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let quiet = Quiet::new(&tty)?;
    write!(&tty, "{question}: ")?;
    (&tty).flush()?;
    let mut line = Zeroizing::new(String::new());
    BufReader::new(&tty).read_line(&mut line)?;
    drop(quiet);
    let answer = line.strip_suffix('\n').unwrap_or(&line);
    Ok(SecretString::from(answer.strip_suffix('\r').unwrap_or(answer)))
}

/// Echo off for as long as it lives (the line break still shows); restored on drop.
struct Quiet<'a> {
    tty: &'a File,
    original: Termios,
}

impl<'a> Quiet<'a> {
    fn new(tty: &'a File) -> std::io::Result<Self> {
        let original = tcgetattr(tty)?;
        let mut quiet = original.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(tty, OptionalActions::Flush, &quiet)?;
        Ok(Self { tty, original })
    }
}

impl Drop for Quiet<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.tty, OptionalActions::Now, &self.original);
    }
}
