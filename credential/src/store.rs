//! Storage: one small async trait that moves sealed records, and its backends.
//!
//! A [`Store`] never sees plaintext: it keeps [`Record`]s made of plaintext metadata and sealed
//! versions. Every write and delete carries a [`Precondition`], so a writer that lost a race gets
//! [`Error::Conflict`](crate::Error::Conflict) and changes nothing.
//!
//! Backends: [`MemoryStore`], [`FileStore`] (a file per record), [`SqliteStore`] (the embedded
//! default), `PostgresStore` (feature `postgres`: the shared backend for many machines),
//! [`EnvStore`] (read-only, from environment variables) and [`CompositeStore`] (a
//! primary plus read fallbacks). Each passes the conformance suite in `conformance` (enabled by
//! the `testing` feature).

mod change_feed;
mod composite;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod env;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "file")]
mod file_feed;
#[cfg(feature = "file")]
mod file_keys;
mod key_usage;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
pub(crate) mod postgres_connection;
#[cfg(feature = "postgres")]
mod postgres_feed;
#[cfg(feature = "postgres")]
pub(crate) mod postgres_pool;
#[cfg(feature = "postgres")]
mod postgres_schema;
#[cfg(feature = "postgres")]
mod postgres_shared;
#[cfg(feature = "postgres")]
mod postgres_tls;
mod record;
#[cfg(any(feature = "sqlite", feature = "file", feature = "postgres", feature = "vault"))]
mod record_codec;
mod record_id;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_feed;
#[cfg(feature = "vault")]
mod vault;
#[cfg(feature = "vault")]
mod vault_client;
#[cfg(feature = "vault")]
mod vault_journal;
#[cfg(feature = "vault")]
mod vault_transit;

use std::sync::Arc;

use async_trait::async_trait;

pub(crate) use change_feed::LocalListeners;
pub use change_feed::{ChangeFeed, ChangeListener, FeedKind, MAX_FEED_LAG};
#[cfg(any(feature = "sqlite", feature = "file"))]
pub(crate) use change_feed::{Poll, spawn_poller};
pub use composite::CompositeStore;
pub use env::{EnvStore, EnvVars};
#[cfg(feature = "file")]
pub use file::FileStore;
pub(crate) use key_usage::KeyUsage;
pub use memory::MemoryStore;
#[cfg(all(feature = "postgres", any(test, feature = "testing")))]
#[doc(hidden)]
pub use postgres::PooledDriverClient;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreBuilder};
pub use record::{
    LifecycleState, ListFilter, Precondition, Record, RecordMeta, RefreshLease, RefreshMark,
    SealedVersion, VersionState,
};
pub use record_id::{MAX_ID_LEN, check_id};
#[cfg(feature = "sqlite")]
pub(crate) use sqlite::storage as sqlite_error;
#[cfg(feature = "sqlite")]
pub use sqlite::{DEFAULT_BUSY_TIMEOUT, SqliteStore};
#[cfg(feature = "vault")]
pub use vault::{VaultStore, VaultStoreBuilder};
#[cfg(feature = "vault")]
pub use vault_transit::TransitKeyRing;

use crate::Result;
use crate::error::ResultFuture;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// A revision as an SQL integer: signed, and never near `i64::MAX` in practice.
pub(crate) fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Where sealed records live.
///
/// Implementations check ids with [`check_id`], enforce preconditions atomically, assign
/// revisions (a new record gets revision 1; each write adds one), and keep blocking I/O off the
/// async worker threads.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The record `id`, or `None`.
    ///
    /// # Errors
    /// [`Error::InvalidId`](crate::Error::InvalidId), or a backend failure.
    async fn get(&self, id: &str) -> Result<Option<Record>>;

    /// Writes `record` if `precondition` holds, setting its revision; returns the new revision.
    /// The revision inside `record.meta` is ignored.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) when the precondition fails (nothing is
    /// written), [`Error::InvalidId`](crate::Error::InvalidId),
    /// [`Error::ReadOnly`](crate::Error::ReadOnly), or a backend failure.
    async fn put(&self, record: Record, precondition: Precondition) -> Result<u64>;

    /// Deletes record `id` if it is at `revision`.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) when it is absent or at another revision.
    async fn delete(&self, id: &str, revision: u64) -> Result<()>;

    /// The metadata of every record passing `filter`, ordered by id.
    ///
    /// # Errors
    /// A backend failure.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>>;

    /// Starts reporting changes to `listener`, including changes made by other processes or
    /// machines, until the returned feed is dropped. `None` (the default) when the store cannot
    /// tell: a manager over it then only knows about its own writes, so share such a store
    /// between managers only if they never cache.
    ///
    /// # Errors
    /// A backend failure while starting the feed.
    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        let _ = listener;
        Ok(None)
    }

    /// The ids of the master keys that the live (not revoked) records of `environment` are sealed
    /// under, when the store keeps that set as records are written: then a manager checks its key
    /// ring at start-up without reading a record. `None` (the default) when it does not, or
    /// cannot vouch for every record (rows written before it kept the set, say): the manager then
    /// lists the records.
    ///
    /// # Errors
    /// A backend failure.
    async fn key_ids_in_use(
        &self,
        environment: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>> {
        let _ = environment;
        Ok(None)
    }

    /// The store's clock, which refresh leases lapse on. The default, this machine's clock, suits
    /// stores that only processes on one machine share; a store shared by machines answers with
    /// its server's clock.
    ///
    /// # Errors
    /// A backend failure.
    async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        Ok(chrono::Utc::now())
    }
}

/// A shared store is a store: keep an `Arc` to inspect what a manager writes. Each call hands
/// back the shared store's own future, without boxing it a second time.
#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    fn get<'a, 'b, 'f>(&'a self, id: &'b str) -> ResultFuture<'f, Option<Record>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).get(id)
    }

    fn put<'a, 'f>(&'a self, record: Record, precondition: Precondition) -> ResultFuture<'f, u64>
    where
        'a: 'f,
        Self: 'f,
    {
        (**self).put(record, precondition)
    }

    fn delete<'a, 'b, 'f>(&'a self, id: &'b str, revision: u64) -> ResultFuture<'f, ()>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).delete(id, revision)
    }

    fn now<'a, 'f>(&'a self) -> ResultFuture<'f, chrono::DateTime<chrono::Utc>>
    where
        'a: 'f,
        Self: 'f,
    {
        (**self).now()
    }

    fn key_ids_in_use<'a, 'b, 'f>(
        &'a self,
        environment: &'b str,
    ) -> ResultFuture<'f, Option<std::collections::BTreeSet<String>>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).key_ids_in_use(environment)
    }

    fn list<'a, 'b, 'f>(&'a self, filter: &'b ListFilter) -> ResultFuture<'f, Vec<RecordMeta>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).list(filter)
    }

    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        (**self).watch(listener)
    }
}
