//! The embedded default: one SQLite file, safe to share between processes.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::sqlite_feed::SqliteChanges;
use super::{
    ChangeFeed, ChangeListener, ListFilter, LocalListeners, Precondition, Record, RecordMeta,
    Store, check_id, record_codec, spawn_poller, to_sql_int,
};
use crate::util::regular_file::{self, Links};
use crate::{Error, Result, blocking};

/// The schema this build reads and writes (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i64 = 5;
/// How long a call waits, by default, for the database another connection holds before it fails
/// with a transient error: long enough for another process's write (milliseconds), short enough
/// that an engine's task is not held for long.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// Reader connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;

const MIGRATIONS: [&str; 5] = [
    "CREATE TABLE records (
        id          TEXT PRIMARY KEY NOT NULL,
        kind        TEXT NOT NULL,
        environment TEXT NOT NULL,
        state       TEXT NOT NULL,
        revision    INTEGER NOT NULL,
        record      BLOB NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX records_by_kind ON records (kind, id);
    CREATE TABLE audit_events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ns     INTEGER NOT NULL,
        principal   TEXT NOT NULL,
        credential  TEXT NOT NULL,
        environment TEXT NOT NULL,
        action      TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        version     INTEGER,
        error       TEXT,
        reason      TEXT
    ) STRICT;
    CREATE INDEX audit_by_credential ON audit_events (credential, seq);",
    // The change log behind the change feed: every write of a record, in the same transaction,
    // by trigger. Every 1,024th entry trims the log to its newest 4,096; a reader that fell
    // further behind notices the gap and starts over. No AUTOINCREMENT (it would write one more
    // page per commit): the newest entry is never trimmed, so sequence numbers only grow.
    "CREATE TABLE changes (
        seq INTEGER PRIMARY KEY,
        id  TEXT NOT NULL
    ) STRICT;
    CREATE TRIGGER records_inserted AFTER INSERT ON records
        BEGIN INSERT INTO changes (id) VALUES (new.id); END;
    CREATE TRIGGER records_updated AFTER UPDATE ON records
        BEGIN INSERT INTO changes (id) VALUES (new.id); END;
    CREATE TRIGGER records_deleted AFTER DELETE ON records
        BEGIN INSERT INTO changes (id) VALUES (old.id); END;
    CREATE TRIGGER changes_trimmed AFTER INSERT ON changes WHEN new.seq % 1024 = 0
        BEGIN DELETE FROM changes WHERE seq <= new.seq - 4096; END;",
    // Audit events that stand for several identical reads.
    "ALTER TABLE audit_events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE audit_events ADD COLUMN until_ns INTEGER;",
    // Which master keys the live records use, kept by trigger in the writing transaction, so a
    // manager checks its key ring without reading the records. Rows written before this version
    // have an empty key id (unknown) until their next write; while a live one is left, the
    // set is not vouched for. The update triggers fire only when a record's key, liveness or
    // environment changes (a rekey, a revoke), not on every write.
    "ALTER TABLE records ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
    CREATE INDEX records_without_key_id ON records (environment) WHERE key_id = '';
    CREATE TABLE key_usage (
        environment TEXT NOT NULL,
        key_id      TEXT NOT NULL,
        records     INTEGER NOT NULL,
        PRIMARY KEY (environment, key_id)
    ) STRICT, WITHOUT ROWID;
    CREATE TRIGGER key_usage_created AFTER INSERT ON records
        WHEN new.state != 'revoked' AND new.key_id != ''
        BEGIN
            INSERT INTO key_usage (environment, key_id, records)
                VALUES (new.environment, new.key_id, 1)
                ON CONFLICT (environment, key_id) DO UPDATE SET records = records + 1;
        END;
    CREATE TRIGGER key_usage_left AFTER UPDATE ON records
        WHEN old.state != 'revoked' AND old.key_id != ''
            AND (old.key_id != new.key_id OR new.state = 'revoked'
                 OR old.environment != new.environment)
        BEGIN
            UPDATE key_usage SET records = records - 1
                WHERE environment = old.environment AND key_id = old.key_id;
            DELETE FROM key_usage
                WHERE environment = old.environment AND key_id = old.key_id AND records <= 0;
        END;
    CREATE TRIGGER key_usage_joined AFTER UPDATE ON records
        WHEN new.state != 'revoked' AND new.key_id != ''
            AND (old.key_id != new.key_id OR old.state = 'revoked'
                 OR old.environment != new.environment)
        BEGIN
            INSERT INTO key_usage (environment, key_id, records)
                VALUES (new.environment, new.key_id, 1)
                ON CONFLICT (environment, key_id) DO UPDATE SET records = records + 1;
        END;
    CREATE TRIGGER key_usage_deleted AFTER DELETE ON records
        WHEN old.state != 'revoked' AND old.key_id != ''
        BEGIN
            UPDATE key_usage SET records = records - 1
                WHERE environment = old.environment AND key_id = old.key_id;
            DELETE FROM key_usage
                WHERE environment = old.environment AND key_id = old.key_id AND records <= 0;
        END;",
    // The record revision a change writes, which restore checks compare stored records with.
    "ALTER TABLE audit_events ADD COLUMN revision INTEGER;",
];

