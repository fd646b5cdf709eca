//! The change feed of a Vault store: a journal of the latest writes, kept in a KV secret beside
//! the records (`{prefix}/.journal`, a path no record can have, as ids never start a segment
//! with `.`).
//!
//! Every write through a [`VaultStore`] appends its record's id to the journal by check-and-set
//! once the record is written. Every manager on the mount reads the journal every
//! [`POLL_INTERVAL`] and reports the ids written since its last read; a read of it vouches that
//! every write journaled before it has been reported. A journal trimmed past what a reader last
//! saw, started over, or unreadable is reported lost: the cache is cleared and bypassed until the
//! journal is read again.
//!
//! A write whose entry cannot be appended (the process dies right after the record is written,
//! or the journal keeps changing for every attempt) is not reported: other managers may serve
//! what they cached before it for up to their cache's time to live. Appending before the write
//! too would narrow that, at a second check-and-set on one shared secret per write, which
//! concurrent writers then queue on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::vault::VaultStore;
use super::vault_client::{Answer, VaultClient};
use super::{ChangeFeed, ChangeListener, FeedKind};
use crate::{Error, Result};

/// The journal's path below the store's prefix.
pub(super) const JOURNAL: &str = ".journal";
/// How many of the latest writes the journal keeps: a reader that falls further behind than
/// this many writes starts over (its cache is cleared).
const KEPT: usize = 256;
/// How often a manager reads the journal: well inside [`MAX_FEED_LAG`](super::MAX_FEED_LAG).
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many times an append retries a check-and-set lost to another writer.
const APPEND_ATTEMPTS: usize = 32;

/// The journal: the sequence number of the latest write, and the latest writes.
#[derive(Debug, Default)]
struct Journal {
    last: u64,
    entries: Vec<(u64, String)>,
}

/// The journal as the secret holds it: the latest writes as one text of `sequence id` lines (the
/// server refuses documents of too many strings).
#[derive(Serialize, Deserialize)]
struct Stored {
    last: u64,
    entries: String,
}

impl Journal {
    fn stored(&self) -> Stored {
        let entries =
            self.entries.iter().map(|(sequence, id)| format!("{sequence} {id}\n")).collect();
        Stored { last: self.last, entries }
    }

