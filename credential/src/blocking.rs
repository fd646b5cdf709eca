//! Running blocking work (file and SQLite I/O, key derivation) off the async worker threads.

use crate::{Error, Result};

/// Runs `work` where blocking is allowed: inside a multi-threaded Tokio runtime the current
/// worker hands its tasks to another thread for the duration (`block_in_place`, no thread hop);
/// inside a current-thread runtime the work moves to the blocking pool; outside any runtime it
/// simply runs.
pub(crate) async fn run<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        Ok(_) => tokio::task::spawn_blocking(work).await.map_err(|_| Error::TaskFailed)?,
        Err(_) => work(),
    }
}