/// Records in a SQLite database file.
///
/// - Write-ahead logging, `synchronous = FULL`: an acknowledged write survives a crash or power
///   loss.
/// - A busy timeout, and compare-and-swap in a single statement, so several processes can share
///   one file safely.
/// - The schema is versioned and migrated on open; a database written by a newer version is
///   refused without being touched.
/// - The file is created `0600`. Calls run where blocking is allowed, never on an async worker
///   (see the crate's `blocking` note on [`Store`]).
///
/// ```
/// use credential::store::Store;
/// use credential::{SqliteStore, ListFilter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("credential-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let store = SqliteStore::open(dir.join("credentials.db")).await?;
/// assert!(store.list(&ListFilter::all()).await?.is_empty());
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    busy_timeout: Duration,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    listeners: LocalListeners,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema.
    ///
    /// # Errors
    /// [`Error::UnsupportedSchema`] for a database from a newer version, [`Error::Storage`] for
    /// a file that is not an SQLite database [`Error::CorruptStore`], [`Error::Io`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT).await
    }

    /// As [`open`](Self::open), with each call waiting up to `busy_timeout` for the database
    /// another connection holds (default [`DEFAULT_BUSY_TIMEOUT`]) before it fails with a
    /// transient [`Error::Storage`] that says the database was busy.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_with_busy_timeout(
        path: impl AsRef<Path>,
        busy_timeout: Duration,
    ) -> Result<Self> {
        let path = path.as_ref().to_owned();
        blocking::run(move || {
            create_private(&path)?;
            let mut writer = connect(&path, busy_timeout)?;
            writer.pragma_update(None, "journal_mode", "WAL").map_err(storage)?;
            migrate(&mut writer)?;
            Ok(Self {
                inner: Arc::new(Inner {
                    path,
                    busy_timeout,
                    writer: Mutex::new(writer),
                    readers: Mutex::new(Vec::new()),
                    listeners: LocalListeners::default(),
                }),
            })
        })
        .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A new connection to the database, for features that keep their own tables beside the
    /// records (the audit trail, the change feed).
    pub(crate) fn connect(&self) -> Result<Connection> {
        connect(&self.inner.path, self.inner.busy_timeout)
    }

    /// Runs `work` on the store's writer connection, for tests that need to reach under the
    /// store.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub async fn with_connection<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking::run(move || work(&inner.writer())).await
    }
}

