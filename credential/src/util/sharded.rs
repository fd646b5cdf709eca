//! Per-thread shards: state that every thread writes on every read, split so that each thread
//! writes its own copy and no two cores fight over one cache line.
//!
//! A thread takes the next shard index the first time it asks and keeps it; with as many shards
//! as threads that run at once, each writes only its own. More threads than shards share, which
//! is still correct, only slower.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One value per shard, each on its own cache lines.
pub(crate) struct Sharded<T> {
    shards: Box<[Padded<T>]>,
}

/// Keeps its value away from its neighbours' cache lines (two lines: adjacent-line prefetch
/// pulls lines in pairs).
#[repr(align(128))]
struct Padded<T>(T);

/// The most shards a structure gets: beyond this many threads, threads share.
const MAX_SHARDS: usize = 64;

impl<T> Sharded<T> {
    /// A shard per thread the machine runs at once, each made by `make`.
    pub(crate) fn new(make: impl FnMut() -> T) -> Self {
        Self::with_shards(shards_per_structure(), make)
    }

    /// `count` shards (at least one), each made by `make`.
    pub(crate) fn with_shards(count: usize, mut make: impl FnMut() -> T) -> Self {
        Self { shards: (0..count.max(1)).map(|_| Padded(make())).collect() }
    }

    /// The calling thread's shard.
    pub(crate) fn local(&self) -> &T {
        &self.shards[thread_index() % self.shards.len()].0
    }

    /// Every shard.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().map(|padded| &padded.0)
    }
}

/// How many shards a structure gets: the threads the machine runs at once, rounded up to a power
/// of two. Asked of the system once (it reads the process's CPU set and quota, which costs
/// system calls).
fn shards_per_structure() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(4, std::num::NonZeroUsize::get);
        threads.next_power_of_two().min(MAX_SHARDS)
    })
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// This thread's index: taken once, in the order threads first ask.
fn thread_index() -> usize {
    THREAD_INDEX.with(|index| {
        index.get().unwrap_or_else(|| {
            let taken = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
            index.set(Some(taken));
            taken
        })
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn threads_take_their_own_shards_and_iteration_sees_them_all() {
        let sharded = Sharded::with_shards(4, || Mutex::new(0));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| *sharded.local().lock().unwrap() += 1);
            }
        });
        let total: i32 = sharded.iter().map(|shard| *shard.lock().unwrap()).sum();
        assert_eq!(total, 4);
        let mine = sharded.local() as *const Mutex<i32>;
        assert_eq!(mine, sharded.local() as *const Mutex<i32>, "a thread keeps its shard");
    }
}
