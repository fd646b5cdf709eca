//! A progress bar on standard error: redrawn in place at a terminal, a line per percent
//! otherwise (so logs and tests see it too).

use std::io::{IsTerminal, Write};

/// Progress through `total` items.
pub(crate) struct Progress {
    label: &'static str,
    terminal: bool,
    last_percent: Option<usize>,
}

const BAR_WIDTH: usize = 30;

impl Progress {
    pub(crate) fn new(label: &'static str) -> Self {
        Self { label, terminal: std::io::stderr().is_terminal(), last_percent: None }
    }

    /// Shows `done` of `total`, with `detail` after the count.
    pub(crate) fn show(&mut self, done: usize, total: usize, detail: &str) {
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        if self.last_percent == Some(percent) && done != total {
            return;
        }
        self.last_percent = Some(percent);
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let filled = percent * BAR_WIDTH / 100;
            let bar = format!("{}{}", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled));
            let _ = write!(stderr, "\r{} [{bar}] {done}/{total} {detail}", self.label);
            if done == total {
                let _ = writeln!(stderr);
            }
        } else {
            let _ = writeln!(stderr, "{}: {done}/{total} ({percent}%) {detail}", self.label);
        }
    }
}
