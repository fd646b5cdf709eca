//! Questions at the terminal: secrets and passphrases without echo.
//!
//! Questions go to the process's terminal (`/dev/tty`), whatever standard input is, so a secret
//! piped in and a passphrase typed go together. The terminal's settings are restored however the
//! question ends: an answer, an error, or a signal (Ctrl-C, a hang-up, a kill), which a watcher
//! thread handles by restoring them and exiting as the signal would have.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::OnceLock;

use credential::{ExposeSecret, SecretString};
use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use zeroize::Zeroizing;

use crate::exit::{Failure, Outcome};

/// The process's terminal, as it was before any question changed it.
struct Terminal {
    tty: File,
    original: Termios,
}

/// The terminal, opened once with its settings saved and the signal watcher started; `None`
/// when the process has no terminal (a pipe, a service, CI).
fn terminal() -> Option<&'static Terminal> {
    static TERMINAL: OnceLock<Option<Terminal>> = OnceLock::new();
    TERMINAL
        .get_or_init(|| {
            let tty = OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
            let original = tcgetattr(&tty).ok()?;
            Some(Terminal { tty, original })
        })
        .as_ref()
        .inspect(|terminal| watch_signals(terminal))
}

/// Starts, once, a thread that on a terminating signal puts the terminal's settings back and
/// exits with the shell's code for that signal (128 + its number).
fn watch_signals(terminal: &'static Terminal) {
    static WATCHING: OnceLock<()> = OnceLock::new();
    WATCHING.get_or_init(|| {
        let Ok(mut signals) =
            signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        else {
            return;
        };
        let _ = std::thread::Builder::new().name("cred-signals".into()).spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _ = tcsetattr(&terminal.tty, OptionalActions::Now, &terminal.original);
                let _ = writeln!(&terminal.tty);
                std::process::exit(128 + signal);
            }
        });
    });
}

/// Whether there is someone at a terminal to ask.
pub(crate) fn interactive() -> bool {
    terminal().is_some()
}

/// Asks for a secret without echo; `None` for an empty answer.
pub(crate) fn secret(question: &str) -> Outcome<Option<SecretString>> {
    let Some(terminal) = terminal() else {
        return Err(Failure::usage(format!(
            "{question} is needed, and there is no terminal to ask it at"
        )));
    };
    let answer = ask_without_echo(terminal, question)
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
fn ask_without_echo(terminal: &Terminal, question: &str) -> std::io::Result<SecretString> {
    let mut tty = &terminal.tty;
    let quiet = Quiet::new(terminal)?;
    write!(tty, "{question}: ")?;
    tty.flush()?;
    let line = read_line(tty)?;
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

/// Echo off for as long as it lives (the line break still shows); restored on drop, and by the
/// signal watcher if a signal ends the process first.
struct Quiet<'a> {
    terminal: &'a Terminal,
}

impl<'a> Quiet<'a> {
    fn new(terminal: &'a Terminal) -> std::io::Result<Self> {
        let mut quiet = terminal.original.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&terminal.tty, OptionalActions::Flush, &quiet)?;
        Ok(Self { terminal })
    }
}

impl Drop for Quiet<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.terminal.tty, OptionalActions::Now, &self.terminal.original);
    }
}
