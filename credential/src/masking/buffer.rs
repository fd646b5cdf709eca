//! What a masking writer holds between writes, for the blocking and the asynchronous writer
//! alike: the text not yet final, and the masked text not yet written on.

use zeroize::{Zeroize, Zeroizing};

use super::Masker;
use super::scanner::mask_until;

/// The text a writer was given and has not masked yet, and the masked text it has not written.
pub(crate) struct MaskingBuffer {
    masker: Masker,
    /// Not final yet: it may hold the start of a secret (wiped as it goes).
    held: Zeroizing<Vec<u8>>,
    /// How many bytes at the start of `held` were already written out as part of a masked run.
    covered: usize,
    /// Masked, not yet written to the inner writer.
    out: Vec<u8>,
    /// How much of `out` was written.
    written: usize,
}

impl MaskingBuffer {
    pub(crate) fn new(masker: Masker) -> Self {
        Self { masker, held: Zeroizing::new(Vec::new()), covered: 0, out: Vec::new(), written: 0 }
    }

    /// Takes `bytes`: what can no longer be the start of a secret is masked and becomes
    /// pending; at most one byte less than the longest form known is held back.
    pub(crate) fn accept(&mut self, bytes: &[u8]) {
        self.held.extend_from_slice(bytes);
        self.mask(false);
    }

    /// Masks everything held, as the end of the text: nothing more will follow it.
    pub(crate) fn finish(&mut self) {
        self.mask(true);
    }

    fn mask(&mut self, end: bool) {
        let scanner = self.masker.scanner();
        let cut = if end {
            self.held.len()
        } else {
            self.held.len().saturating_sub(scanner.longest().saturating_sub(1))
        };
        let runs = scanner.runs(&self.held);
        let progress = mask_until(&runs, &self.held, self.covered, cut, &mut self.out);
        self.held.drain(..progress.consumed);
        // What the drain moved down leaves a copy behind in the spare capacity.
        self.held.spare_capacity_mut().zeroize();
        self.covered = progress.covered;
    }

    /// The masked text not yet written.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// Records that `count` bytes of [`pending`](Self::pending) were written.
    pub(crate) fn advance(&mut self, count: usize) {
        self.written += count;
        if self.written >= self.out.len() {
            self.out.clear();
            self.written = 0;
        }
    }

    /// How many bytes it holds back.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }
}
