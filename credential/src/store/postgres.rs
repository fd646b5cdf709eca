//! The shared backend for many machines: PostgreSQL, with a change feed that keeps every
//! manager's cache honest.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use zeroize::Zeroizing;

use super::postgres_connection::{Settings, changes_channel};
use super::postgres_feed::SharedFeed;
use super::postgres_pool::{Connector, Pool, Query, Statements};
use super::postgres_shared::{Driver, Registry};
use super::{
    ChangeFeed, ChangeListener, ListFilter, Precondition, Record, RecordMeta, Store, check_id,
    postgres_schema, postgres_shared, record_codec, to_sql_int,
};
use crate::{Error, Result};

/// Records in a PostgreSQL database, shared by every process and machine that connects to it.
///
/// - `connect(url)` takes a `postgres://` URL with libpq's parameters; TLS follows `sslmode`
///   (`disable`, `prefer` (the default), `require`, `verify-ca`, `verify-full`) and `sslrootcert`
///   (a PEM file of CA certificates; without one, the verifying modes trust Mozilla's roots). In
///   production use `sslmode=verify-full`.
/// - The tables (`credential_records`, `credential_audit`, `credential_schema`) live in the first
///   schema of the connection's search path (set it with `options=-csearch_path%3Dname`, or for
///   the role); they are created and migrated on connect under an advisory lock, and a database
///   written by a newer version is refused untouched.
/// - **One set of connections per process and server.** Every store in a process connected with
///   the same URLs shares one pool (of the largest size any of them asked for, 4 by default) and
///   one `LISTEN` connection: a worker holds at most pool + 1 server connections however many
///   managers it runs, and they close when the last store handle on them is dropped. Size a
///   server for a fleet as workers × (pool + 1), plus what else connects to it.
/// - Every call is one round trip on a pooled connection with its statements prepared.
///   Compare-and-swap and the change notification are one statement: the notification goes out
///   when the write commits and never for a write that did not happen. Notifications carry the id
///   and revision, never data.
/// - Behind a connection pooler in transaction mode (PgBouncer), connect with
///   [`builder`](Self::builder) and [`behind_pooler`](PostgresStoreBuilder::behind_pooler): the
///   pool's statements are then sent unnamed (the pooler may hand each to another server
///   connection), and `LISTEN` and migrations use the direct URL.
/// - [`watch`](Store::watch) hears the process's listener; see the crate's "Storage" notes for
///   how a lost connection is handled.
///
/// ```no_run
/// use credential::store::{PostgresStore, Store};
/// use credential::ListFilter;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
/// let store = PostgresStore::connect(
///     "postgres://credential@db.internal/credential?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem",
/// )
/// .await?;
/// let records = store.list(&ListFilter::all()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

/// The connections of every store handle in the process that names the same server.
#[derive(Debug)]
struct Inner {
    pool: Pool,
    feed: Arc<SharedFeed>,
    /// Drives the pool's and the feed's connections; dropped last, closing them.
    driver: Driver,
}

/// The connections of the process, by the URLs that name them.
static SHARED: Registry<Inner> = Registry::new();

impl PostgresStore {
    /// Connections kept by a pool unless a store asks for another size: sized for a fleet of
    /// workers on one server with default limits, not for one process's peak.
    pub const DEFAULT_POOL_SIZE: usize = 4;

    /// Connects to the database at `url` and migrates its schema, or joins the connections of
    /// the process that another store made to the same URL.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that cannot be read (never repeated in the error),
    /// [`Error::InvalidCertificate`] for an unreadable `sslrootcert`, [`Error::UnsupportedSchema`]
    /// for a database from a newer version, [`Error::Storage`] when the server cannot be reached
    /// or refuses the login or the certificate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// [`connect`](Self::connect) with a pool of up to `connections` connections (at least one).
    ///
    /// A bigger pool lets one process run more calls at once; each connection is a server
    /// process that counts against `max_connections` for as long as the pool keeps it, so a
    /// fleet's pools together must stay under it. Stores that share connections share the
    /// largest size any of them asked for.
    ///
    /// # Errors
    /// As for [`connect`](Self::connect).
    pub async fn connect_with_pool_size(url: &str, connections: usize) -> Result<Self> {
        Self::builder(url).pool_size(connections).connect().await
    }