    fn of(stored: Stored) -> Option<Self> {
        let entries = stored
            .entries
            .lines()
            .map(|line| {
                let (sequence, id) = line.split_once(' ')?;
                Some((sequence.parse().ok()?, id.to_owned()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { last: stored.last, entries })
    }
}

/// The journal at `path` and its KV version (0: not written yet).
async fn read(client: &VaultClient, path: &str) -> Result<(u64, Journal)> {
    let found = match client.call(Method::GET, path, None).await? {
        Answer::Found(found) => found,
        Answer::Absent => return Ok((0, Journal::default())),
        Answer::CasMismatch => return Err(unreadable("a read was refused as a write")),
    };
    let version = found["data"]["metadata"]["version"].as_u64().unwrap_or(0);
    let data = &found["data"]["data"];
    if data.is_null() {
        return Ok((version, Journal::default()));
    }
    let journal = serde_json::from_value(data.clone())
        .ok()
        .and_then(Journal::of)
        .ok_or_else(|| unreadable("it is not a journal"))?;
    Ok((version, journal))
}

fn unreadable(reason: &str) -> Error {
    Error::CorruptRecord { reason: format!("the Vault store's change journal: {reason}") }
}

impl VaultStore {
    /// Appends `id`, just written, to the journal by check-and-set, retrying appends lost to
    /// other writers. Best effort: the write stands whatever happens here, and a failure is
    /// reported as the feed's (see the module docs for what it costs).
    pub(super) async fn journal(&self, id: &str) {
        if self.append(id).await.is_err() {
            crate::telemetry::feed_lost("vault");
        }
    }

    async fn append(&self, id: &str) -> Result<()> {
        let path = self.data_path(JOURNAL);
        for _ in 0..APPEND_ATTEMPTS {
            let (version, mut journal) = read(&self.client, &path).await?;
            journal.last += 1;
            journal.entries.push((journal.last, id.to_owned()));
            let excess = journal.entries.len().saturating_sub(KEPT);
            journal.entries.drain(..excess);
            let body = json!({ "options": { "cas": version }, "data": journal.stored() });
            match self.client.call(Method::POST, &path, Some(&body)).await? {
                Answer::Found(_) => return Ok(()),
                Answer::CasMismatch => {}
                Answer::Absent => return Err(unreadable("the mount vanished during a write")),
            }
        }
        Err(Error::Conflict { id: JOURNAL.to_owned() })
    }

    /// Starts following the journal into `listener` on the current Tokio runtime; `None` outside
    /// one (the manager then caches as over a store without a feed).
    pub(super) fn follow_journal(&self, listener: Arc<dyn ChangeListener>) -> Option<ChangeFeed> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let follower = Follower {
            client: Arc::clone(&self.client),
            path: self.data_path(JOURNAL),
            listener,
            stop: Arc::clone(&stop),
        };
        drop(runtime.spawn(follower.run()));
        Some(ChangeFeed::new(FeedKind::Polled, stop))
    }
}

/// Reads the journal until its feed is dropped.
struct Follower {
    client: Arc<VaultClient>,
    path: String,
    listener: Arc<dyn ChangeListener>,
    stop: Arc<AtomicBool>,
}

impl Follower {
    async fn run(self) {
        // What the last read saw: `None` until the first, which reports nothing (it sets where
        // reporting starts) but vouches from then on.
        let mut seen: Option<u64> = None;
        let mut healthy = true;
        while !self.stop.load(Ordering::Acquire) {
            let as_of = SystemTime::now();
            match read(&self.client, &self.path).await {
                Ok((_, journal)) => {
                    if let Some(seen) = seen {
                        report(self.listener.as_ref(), seen, &journal);
                    }
                    seen = Some(journal.last);
                    if !healthy {
                        crate::telemetry::feed_lost("vault");
                        self.listener.lost();
                        healthy = true;
                    }
                    self.listener.caught_up(as_of);
                }
                Err(_) => healthy = false,
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Reports to `listener` what `journal` holds past `seen`; a journal that no longer reaches back
/// to `seen` (trimmed past it, or started over) is reported lost.
fn report(listener: &dyn ChangeListener, seen: u64, journal: &Journal) {
    let oldest = journal.entries.first().map_or(journal.last, |(sequence, _)| *sequence);
    if journal.last < seen || (journal.last > seen && oldest > seen + 1) {
        crate::telemetry::feed_lost("vault");
        listener.lost();
        return;
    }
    for (_, id) in journal.entries.iter().filter(|(sequence, _)| *sequence > seen) {
        listener.changed(id);
    }
}

#[cfg(test)]
mod tests {
    use super::super::change_feed::RecordingListener;
    use super::*;

    fn journal(last: u64, first: u64) -> Journal {
        Journal { last, entries: (first..=last).map(|n| (n, format!("id/{n}"))).collect() }
    }

    #[test]
    fn writes_past_what_was_seen_are_reported_and_a_gap_or_a_restart_is_a_loss() {
        let listener = RecordingListener::default();
        report(&listener, 5, &journal(7, 3));
        assert_eq!(listener.take(), (vec!["id/6".to_owned(), "id/7".to_owned()], 0));
        report(&listener, 7, &journal(7, 3));
        assert_eq!(listener.take(), (vec![], 0), "nothing new");
        report(&listener, 7, &journal(20, 10));
        assert_eq!(listener.take(), (vec![], 1), "trimmed past what was seen");
        report(&listener, 20, &journal(2, 1));
        assert_eq!(listener.take(), (vec![], 2), "started over");
        report(&listener, 0, &journal(2, 1));
        assert_eq!(listener.take(), (vec!["id/1".to_owned(), "id/2".to_owned()], 2));
    }

    #[test]
    fn the_journal_round_trips_through_its_stored_form() {
        let stored = journal(9, 4).stored();
        let back = Journal::of(stored).unwrap();
        assert_eq!((back.last, back.entries), (9, journal(9, 4).entries));
        assert!(Journal::of(Stored { last: 1, entries: "x id\n".to_owned() }).is_none());
    }
}