/// Creates the database file with mode 0600 if it does not exist, so it is never readable by
/// others, not even briefly; an existing one must be a regular file. SQLite opens the path itself
/// and would block on a FIFO, so the check is made on a descriptor of our own first (a link to
/// a database is followed, as SQLite follows it).
fn create_private(path: &Path) -> Result<()> {
    // Unusable, as SQLite itself would report it: a store error.
    let error = |source: std::io::Error| {
        let said = format!("opening database `{}`: {source}", path.display());
        Error::storage("sqlite", false, std::io::Error::new(source.kind(), said))
    };
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(exists) if exists.kind() == std::io::ErrorKind::AlreadyExists => {
            regular_file::open(path, OpenOptions::new().read(true), Links::Follow)
                .map(drop)
                .map_err(error)
        }
        Err(source) => Err(error(source)),
    }
}

fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let connection = Connection::open(path).map_err(storage)?;
    connection.busy_timeout(busy_timeout).map_err(storage)?;
    connection.pragma_update(None, "synchronous", "FULL").map_err(storage)?;
    // Overwrite deleted content, so the sealed payloads of a revoked credential do not linger
    // in free pages.
    connection.pragma_update(None, "secure_delete", "ON").map_err(storage)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<()> {
    let transaction =
        connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
    let found: i64 =
        transaction.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(storage)?;
    if found > SCHEMA_VERSION {
        return Err(Error::UnsupportedSchema { found, supported: SCHEMA_VERSION });
    }
    for (index, migration) in
        MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0))
    {
        transaction.execute_batch(migration).map_err(storage)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1).map_err(storage)?;
    }
    transaction.commit().map_err(storage)
}

/// A driver error as a storage error; a busy database is transient, and says what was busy.
pub(crate) fn storage(error: rusqlite::Error) -> Error {
    if matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    ) {
        return Error::CorruptStore {
            backend: "sqlite",
            reason: "the file is not an SQLite database, or its pages are damaged",
        };
    }
    let busy = matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if busy {
        let said = format!(
            "the database was busy: another connection or process held it past the busy \
             timeout ({error})"
        );
        return Error::storage("sqlite", true, std::io::Error::other(said));
    }
    Error::storage("sqlite", false, error)
}

