//! The SQLite store's change feed: a reader of the `changes` table that triggers fill in the
//! same transaction as every write, so no process's write goes unseen.

use rusqlite::Connection;

use super::sqlite::storage;
use super::{ChangeListener, Poll};
use crate::Result;

/// Where a reader of the change log has got to.
pub(crate) struct SqliteChanges {
    connection: Connection,
    /// The last sequence number reported.
    seen: i64,
}

impl SqliteChanges {
    /// A reader that reports changes made from now on.
    pub(crate) fn start(connection: Connection) -> Result<Self> {
        let seen = connection
            .query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |row| row.get(0))
            .map_err(storage)?;
        Ok(Self { connection, seen })
    }

    /// The changes after `seen`, and whether the log was trimmed past `seen` (changes lost).
    fn read(&self) -> rusqlite::Result<(Vec<(i64, String)>, bool)> {
        let transaction = self.connection.unchecked_transaction()?;
        let oldest: Option<i64> =
            transaction.query_row("SELECT min(seq) FROM changes", [], |row| row.get(0))?;
        let mut statement = transaction
            .prepare_cached("SELECT seq, id FROM changes WHERE seq > ?1 ORDER BY seq")?;
        let changes = statement
            .query_map([self.seen], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(statement);
        transaction.commit()?;
        let lost = oldest.is_some_and(|oldest| oldest > self.seen + 1) && !changes.is_empty();
        Ok((changes, lost))
    }
}

impl Poll for SqliteChanges {
    fn poll(&mut self, listener: &dyn ChangeListener) -> std::result::Result<(), ()> {
        let (changes, lost) = self.read().map_err(drop)?;
        if lost {
            listener.lost();
        }
        for (seq, id) in changes {
            listener.changed(&id);
            self.seen = seq;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use crate::store::change_feed::RecordingListener;
    use crate::store::conformance::sample_record;
    use crate::store::{Precondition, Store};

    #[tokio::test]
    async fn every_write_is_reported_once_and_a_trimmed_gap_means_lost_changes() {
        let dir = crate::util::scratch::ScratchDir::new("sqlite-feed");
        let store = SqliteStore::open(dir.join("credentials.db")).await.unwrap();
        let mut changes = SqliteChanges::start(store.connect().unwrap()).unwrap();
        let heard = RecordingListener::default();
        let revision = store
            .put(sample_record("feed/a", "api_key", b"x"), Precondition::Absent)
            .await
            .unwrap();
        store
            .put(sample_record("feed/a", "api_key", b"y"), Precondition::Revision(revision))
            .await
            .unwrap();
        store.put(sample_record("feed/b", "api_key", b"z"), Precondition::Absent).await.unwrap();
        changes.poll(&heard).unwrap();
        let ids = |ids: &[&str]| ids.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
        assert_eq!(heard.take(), (ids(&["feed/a", "feed/a", "feed/b"]), 0));
        changes.poll(&heard).unwrap();
        assert_eq!(heard.take(), (Vec::new(), 0), "nothing is reported twice");

        // A reader that fell behind a trim of the log cannot know what it missed.
        for n in 0..3 {
            store
                .put(sample_record(&format!("feed/c{n}"), "api_key", b"w"), Precondition::Absent)
                .await
                .unwrap();
        }
        store
            .with_connection(|connection| {
                connection
                    .execute("DELETE FROM changes WHERE seq < (SELECT max(seq) FROM changes)", [])
                    .map(drop)
                    .map_err(storage)
            })
            .await
            .unwrap();
        changes.poll(&heard).unwrap();
        assert_eq!(heard.take().1, 1);
        drop(store);
    }
}
