//! Questions at the terminal: secrets and passphrases without echo.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};

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
    let line = read_line(&tty)?;
    drop(quiet);
    let text = std::str::from_utf8(&line).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "the answer is not UTF-8")
    })?;
    let answer = text.strip_suffix('\n').unwrap_or(text);
    Ok(SecretString::from(answer.strip_suffix('\r').unwrap_or(answer)))
}

/// The longest answer taken: a terminal's line is at most 4,095 bytes anyway.
const MAX_ANSWER: usize = 4096;

/// One line from `tty`, into a buffer that is never reallocated and is wiped when dropped (a
/// buffered reader would leave its own copy behind).
fn read_line(mut tty: &File) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_ANSWER));
    let mut chunk = Zeroizing::new([0u8; 256]);
    while !line.ends_with(b"\n") {
        let read = tty.read(chunk.as_mut_slice())?;
        if read == 0 {
            break;
        }
        if line.len() + read > MAX_ANSWER {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the answer is too long",
            ));
        }
        line.extend_from_slice(&chunk[..read]);
    }
    Ok(line)
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
