//! What commands print: aligned tables or one JSON document on standard output; errors and
//! progress on standard error. Nothing printed here is a secret unless the operator asked for it
//! with `--reveal`.

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::exit::Failure;

/// Human or JSON output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    pub(crate) fn is_json(self) -> bool {
        self.json
    }

    /// Prints `value` as one JSON document, written through a buffer that is wiped afterwards
    /// (it may hold revealed values).
    pub(crate) fn json(self, value: &impl Serialize) {
        let mut text = Zeroizing::new(Vec::new());
        if serde_json::to_writer(&mut *text, value).is_ok() {
            text.push(b'\n');
            let _ = std::io::stdout().lock().write_all(&text);
        }
    }

    /// Prints `human` as it is, or `value` as JSON under `--json`.
    pub(crate) fn either(self, human: &str, value: &Value) {
        if self.json { self.json(value) } else { self.line(human) }
    }

    /// Prints one line on standard output. A closed pipe ends the output quietly.
    pub(crate) fn line(self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
    }

    /// Prints `items`: a JSON array of `json(item)` under `--json`, else a table of `row(item)`
    /// under `headers`.
    pub(crate) fn items<T>(
        self,
        items: &[T],
        headers: &[&str],
        row: impl Fn(&T) -> Vec<String>,
        json: impl Fn(&T) -> Value,
    ) {
        if self.json {
            self.json(&Value::Array(items.iter().map(json).collect()));
        } else {
            self.table(headers, &items.iter().map(row).collect::<Vec<_>>());
        }
    }

    /// Prints rows under headers, columns aligned, control characters escaped (a value with a
    /// line break or a terminal escape in it cannot forge a row or restyle the terminal). Each
    /// line is laid out in a buffer that is wiped afterwards (a cell may hold a revealed value).
    pub(crate) fn table(self, headers: &[&str], rows: &[Vec<String>]) {
        let rows: Vec<Vec<Zeroizing<String>>> =
            rows.iter().map(|row| row.iter().map(|cell| escaped(cell)).collect()).collect();
        let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let print = |cells: &mut dyn Iterator<Item = &str>| {
            let mut line = Zeroizing::new(String::new());
            for (index, (cell, width)) in cells.zip(&widths).enumerate() {
                let gap = if index == 0 { "" } else { "  " };
                let _ = write!(line, "{gap}{cell:<width$}");
            }
            self.line(line.trim_end());
        };
        print(&mut headers.iter().copied());
        for row in &rows {
            print(&mut row.iter().map(|cell| cell.as_str()));
        }
    }

    /// A note for the operator on standard error (never under `--json`'s standard output).
    pub(crate) fn note(self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }

    /// Reports a failure on standard error.
    pub(crate) fn failure(self, failure: &Failure) {
        let text = if self.json {
            json!({
                "error": {
                    "code": failure.code,
                    "exit": failure.status.code(),
                    "message": failure.message,
                }
            })
            .to_string()
        } else {
            format!("error: {}", failure.message)
        };
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// `cell` with every control character written as its escape (`\n`, `\u{1b}`), into a buffer
/// that is wiped when dropped.
fn escaped(cell: &str) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(cell.len()));
    for character in cell.chars() {
        if character.is_control() {
            let _ = write!(text, "{}", character.escape_default());
        } else {
            text.push(character);
        }
    }
    text
}

/// A time as RFC 3339 to the second, or `-`.
pub(crate) fn time(at: Option<credential::DateTime<credential::Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_cells_are_escaped() {
        assert_eq!(escaped("ops\nroot\u{1b}[31m").as_str(), "ops\\nroot\\u{1b}[31m");
        assert_eq!(escaped("plain ✓ text").as_str(), "plain ✓ text");
    }
}
