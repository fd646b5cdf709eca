//! Change feeds: how a store tells the managers on it that a record changed, so their caches stay
//! coherent with writers they do not know about (other processes, other machines).
//!
//! A feed is one of two kinds:
//! - **immediate**: the store reports every change before the write that made it returns (an
//!   in-process store). A cache over it is always as fresh as the store.
//! - **polled**: the store looks for changes now and then and reports, with
//!   [`ChangeListener::caught_up`], the moment up to which it has reported everything. A cache over
//!   it serves a hit only while that moment is recent ([`MAX_FEED_LAG`]); while the feed lags or is
//!   broken every read goes to the store, so a lost feed costs speed, never correctness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How far behind a polled feed may be before a cache over it stops serving hits. A change
/// committed anywhere is refused by every manager on the store within about this long.
pub const MAX_FEED_LAG: Duration = Duration::from_millis(60);

/// How often the file and SQLite feeds look for changes.
#[cfg(any(feature = "sqlite", feature = "file"))]
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Receives what a store's change feed reports. Implemented by the manager's cache.
pub trait ChangeListener: Send + Sync + 'static {
    /// Record `id` (a storage id) was written or deleted.
    fn changed(&self, id: &str);

    /// The feed may have missed changes (it fell behind, or reconnected): forget everything.
    fn lost(&self);

    /// Every change committed before `as_of` (a reading of the system clock taken before the
    /// feed looked) has been reported.
    fn caught_up(&self, as_of: SystemTime);
}

/// How fresh what a feed reports is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedKind {
    /// Every change is reported before the write that made it returns.
    Immediate,
    /// Changes are found by looking; [`ChangeListener::caught_up`] says how recent the view is.
    Polled,
}

/// A running change feed; dropping it stops the feed.
pub struct ChangeFeed {
    kind: FeedKind,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl ChangeFeed {
    /// A feed of `kind` that runs until `stop` is set; [`Drop`] sets it.
    pub fn new(kind: FeedKind, stop: Arc<AtomicBool>) -> Self {
        Self { kind, stop }
    }

    /// How fresh the feed's reports are.
    pub fn kind(&self) -> FeedKind {
        self.kind
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The listeners of the feeds running on one store handle, told of that handle's own writes
/// before the writes return: in-process sharers of a handle need not wait for a poll. As a
/// [`ChangeListener`] it passes what one feed reports to every listener (the PostgreSQL store
/// runs one feed per process for all of them).
#[derive(Default)]
pub(crate) struct LocalListeners {
    watchers: std::sync::Mutex<Vec<Watcher>>,
}

/// A running feed's listener and its stop flag.
type Watcher = (Arc<dyn ChangeListener>, Arc<AtomicBool>);

impl std::fmt::Debug for LocalListeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalListeners").field("watchers", &self.lock().len()).finish()
    }
}

impl LocalListeners {
    /// Adds `listener` until `stop` is set.
    pub(crate) fn add(&self, listener: Arc<dyn ChangeListener>, stop: Arc<AtomicBool>) {
        self.lock().push((listener, stop));
    }

    /// Tells every running feed that `id` changed.
    pub(crate) fn report(&self, id: &str) {
        self.each(|listener| listener.changed(id));
    }

    /// Whether any feed still runs.
    #[cfg(feature = "postgres")]
    pub(crate) fn any_running(&self) -> bool {
        let mut watchers = self.lock();
        watchers.retain(|(_, stopped)| !stopped.load(Ordering::Acquire));
        !watchers.is_empty()
    }

    /// Calls `tell` with the listener of every running feed, dropping those of stopped feeds.
    fn each(&self, tell: impl Fn(&dyn ChangeListener)) {
        let mut watchers = self.lock();
        watchers.retain(|(_, stopped)| !stopped.load(Ordering::Acquire));
        for (listener, _) in watchers.iter() {
            tell(listener.as_ref());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Watcher>> {
        self.watchers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ChangeListener for LocalListeners {
    fn changed(&self, id: &str) {
        self.report(id);
    }

    fn lost(&self) {
        self.each(|listener| listener.lost());
    }

    fn caught_up(&self, as_of: SystemTime) {
        self.each(|listener| listener.caught_up(as_of));
    }
}

/// Something that looks for changes once per call; run by [`spawn_poller`].
#[cfg(any(feature = "sqlite", feature = "file"))]
pub(crate) trait Poll: Send + 'static {
    /// Reports what changed since the last call to `listener`. `Err` when the source could not
    /// be read: the poller reports nothing as caught up until a later call succeeds.
    fn poll(&mut self, listener: &dyn ChangeListener) -> Result<(), ()>;
}

#[cfg(any(feature = "sqlite", feature = "file"))]
/// Runs `poll` every [`POLL_INTERVAL`] on a thread of its own until the returned feed is dropped,
/// and reports the writes of the store handle itself through `local` at once.
pub(crate) fn spawn_poller(
    name: &'static str,
    mut poll: impl Poll,
    listener: Arc<dyn ChangeListener>,
    local: &LocalListeners,
) -> std::io::Result<ChangeFeed> {
    let stop = Arc::new(AtomicBool::new(false));
    local.add(Arc::clone(&listener), Arc::clone(&stop));
    let stopped = Arc::clone(&stop);
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        let mut healthy = true;
        while !stopped.load(Ordering::Acquire) {
            let as_of = SystemTime::now();
            match poll.poll(listener.as_ref()) {
                Ok(()) => {
                    if !healthy {
                        // Whatever happened while the source was unreadable is unknown.
                        crate::telemetry::feed_lost(name);
                        listener.lost();
                        healthy = true;
                    }
                    listener.caught_up(as_of);
                }
                Err(()) => healthy = false,
            }
            std::thread::park_timeout(POLL_INTERVAL);
        }
    })?;
    Ok(ChangeFeed::new(FeedKind::Polled, stop))
}

/// A listener that records what a feed reports, for the feeds' tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct RecordingListener {
    changed: std::sync::Mutex<Vec<String>>,
    lost: std::sync::Mutex<usize>,
}

#[cfg(test)]
impl RecordingListener {
    /// The ids reported changed since the last call, and how many losses so far.
    pub(crate) fn take(&self) -> (Vec<String>, usize) {
        let changed = std::mem::take(&mut *self.changed.lock().unwrap());
        (changed, *self.lost.lock().unwrap())
    }
}

#[cfg(test)]
impl ChangeListener for RecordingListener {
    fn changed(&self, id: &str) {
        self.changed.lock().unwrap().push(id.to_owned());
    }

    fn lost(&self) {
        *self.lost.lock().unwrap() += 1;
    }

    fn caught_up(&self, _: SystemTime) {}
}
