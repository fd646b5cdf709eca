//! The PostgreSQL store's change feed: one connection outside the pool that `LISTEN`s for the
//! notifications every write sends in the statement that makes it, and a heartbeat on it.
//!
//! - The connection is driven by polling its messages, so no notification is dropped, and each
//!   notification is reported before anything after it on the wire: when a heartbeat's reply
//!   arrives, every write committed before the heartbeat was sent has been reported (the server
//!   delivers pending notifications before it says it is ready for the next query). Each reply
//!   therefore reports the feed caught up to the moment its heartbeat left.
//! - A heartbeat goes out every [`HEARTBEAT_INTERVAL`]; one that gets no reply within
//!   [`HEARTBEAT_TIMEOUT`] means the connection is stalled, silently or not.
//! - On any loss: tell the cache everything may have changed (it clears, and while no heartbeat
//!   succeeds it is bypassed), reconnect with backoff, `LISTEN` first, tell it again, then let
//!   heartbeats vouch for the cache once more.
//!
//! The feed runs on a thread of its own with its own single-threaded runtime, so it does not
//! depend on the caller's runtime and stops when its [`ChangeFeed`] is dropped.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use tokio_postgres::{AsyncMessage, Client};

use super::postgres_connection::{Settings, quote_identifier};
use super::{ChangeFeed, ChangeListener, FeedKind, LocalListeners};
use crate::{Error, Result};

/// How often the heartbeat goes out: well inside [`MAX_FEED_LAG`](super::MAX_FEED_LAG).
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(20);
/// How long a heartbeat may wait for its reply before the connection counts as lost.
pub(crate) const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(1_500);
/// Pause before reconnecting, doubling up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Starts the feed on a thread of its own; the writes of the store handle itself reach `listener`
/// through `local` at once.
pub(crate) fn spawn(
    settings: Arc<Settings>,
    channel: String,
    listener: Arc<dyn ChangeListener>,
    local: &LocalListeners,
) -> Result<ChangeFeed> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::io("starting the change feed", source))?;
    let stop = Arc::new(AtomicBool::new(false));
    local.add(Arc::clone(&listener), Arc::clone(&stop));
    let stopped = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("credential-postgres-feed".to_owned())
        .spawn(move || runtime.block_on(listen(&settings, &channel, listener, &stopped)))
        .map_err(|source| Error::io("starting the change feed", source))?;
    Ok(ChangeFeed::new(FeedKind::Polled, stop))
}

/// Keeps a listening session up until `stop` is set.
async fn listen(
    settings: &Settings,
    channel: &str,
    listener: Arc<dyn ChangeListener>,
    stop: &AtomicBool,
) {
    // Named per process and schema, so an operator (or a test) can find this connection's
    // backend in `pg_stat_activity`.
    let schema = channel.strip_prefix("credential_changes/").unwrap_or(channel);
    let name = format!("credential-feed/{}/{schema}", std::process::id());
    let mut backoff = FIRST_BACKOFF;
    while !stop.load(Ordering::Acquire) {
        let vouched = session(settings, &name, channel, &listener, stop).await;
        if !stop.load(Ordering::Acquire) {
            crate::telemetry::feed_lost("credential-postgres-feed");
        }
        listener.lost();
        if vouched {
            backoff = FIRST_BACKOFF;
        }
        sleep_unless_stopped(backoff, stop).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: `LISTEN`, then heartbeats until one fails or the feed stops. Whether any
/// heartbeat succeeded.
async fn session(
    settings: &Settings,
    name: &str,
    channel: &str,
    listener: &Arc<dyn ChangeListener>,
    stop: &AtomicBool,
) -> bool {
    let Ok(Ok((client, mut connection))) =
        tokio::time::timeout(HEARTBEAT_TIMEOUT, settings.connect_raw(Some(name))).await
    else {
        return false;
    };
    let reporter = Arc::clone(listener);
    let heard_channel = channel.to_owned();
    let driver = tokio::spawn(async move {
        poll_fn(|cx| {
            loop {
                match connection.poll_message(cx) {
                    Poll::Ready(Some(Ok(AsyncMessage::Notification(notification)))) => {
                        if notification.channel() == heard_channel {
                            report(reporter.as_ref(), notification.payload());
                        }
                    }
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(None | Some(Err(_))) => {
                        // Closed under us: say so now rather than at the next heartbeat.
                        reporter.lost();
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
        client.batch_execute(&format!("LISTEN {}", quote_identifier(channel))),
    )
    .await;
    let mut vouched = false;
    if matches!(listening, Ok(Ok(()))) {
        // Whatever changed before the `LISTEN` took effect was never notified to us.
        listener.lost();
        while !stop.load(Ordering::Acquire) && heartbeat(&client, listener.as_ref()).await {
            vouched = true;
            sleep_unless_stopped(HEARTBEAT_INTERVAL, stop).await;
        }
    }
    driver.abort();
    vouched
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

/// Sleeps for `duration`, waking early (in steps of the heartbeat interval) when `stop` is set.
async fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) {
    let mut left = duration;
    while !left.is_zero() && !stop.load(Ordering::Acquire) {
        let step = left.min(HEARTBEAT_INTERVAL);
        tokio::time::sleep(step).await;
        left -= step;
    }
}
