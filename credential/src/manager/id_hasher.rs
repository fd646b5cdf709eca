//! A fast hasher for the manager's in-memory maps keyed by credential id.
//!
//! SipHash guards maps whose keys an attacker chooses freely against collision flooding. The
//! maps here are bounded (the cache by its capacity, decision memos by `MAX_MEMO_ENTRIES`), so
//! the worst case is bounded too, and FNV-1a keeps the per-read cost of two lookups low.

use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Default for IdHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` keyed by credential id (owned, or shared as `Arc<str>`).
pub(crate) type IdMap<V, K = String> =
    std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>;
