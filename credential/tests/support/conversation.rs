//! A test of this binary run as a child process and talked with by lines: the parent writes
//! commands to its standard input and reads back the lines the child marks with [`TAG`] (the
//! test harness writes lines of its own to the same output).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Lines a child writes for its parent start with this.
pub(crate) const TAG: &str = "@@";

/// This test binary, set to run test `name` of the module whose `module_path!()` is `module`
/// alone (an ignored test: the child's entry point), its output not captured.
pub(crate) fn child_test(module: &str, name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--ignored", "--exact", super::test_named(module, name).as_str(), "--nocapture"]);
    command
}

/// A running child and the two ends of its conversation.
pub(crate) struct Conversation {
    pub(crate) child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Conversation {
    /// Starts `command` with its standard input and output piped to the parent.
    pub(crate) fn start(mut command: Command) -> Self {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdin, stdout }
    }

    pub(crate) fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next line the child meant for the parent, without its tag.
    pub(crate) fn expect(&mut self) -> String {
        loop {
            let mut line = String::new();
            assert_ne!(self.stdout.read_line(&mut line).unwrap(), 0, "the child exited");
            if let Some(message) = line.trim_end().strip_prefix(TAG) {
                return message.to_owned();
            }
        }
    }
}