impl Inner {
    fn writer(&self) -> MutexGuard<'_, Connection> {
        // Every statement is atomic on its own: a panic cannot leave a half-done write behind.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` on an idle reader connection (opening one if none is idle), so reads run in
    /// parallel with each other and with the writer.
    fn read<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => connect(&self.path, self.busy_timeout)?,
        };
        let result = read(&connection);
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < MAX_IDLE_READERS {
            readers.push(connection);
        }
        result
    }

    fn get(&self, id: &str) -> Result<Option<Record>> {
        let blob = self.read(|connection| {
            connection
                .prepare_cached("SELECT record FROM records WHERE id = ?1")
                .and_then(|mut statement| {
                    statement.query_row([id], |row| row.get::<_, Vec<u8>>(0)).optional()
                })
                .map_err(storage)
        })?;
        blob.map(|blob| record_codec::decode_stored(id, &blob)).transpose()
    }

    fn put(&self, mut record: Record, precondition: Precondition) -> Result<u64> {
        // Both statements bind the same parameters; ?7 is the expected revision (NULL: absent),
        // ?8 the key id, which the triggers count.
        let (sql, expected) = match precondition {
            Precondition::Absent => (
                "INSERT INTO records (id, kind, environment, state, revision, record, key_id)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?8 WHERE ?7 IS NULL
                 ON CONFLICT (id) DO NOTHING",
                None,
            ),
            Precondition::Revision(expected) => (
                "UPDATE records
                 SET kind = ?2, environment = ?3, state = ?4, revision = ?5, record = ?6, key_id = ?8
                 WHERE id = ?1 AND revision = ?7",
                Some(expected),
            ),
        };
        record.meta.revision = expected.map_or(1, |expected| expected + 1);
        let meta = &record.meta;
        let changed = self
            .writer()
            .prepare_cached(sql)
            .and_then(|mut statement| {
                statement.execute(params![
                    meta.id,
                    meta.kind,
                    meta.environment,
                    meta.state.as_str(),
                    to_sql_int(meta.revision),
                    record_codec::encode(&record),
                    expected.map(to_sql_int),
                    meta.key_id
                ])
            })
            .map_err(storage)?;
        if changed == 1 {
            self.listeners.report(&record.meta.id);
            Ok(record.meta.revision)
        } else {
            Err(Error::Conflict { id: record.meta.id })
        }
    }

    fn delete(&self, id: &str, revision: u64) -> Result<()> {
        let changed = self
            .writer()
            .prepare_cached("DELETE FROM records WHERE id = ?1 AND revision = ?2")
            .and_then(|mut statement| statement.execute(params![id, to_sql_int(revision)]))
            .map_err(storage)?;
        if changed == 1 {
            self.listeners.report(id);
            Ok(())
        } else {
            Err(Error::Conflict { id: id.to_owned() })
        }
    }

    fn key_ids_in_use(&self, environment: &str) -> Result<Option<BTreeSet<String>>> {
        self.read(|connection| {
            let unknown: bool = connection
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM records
                     WHERE key_id = '' AND environment = ?1 AND state != 'revoked')",
                )
                .and_then(|mut statement| statement.query_row([environment], |row| row.get(0)))
                .map_err(storage)?;
            if unknown {
                return Ok(None);
            }
            let mut statement = connection
                .prepare_cached(
                    "SELECT key_id FROM key_usage WHERE environment = ?1 AND records > 0",
                )
                .map_err(storage)?;
            let ids = statement
                .query_map([environment], |row| row.get::<_, String>(0))
                .map_err(storage)?
                .collect::<rusqlite::Result<BTreeSet<_>>>()
                .map_err(storage)?;
            Ok(Some(ids))
        })
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let rows = self.read(|connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT id, record FROM records
                     WHERE (?1 IS NULL OR kind = ?1)
                       AND (?2 IS NULL OR state = ?2)
                       AND (?3 IS NULL OR environment = ?3)
                       AND (?4 IS NULL OR substr(id, 1, length(?4)) = ?4)
                     ORDER BY id",
                )
                .map_err(storage)?;
            let rows = statement
                .query_map(
                    params![
                        filter.kind,
                        filter.state.map(|state| state.as_str()),
                        filter.environment,
                        filter.id_prefix
                    ],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)),
                )
                .map_err(storage)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(storage)
        })?;
        let mut metas = Vec::with_capacity(rows.len());
        for (id, blob) in rows {
            let meta = record_codec::decode_stored_meta(&id, &blob)?;
            if filter.matches(&meta) {
                metas.push(meta);
            }
        }
        Ok(metas)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, id: &str) -> Result<Option<Record>> {
        check_id(id)?;
        let (inner, id) = (Arc::clone(&self.inner), id.to_owned());
        blocking::run(move || inner.get(&id)).await
    }

    async fn put(&self, record: Record, precondition: Precondition) -> Result<u64> {
        check_id(&record.meta.id)?;
        let inner = Arc::clone(&self.inner);
        blocking::run(move || inner.put(record, precondition)).await
    }

    async fn delete(&self, id: &str, revision: u64) -> Result<()> {
        check_id(id)?;
        let (inner, id) = (Arc::clone(&self.inner), id.to_owned());
        blocking::run(move || inner.delete(&id, revision)).await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let (inner, filter) = (Arc::clone(&self.inner), filter.clone());
        blocking::run(move || inner.list(&filter)).await
    }

    /// Kept by trigger as records are written (see the schema).
    async fn key_ids_in_use(&self, environment: &str) -> Result<Option<BTreeSet<String>>> {
        let (inner, environment) = (Arc::clone(&self.inner), environment.to_owned());
        blocking::run(move || inner.key_ids_in_use(&environment)).await
    }

    /// A polled feed over the database's change log: sees the writes of every process on the
    /// file.
    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        let poll = SqliteChanges::start(self.connect()?)?;
        spawn_poller("credential-sqlite-feed", poll, listener, &self.inner.listeners)
            .map(Some)
            .map_err(|source| Error::io("starting the change feed", source))
    }
}
