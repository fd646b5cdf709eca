//! The hash for the in-memory maps keyed by credential id and principal.
//!
//! SipHash guards maps whose keys an attacker chooses freely against collision flooding, at
//! several times the cost per key. The manager's maps are bounded (the cache by its capacity,
//! decision memos and the audit queue's counts of reads by theirs); the memory store's ids are the ones its owner
//! created. foldhash is seeded per process, so collisions cannot be prepared in advance; it
//! hashes a word at a time, which keeps the per-read lookups cheap.

/// A `HashMap` keyed by credential id (owned, or shared as `Arc<str>`), or by anything else the
/// read path looks up.
pub(crate) type IdMap<V, K = String> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
