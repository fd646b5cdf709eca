//! The PostgreSQL store's change feed: one connection per process and schema, outside the pool,
//! that `LISTEN`s for the notifications every write sends in the statement that makes it, and a
//! heartbeat on it; what it hears goes to every manager in the process that watches the schema.
//!
//! - The connection is driven by polling its messages, so no notification is dropped, and each
//!   notification is reported before anything after it on the wire: when a heartbeat's reply
//!   arrives, every write committed before the heartbeat was sent has been reported (the server
//!   delivers pending notifications before it says it is ready for the next query). Each reply
//!   therefore reports the feed caught up to the moment its heartbeat left.
//! - A heartbeat goes out every [`HEARTBEAT_INTERVAL`]; one that gets no reply within
//!   [`HEARTBEAT_TIMEOUT`] means the connection is stalled, silently or not.
//! - On any loss: tell the caches everything may have changed (they clear, and while no heartbeat
//!   succeeds they are bypassed), reconnect with backoff, `LISTEN` first, tell them again, then
//!   let heartbeats vouch for the caches once more.
//! - A watcher that joins a running feed hears what the feed hears from then on: its cache starts
//!   empty, so what was reported before it joined is in the store it reads from.
//!
//! The feed runs on the runtime that drives the process's connections to the server, so it does
//! not depend on a caller's runtime; it runs while any of its [`ChangeFeed`]s is alive and stops
//! (closing its connection) when the last is dropped.

use std::future::poll_fn;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use tokio_postgres::{AsyncMessage, Client};

use super::postgres_connection::{Settings, quote_identifier};
use super::{ChangeFeed, ChangeListener, FeedKind, LocalListeners};

/// How often the heartbeat goes out: well inside [`MAX_FEED_LAG`](super::MAX_FEED_LAG).
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(20);
/// How long a heartbeat may wait for its reply before the connection counts as lost.
pub(crate) const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(1_500);
/// Pause before reconnecting, doubling up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The feed of one schema on one server, for every watcher in the process.
#[derive(Debug)]
pub(crate) struct SharedFeed {
    /// A direct connection to the server: `LISTEN` does not pass a pooler in transaction mode.
    settings: Arc<Settings>,
    channel: String,
    /// Every watcher, told of the process's own writes at once and of the rest by the feed.
    listeners: LocalListeners,
    /// Whether the listening task runs; changed only under this lock, with the watchers checked.
    running: Mutex<bool>,
}

impl SharedFeed {
    pub(crate) fn new(settings: Arc<Settings>, channel: String) -> Self {
        Self { settings, channel, listeners: LocalListeners::default(), running: Mutex::new(false) }
    }

    /// Adds `listener` until the returned feed is dropped, starting the listening task on
    /// `driver` if it does not run.
    pub(crate) fn watch(
        self: &Arc<Self>,
        listener: Arc<dyn ChangeListener>,
        driver: &tokio::runtime::Handle,
    ) -> ChangeFeed {
        let stop = Arc::new(AtomicBool::new(false));
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        self.listeners.add(listener, Arc::clone(&stop));
        if !*running {
            *running = true;
            driver.spawn(Arc::clone(self).listen());
        }
        ChangeFeed::new(FeedKind::Polled, stop)
    }

    /// Tells every watcher that the process itself changed record `id`.
    pub(crate) fn report(&self, id: &str) {
        self.listeners.report(id);
    }

    /// Whether the task should go on; once it says no, the task ends (and a later watcher starts
    /// another).
    fn still_watched(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        *running = self.listeners.any_running();
        *running
    }

    /// Keeps a listening session up while anyone watches.
    async fn listen(self: Arc<Self>) {
        // Named per process and schema, so an operator (or a test) can find this connection's
        // backend in `pg_stat_activity`.
        let schema = self.channel.strip_prefix("credential_changes/").unwrap_or(&self.channel);
        let name = format!("credential-feed/{}/{schema}", std::process::id());
        let mut backoff = FIRST_BACKOFF;
        loop {
            let vouched = match self.session(&name).await {
                Session::Unwatched => return,
                Session::Lost { vouched } => vouched,
            };
            crate::telemetry::feed_lost("credential-postgres-feed");
            self.listeners.lost();
            if vouched {
                backoff = FIRST_BACKOFF;
            }
            if !self.pause(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection: `LISTEN`, then heartbeats until one fails or nobody watches.
    async fn session(self: &Arc<Self>, name: &str) -> Session {
        let Ok(Ok((client, mut connection))) =
            tokio::time::timeout(HEARTBEAT_TIMEOUT, self.settings.connect_raw(Some(name))).await
        else {
            return Session::Lost { vouched: false };
        };
        let feed = Arc::clone(self);
        let driver = tokio::spawn(async move {
            poll_fn(|cx| {
                loop {
                    match connection.poll_message(cx) {
                        Poll::Ready(Some(Ok(AsyncMessage::Notification(notification)))) => {
                            if notification.channel() == feed.channel {
                                report(&feed.listeners, notification.payload());
                            }
                        }
                        Poll::Ready(Some(Ok(_))) => {}
                        Poll::Ready(None | Some(Err(_))) => {
                            // Closed under us: say so now rather than at the next heartbeat.
                            feed.listeners.lost();
                            return Poll::Ready(());
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
            })
            .await;
        });
        let listening = tokio::time::timeout(
            HEARTBEAT_TIMEOUT,
            client.batch_execute(&format!("LISTEN {}", quote_identifier(&self.channel))),
        )
        .await;
        let mut ended = Session::Lost { vouched: false };
        if matches!(listening, Ok(Ok(()))) {
            // Whatever changed before the `LISTEN` took effect was never notified to us.
            self.listeners.lost();
            loop {
                if !self.still_watched() {
                    ended = Session::Unwatched;
                    break;
                }
                if !heartbeat(&client, &self.listeners).await {
                    break;
                }
                ended = Session::Lost { vouched: true };
                if !self.pause(HEARTBEAT_INTERVAL).await {
                    ended = Session::Unwatched;
                    break;
                }
            }
        }
        driver.abort();
        ended
    }

    /// Sleeps for `duration` in steps of the heartbeat interval; `false` (at once) when nobody
    /// watches any more.
    async fn pause(&self, duration: Duration) -> bool {
        let mut left = duration;
        while !left.is_zero() {
            let step = left.min(HEARTBEAT_INTERVAL);
            tokio::time::sleep(step).await;
            left -= step;
            if !self.still_watched() {
                return false;
            }
        }
        true
    }
}

/// How a listening session ended.
enum Session {
    /// Nobody watches any more: the task ends.
    Unwatched,
    /// The connection was lost (or never made); whether any heartbeat succeeded on it.
    Lost { vouched: bool },
}

/// One heartbeat; whether its reply came in time.
async fn heartbeat(client: &Client, listener: &dyn ChangeListener) -> bool {
    let as_of = SystemTime::now();
    match tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query("")).await {
        Ok(Ok(_)) => {
            listener.caught_up(as_of);
            true
        }
        _ => false,
    }
}

/// Reports the record a notification names; its payload is `revision id`.
fn report(listener: &dyn ChangeListener, payload: &str) {
    match payload.split_once(' ') {
        Some((_, id)) => listener.changed(id),
        // Not one of ours: whatever it meant, forgetting is safe.
        None => listener.lost(),
    }
}
