//! Small helpers that are not concepts of the manager: the clock readings the cache compares,
//! per-thread shards, the hash of in-memory maps, and opening files that may be hostile.

mod clock;
mod id_map;
pub(crate) mod regular_file;
mod sharded;

pub(crate) use self::clock::{nanos, now_nanos};
pub(crate) use self::id_map::IdMap;
pub(crate) use self::sharded::Sharded;