    /// A store on the server at `url`, with options; [`PostgresStoreBuilder::connect`] connects.
    ///
    /// ```no_run
    /// use credential::store::PostgresStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// // Calls through PgBouncer (transaction mode), the change feed straight to the server.
    /// let store = PostgresStore::builder("postgres://app@pgbouncer.internal:6432/credential")
    ///     .behind_pooler("postgres://app@db.internal:5432/credential")
    ///     .pool_size(8)
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: &str) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: Zeroizing::new(url.to_owned()),
            direct_url: None,
            pool_size: Self::DEFAULT_POOL_SIZE,
        }
    }

    /// The store's connection pool, for features that keep tables beside the records.
    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The most connections the store's (shared) pool keeps.
    pub fn pool_size(&self) -> usize {
        self.inner.pool.max_size()
    }

    /// The driver's client on one of the store's pooled connections, for benchmarks that run raw
    /// statements next to the store's calls on the same pool.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub async fn pooled_client(&self) -> Result<PooledDriverClient> {
        self.inner.pool.get().await.map(PooledDriverClient)
    }
}

/// Options for a [`PostgresStore`]; made by [`PostgresStore::builder`].
pub struct PostgresStoreBuilder {
    /// May hold a password: wiped when dropped, never shown.
    url: Zeroizing<String>,
    direct_url: Option<Zeroizing<String>>,
    pool_size: usize,
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("behind_pooler", &self.direct_url.is_some())
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresStoreBuilder {
    /// Keeps up to `connections` pooled connections (at least one; default
    /// [`PostgresStore::DEFAULT_POOL_SIZE`]); see [`PostgresStore::connect_with_pool_size`].
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// Says that the URL names a connection pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`), and `direct_url` the server behind it. Pooled calls then send
    /// unnamed statements, which any server connection runs (PgBouncer before 1.21 does not keep
    /// prepared statements), at the cost of the server parsing each; the change feed's `LISTEN`,
    /// which needs a session of its own, and migrations connect to `direct_url`. Both must reach
    /// the same database and search path.
    pub fn behind_pooler(mut self, direct_url: &str) -> Self {
        self.direct_url = Some(Zeroizing::new(direct_url.to_owned()));
        self
    }

    /// Connects and migrates the schema, or joins the process's connections to the same URLs.
    ///
    /// # Errors
    /// As for [`PostgresStore::connect`]; [`Error::Config`] behind a pooler whose connections
    /// find another schema than the direct URL.
    pub async fn connect(self) -> Result<PostgresStore> {
        let key = postgres_shared::key(&self.url, self.direct_url.as_deref().map(String::as_str));
        let inner = match SHARED.find(&key) {
            Some(inner) => inner,
            None => SHARED.keep(key, Arc::new(self.open().await?)),
        };
        inner.pool.grow_to(self.pool_size);
        Ok(PostgresStore { inner })
    }

    /// New connections: a direct one migrates the schema, then the pool and the feed.
    async fn open(&self) -> Result<Inner> {
        let settings = Arc::new(Settings::from_url(&self.url)?);
        let direct = match &self.direct_url {
            Some(url) => Arc::new(Settings::from_url(url)?),
            None => Arc::clone(&settings),
        };
        // A session of its own: the migration's advisory lock and DDL do not pass a pooler.
        let mut client = direct.connect().await?;
        let schema = postgres_schema::migrate(&mut client).await?;
        drop(client);
        let channel = changes_channel(&schema);
        let driver = Driver::start()?;
        let statements =
            if self.direct_url.is_some() { Statements::Unnamed } else { Statements::Prepared };
        let pool = Connector::pool(
            settings,
            statements,
            &channel,
            driver.handle().clone(),
            self.pool_size,
        )?;
        if statements == Statements::Unnamed {
            // Writes through the pooler must land where the direct listener hears them.
            let connection = pool.get().await?;
            if connection.query_one(Query::Schema, &[]).await?.get::<_, Option<&str>>(0)
                != Some(schema.as_str())
            {
                return Err(Error::Config {
                    reason: "the pooler's connections keep their tables in another schema than \
                             the direct URL's (check both URLs' database and search path)",
                });
            }
        }
        let feed = Arc::new(SharedFeed::new(direct, channel));
        Ok(Inner { pool, feed, driver })
    }
}

/// A pooled connection's driver client; back in the pool when dropped.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub struct PooledDriverClient(deadpool::managed::Object<Connector>);

#[cfg(any(test, feature = "testing"))]
impl std::ops::Deref for PooledDriverClient {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &tokio_postgres::Client {
        &self.0.client
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn get(&self, id: &str) -> Result<Option<Record>> {
        check_id(id)?;
        let connection = self.inner.pool.get().await?;
        let rows = connection.query(Query::Get, &[&id]).await?;
        drop(connection);
        rows.first().map(|row| record_codec::decode_stored(id, row.get::<_, &[u8]>(0))).transpose()
    }

