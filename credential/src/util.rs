//! Small helpers that are not concepts of the manager: the clock readings the cache compares,
//! per-thread shards, the hash of in-memory maps, opening files that may be hostile, and the unit
//! tests' scratch directories.

mod clock;
mod id_map;
pub(crate) mod regular_file;
#[cfg(test)]
pub(crate) mod scratch;
mod sharded;

pub(crate) use self::clock::{nanos, now_nanos};
pub(crate) use self::id_map::IdMap;
pub(crate) use self::sharded::Sharded;
