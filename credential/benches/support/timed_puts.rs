//! The store side of a put benchmark, shared by the benches of the networked stores.

use std::time::{Duration, Instant};

use credential::store::conformance::sample_record;
use credential::store::{Precondition, Store};

/// How long `iterations` compare-and-swap writes of a `sealed_len`-byte record to `id` take, each
/// on the revision the previous one returned.
pub(crate) async fn timed_puts(
    store: &dyn Store,
    id: &str,
    sealed_len: usize,
    iterations: u64,
) -> Duration {
    let mut revision = store.get(id).await.unwrap().unwrap().meta.revision;
    let record = sample_record(id, "github", &vec![7; sealed_len]);
    let started = Instant::now();
    for _ in 0..iterations {
        revision = store.put(record.clone(), Precondition::Revision(revision)).await.unwrap();
    }
    started.elapsed()
}