    async fn put(&self, mut record: Record, precondition: Precondition) -> Result<u64> {
        check_id(&record.meta.id)?;
        let expected = match precondition {
            Precondition::Absent => None,
            Precondition::Revision(expected) => Some(expected),
        };
        record.meta.revision = expected.map_or(1, |expected| expected + 1);
        let expected = expected.map(to_sql_int);
        let bytes = record_codec::encode(&record);
        let meta = &record.meta;
        let revision = to_sql_int(meta.revision);
        let state = meta.state.as_str();
        let parameters: [&(dyn ToSql + Sync); 8] = [
            &meta.id,
            &meta.kind,
            &meta.environment,
            &state,
            &revision,
            &bytes,
            &meta.key_id,
            &expected,
        ];
        let connection = self.inner.pool.get().await?;
        let written = match expected {
            None => connection.query(Query::Insert, &parameters[..7]).await?,
            Some(_) => connection.query(Query::Update, &parameters).await?,
        };
        drop(connection);
        if written.len() == 1 {
            self.inner.feed.report(&record.meta.id);
            Ok(record.meta.revision)
        } else {
            Err(Error::Conflict { id: record.meta.id })
        }
    }

    async fn delete(&self, id: &str, revision: u64) -> Result<()> {
        check_id(id)?;
        let connection = self.inner.pool.get().await?;
        let deleted = connection.query(Query::Delete, &[&id, &to_sql_int(revision)]).await?;
        drop(connection);
        if deleted.len() == 1 {
            self.inner.feed.report(id);
            Ok(())
        } else {
            Err(Error::Conflict { id: id.to_owned() })
        }
    }

    /// Kept by trigger as records are written (see the schema).
    async fn key_ids_in_use(
        &self,
        environment: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>> {
        let connection = self.inner.pool.get().await?;
        let unknown: bool =
            connection.query_one(Query::KeyIdsUnknown, &[&environment]).await?.get(0);
        if unknown {
            return Ok(None);
        }
        let rows = connection.query(Query::KeyIds, &[&environment]).await?;
        Ok(Some(rows.iter().map(|row| row.get::<_, String>(0)).collect()))
    }

    /// The server's clock, so that leases lapse alike for every machine on the database.
    async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        let connection = self.inner.pool.get().await?;
        let row = connection.query_one(Query::Now, &[]).await?;
        drop(connection);
        let micros: i64 = row.get(0);
        chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| Error::CorruptRecord {
            reason: "the server's clock is out of range".to_owned(),
        })
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let connection = self.inner.pool.get().await?;
        let rows = connection
            .query(
                Query::List,
                &[
                    &filter.kind,
                    &filter.state.map(|state| state.as_str()),
                    &filter.environment,
                    &filter.id_prefix,
                ],
            )
            .await?;
        drop(connection);
        let mut metas = Vec::with_capacity(rows.len());
        for row in rows {
            let meta = record_codec::decode_stored_meta(row.get(0), row.get::<_, &[u8]>(1))?;
            if filter.matches(&meta) {
                metas.push(meta);
            }
        }
        Ok(metas)
    }

    /// The process's feed over `LISTEN`/`NOTIFY` on a connection of its own: sees the writes of
    /// every process and machine on the database within a heartbeat, those of the process at
    /// once, and vouches for nothing while its connection is down.
    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        Ok(Some(self.inner.feed.watch(listener, self.inner.driver.handle())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_never_shows_its_urls() {
        let builder = PostgresStore::builder("postgres://app:hunter2-canary@pooler/x")
            .behind_pooler("postgres://app:hunter2-canary@db/x")
            .pool_size(0);
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("behind_pooler: true") && shown.contains("pool_size: 1"), "{shown}");
    }
}
