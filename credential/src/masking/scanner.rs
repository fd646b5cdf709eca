//! What the masker scans with: automata over every form of every known secret, and the one rule
//! that turns their matches into masked text, for whole texts and for streams alike.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, BuildError, MatchKind};

use super::forms::Secret;

/// What each masked run of text becomes.
pub const MASK: &str = "***";

/// The automata of a moment: one over the values known when it was last consolidated (the base),
/// one over the values learned since (see `Masker`), and how many learned values they cover.
pub(crate) struct Scanner {
    base: Option<AhoCorasick>,
    base_generation: u64,
    recent: Option<AhoCorasick>,
    generation: u64,
    longest: usize,
}

impl Scanner {
    /// A scanner that masks nothing.
    pub(crate) fn empty() -> Self {
        Self::new(None, 0, None, 0)
    }

    /// A scanner over `base`, built from the first `base_generation` values learned, and
    /// `recent`, built from those learned after them up to `generation`.
    pub(crate) fn new(
        base: Option<AhoCorasick>,
        base_generation: u64,
        recent: Option<AhoCorasick>,
        generation: u64,
    ) -> Self {
        let longest = base.iter().chain(&recent).map(AhoCorasick::max_pattern_len).max();
        Self { base, base_generation, recent, generation, longest: longest.unwrap_or(0) }
    }

    /// An automaton over every form of `secrets`; `None` when there is none. The forms are
    /// wiped once it is built; the automaton's own tables are freed, not wiped (the crate that
    /// builds them does not zeroize).
    pub(crate) fn automaton<'a>(
        secrets: impl IntoIterator<Item = &'a Secret>,
    ) -> Result<Option<AhoCorasick>, BuildError> {
        let forms: Vec<_> = secrets.into_iter().flat_map(Secret::forms).collect();
        if forms.is_empty() {
            return Ok(None);
        }
        // Every occurrence, overlapping ones included: the masked runs are their union. A
        // contiguous NFA builds in linear time and scans about as fast as a DFA here, which
        // takes seconds to build over a long value.
        let automaton = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .match_kind(MatchKind::Standard)
            .build(forms.iter().map(|form| form.as_bytes()))?;
        Ok(Some(automaton))
    }

    /// How many values learned it covers.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The automaton over the values known at the last consolidation.
    pub(crate) fn base(&self) -> Option<&AhoCorasick> {
        self.base.as_ref()
    }

    /// How many values learned the base covers.
    pub(crate) fn base_generation(&self) -> u64 {
        self.base_generation
    }

    /// Whether values learned since the base are scanned for separately.
    pub(crate) fn has_recent(&self) -> bool {
        self.recent.is_some()
    }

    /// The longest form, in bytes: a stream holds back one byte less.
    pub(crate) fn longest(&self) -> usize {
        self.longest
    }

    /// The runs of `text` to mask: every occurrence of every form, sorted, overlapping ones
    /// merged. A text without a secret costs one scan per automaton and no allocation.
    pub(crate) fn runs(&self, text: &[u8]) -> Vec<Range<usize>> {
        let mut runs: Vec<Range<usize>> = Vec::new();
        for automaton in self.base.iter().chain(&self.recent) {
            runs.extend(automaton.find_overlapping_iter(text).map(|found| found.range()));
        }
        if runs.len() > 1 {
            runs.sort_unstable_by_key(|run| run.start);
            let mut merged: Vec<Range<usize>> = Vec::with_capacity(runs.len());
            for run in runs {
                match merged.last_mut() {
                    Some(last) if run.start < last.end => last.end = last.end.max(run.end),
                    _ => merged.push(run),
                }
            }
            runs = merged;
        }
        runs
    }
}

/// Where a masking step left a text: bytes before `consumed` are final (written out, masked),
/// and the first `covered` bytes after it were already written out as part of a masked run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) consumed: usize,
    pub(crate) covered: usize,
}

/// Writes `text` up to `cut` into `out` with every run in `runs` (from [`Scanner::runs`]) that
/// starts before `cut` replaced by [`MASK`]; a run that reaches past `cut` is written whole. The
/// first `covered` bytes of `text` were already written as part of a masked run, which runs
/// starting inside them extend.
///
/// With `cut` at the end, this masks a whole text. A stream cuts one byte short of the longest
/// form before its end: every occurrence starting before the cut then lies wholly in `text`, so a
/// stream masks exactly as its concatenation would be masked.
pub(crate) fn mask_until(
    runs: &[Range<usize>],
    text: &[u8],
    covered: usize,
    cut: usize,
    out: &mut Vec<u8>,
) -> Progress {
    let mut written = covered;
    for run in runs.iter().take_while(|run| run.start < cut) {
        if run.start >= written {
            out.extend_from_slice(&text[written..run.start]);
            out.extend_from_slice(MASK.as_bytes());
        }
        written = written.max(run.end);
    }
    if written < cut {
        out.extend_from_slice(&text[written..cut]);
        written = cut;
    }
    Progress { consumed: cut, covered: written - cut }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masking::forms::Probe;

    fn scanner(values: &[&str]) -> Scanner {
        let secrets: Vec<_> =
            values.iter().map(|value| Secret::of(Probe::Value(value.as_bytes()))).collect();
        Scanner::new(Scanner::automaton(&secrets).unwrap(), 1, None, 1)
    }

    fn masked(scanner: &Scanner, text: &str) -> String {
        let mut out = Vec::new();
        let runs = scanner.runs(text.as_bytes());
        mask_until(&runs, text.as_bytes(), 0, text.len(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_occurrence_is_masked_and_overlapping_ones_become_one_run() {
        let scanner = scanner(&["abcdef", "defxyz", "tok3n-value"]);
        assert_eq!(masked(&scanner, "x abcdef y abcdefxyz z"), "x *** y *** z");
        assert_eq!(masked(&scanner, "tok3n-valuetok3n-value"), "******");
        assert_eq!(masked(&scanner, "nothing here"), "nothing here");
        assert!(scanner.runs(b"nothing here").is_empty());
    }

    #[test]
    fn a_run_already_written_is_extended_not_written_again() {
        let scanner = scanner(&["abcdef", "defxyz"]);
        let text = b"defxyz tail";
        let runs = scanner.runs(text);
        let mut out = Vec::new();
        // The first three bytes were written as the end of a masked `abcdef`.
        let progress = mask_until(&runs, text, 3, text.len(), &mut out);
        assert_eq!(out, b" tail");
        assert_eq!(progress, Progress { consumed: text.len(), covered: 0 });
    }

    #[test]
    fn a_run_reaching_past_the_cut_is_written_whole_and_counted_as_covered() {
        let scanner = scanner(&["abcdef"]);
        let text = b"xxabcdefyy";
        let runs = scanner.runs(text);
        let mut out = Vec::new();
        let progress = mask_until(&runs, text, 0, 4, &mut out);
        assert_eq!(out, b"xx***");
        assert_eq!(progress, Progress { consumed: 4, covered: 4 });
    }
}
