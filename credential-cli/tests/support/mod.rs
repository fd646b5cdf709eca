//! Running `cred` as an operator does: in a scratch directory, with its own environment, input on
//! standard input or typed at a pseudo-terminal (`script`) when a prompt appears.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

/// The tools check the library's tests use too: one rule for both suites.
#[path = "../../../credential/tests/support/tools.rs"]
pub mod tools;

/// And its stress counts.
#[path = "../../../credential/tests/support/stress.rs"]
pub mod stress;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long a test waits for a prompt before it gives up: a bound on a hang, not a timing
/// assumption.
const PROMPT_WAIT: Duration = Duration::from_secs(120);

/// A scratch directory with a store and a key file in it, removed on drop.
pub struct Cli {
    pub dir: PathBuf,
    pub store: String,
    pub key_file: PathBuf,
    /// Whether commands get `CRED_KEY_FILE` (not for a passphrase key).
    pub with_key_file: bool,
    /// The tool run: `cred`, or an application's own build of it.
    pub binary: PathBuf,
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything printed.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|_| panic!("not JSON: {}", self.stdout))
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "failed: {self:?}");
        self
    }

    #[track_caller]
    pub fn fails_with(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:?}");
        self
    }
}

impl Cli {
    /// A fresh directory; the store is an SQLite database in it, not yet created.
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cred-test-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = format!("sqlite:{}", dir.join("store/credentials.db").display());
        let key_file = dir.join("master.key");
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_cred"));
        Self { dir, store, key_file, with_key_file: true, binary }
    }

    /// A fresh directory whose commands get no key file: the key comes from a passphrase.
    pub fn with_passphrase(name: &str) -> Self {
        let mut cli = Self::new(name);
        cli.with_key_file = false;
        cli
    }

    /// A fresh directory with the store created and a key file.
    pub fn initialized(name: &str) -> Self {
        let cli = Self::new(name);
        cli.run(&["init"]).ok();
        cli
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `cred args` with this directory's store and key, nothing from the caller's environment,
    /// in a session of its own (`setsid`): it has no terminal to ask at, whoever runs the tests,
    /// unless the test gives it one (`run_at_terminal`).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("setsid");
        command.arg("--wait").arg(&self.binary);
        for (var, _) in std::env::vars().filter(|(var, _)| var.starts_with("CRED_")) {
            command.env_remove(var);
        }
        command
            .env("CRED_STORE", &self.store)
            .env("CRED_PRINCIPAL", "ops:tester")
            .current_dir(&self.dir)
            .args(args);
        if self.with_key_file {
            command.env("CRED_KEY_FILE", &self.key_file);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, b"")
    }

    /// Runs with `input` on standard input. A command may exit without reading it (refusing its
    /// arguments first): the input it never read is then no failure of the test's.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        match child.stdin.take().unwrap().write_all(input) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
            written => written.unwrap(),
        }
        finished(child.wait_with_output().unwrap())
    }

    /// Runs `cred args` at a pseudo-terminal: each `(prompt, answer)` is typed once `prompt` has
    /// appeared (after the previous one), so echo is already off when the answer arrives.
    /// Standard output and error both go to the terminal and come back in `stdout`.
    pub fn run_at_terminal(&self, args: &[&str], answers: &[(&str, &str)]) -> Run {
        self.run_line_at_terminal(&self.shell_line(args), answers)
    }

    /// `cred args` as a shell command line, quoted.
    pub fn shell_line(&self, args: &[&str]) -> String {
        std::iter::once(self.binary.to_str().unwrap_or_default())
            .chain(args.iter().copied())
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// As [`run_at_terminal`](Self::run_at_terminal), for a whole shell command line (a pipe
    /// into `cred`, or a command after it at the same terminal).
    pub fn run_line_at_terminal(&self, line: &str, answers: &[(&str, &str)]) -> Run {
        let command = self.command(&[]);
        let mut script = Command::new("setsid");
        script.args(["--wait", "script"]);
        script.args(["-qec", line, "/dev/null"]);
        for (var, value) in command.get_envs() {
            match value {
                Some(value) => script.env(var, value),
                None => script.env_remove(var),
            };
        }
        let mut child: Child = script
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("`script` (util-linux) runs commands at a pseudo-terminal");
        let (sender, receiver) = mpsc::channel::<Vec<u8>>();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stdout.read(&mut buffer) {
                if read == 0 || sender.send(buffer[..read].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut seen = String::new();
        let mut from = 0;
        let mut stdin = child.stdin.take().unwrap();
        for (prompt, answer) in answers {
            loop {
                if let Some(at) = seen[from..].find(prompt) {
                    from += at + prompt.len();
                    break;
                }
                let chunk = receiver
                    .recv_timeout(PROMPT_WAIT)
                    .unwrap_or_else(|_| panic!("no prompt `{prompt}`; printed: {seen}"));
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            // Ctrl-C is typed alone, as a person does: a line break after it could answer the
            // question before the signal ends the process.
            let typed = if answer.ends_with('\u{3}') {
                (*answer).to_owned()
            } else {
                format!("{answer}\n")
            };
            stdin.write_all(typed.as_bytes()).unwrap();
            stdin.flush().unwrap();
        }
        let status = child.wait().unwrap();
        drop(stdin);
        reader.join().unwrap();
        while let Ok(chunk) = receiver.try_recv() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        Run { code: status.code().unwrap_or(-1), stdout: seen, stderr }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn finished(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Every file under `dir`, read as bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files.push((path, bytes));
            }
        }
    }
    files
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}
