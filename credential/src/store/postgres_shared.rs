//! What the PostgreSQL stores of one process share: a registry that hands every store naming the
//! same server (the same URLs) the same connections, and the runtime that drives them.
//!
//! A fleet's limit is the server's `max_connections`: eight managers in a worker, each connecting
//! on its own, would hold eight pools and eight listeners. Sharing makes a worker's connections
//! one pool and one listener per schema whatever the number of managers. The registry holds weak
//! references only: the connections close when the last store handle using them is dropped.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Which connections a store uses: a digest of the URLs it was given (so the registry holds no
/// password) and of how its pool runs statements.
pub(crate) type Key = [u8; 32];

/// The key of a store connecting its pool to `url`, and listening there too or, behind a
/// pooler, on `direct_url`.
pub(crate) fn key(url: &str, direct_url: Option<&str>) -> Key {
    let mut digest = Sha256::new();
    digest.update([u8::from(direct_url.is_some())]);
    for part in [url, direct_url.unwrap_or_default()] {
        digest.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        digest.update(part.as_bytes());
    }
    digest.finalize().into()
}

/// Values shared per key while anyone holds them.
pub(crate) struct Registry<T> {
    entries: LazyLock<Mutex<HashMap<Key, Weak<T>>>>,
}

impl<T> Registry<T> {
    pub(crate) const fn new() -> Self {
        Self { entries: LazyLock::new(Mutex::default) }
    }

    /// The value registered under `key`, if one is still held.
    pub(crate) fn find(&self, key: &Key) -> Option<Arc<T>> {
        self.lock().get(key).and_then(Weak::upgrade)
    }

    /// Registers `made` under `key` and returns it, unless another was registered meanwhile
    /// (two stores connecting at once): then that one, and `made` is dropped.
    pub(crate) fn keep(&self, key: Key, made: Arc<T>) -> Arc<T> {
        let mut entries = self.lock();
        if let Some(existing) = entries.get(&key).and_then(Weak::upgrade) {
            return existing;
        }
        entries.retain(|_, value| value.strong_count() > 0);
        entries.insert(key, Arc::downgrade(&made));
        made
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Weak<T>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A thread with a runtime of its own that drives the I/O of shared connections: they serve
/// callers on any runtime, and must not stop when the runtime that happened to make them does.
/// Dropping it stops the thread, and every connection it drives closes.
pub(crate) struct Driver {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Driver {
    /// Starts the thread.
    ///
    /// # Errors
    /// An I/O error when the runtime or the thread cannot be started.
    pub(crate) fn start() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::io("starting the PostgreSQL connection driver", source))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("credential-postgres".to_owned())
            .spawn(move || {
                // Ends when the sender is dropped; the runtime then drops every task it drives.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|source| Error::io("starting the PostgreSQL connection driver", source))?;
        Ok(Self { handle, _stop: stop })
    }

    /// Where to spawn what the driver runs.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_shared_while_held_and_forgotten_after() {
        static REGISTRY: Registry<u32> = Registry::new();
        let one = key("postgres://a/x", None);
        assert!(REGISTRY.find(&one).is_none());
        let first = REGISTRY.keep(one, Arc::new(1));
        // Another made meanwhile loses to the registered one.
        assert_eq!(*REGISTRY.keep(one, Arc::new(2)), 1);
        assert!(Arc::ptr_eq(&REGISTRY.find(&one).unwrap(), &first));
        drop(first);
        assert!(REGISTRY.find(&one).is_none());
        assert_eq!(*REGISTRY.keep(one, Arc::new(3)), 3);
    }

    #[test]
    fn keys_tell_urls_and_their_split_apart() {
        assert_ne!(key("postgres://a/x", None), key("postgres://b/x", None));
        assert_ne!(key("postgres://a/x", Some("postgres://b/x")), key("postgres://a/x", None));
        // Behind a pooler that is the server itself is still behind a pooler.
        assert_ne!(key("postgres://a/x", Some("")), key("postgres://a/x", None));
        // The length prefix keeps a shifted boundary from colliding.
        assert_ne!(key("ab", Some("c")), key("a", Some("bc")));
    }
}
