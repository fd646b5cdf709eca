//! Small helpers that are not concepts of the manager: the clock readings the read path compares,
//! per-thread shards, and the hash of in-memory maps.

mod clock;
mod id_map;
mod sharded;

pub(crate) use self::clock::{nanos, now_nanos};
pub(crate) use self::id_map::IdMap;
pub(crate) use self::sharded::Sharded;
