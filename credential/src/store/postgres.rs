//! The shared backend for many machines: PostgreSQL, with a change feed that keeps every
//! manager's cache honest.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::postgres_connection::{
    Connector, DEFAULT_POOL_SIZE, Pool, Settings, changes_channel, storage,
};
use super::{
    ChangeFeed, ChangeListener, ListFilter, LocalListeners, Precondition, Record, RecordMeta,
    Store, check_id, postgres_feed, postgres_schema, record_codec, to_sql_int,
};
use crate::{Error, Result};

/// Records in a PostgreSQL database, shared by every process and machine that connects to it.
///
/// - `connect(url)` takes a `postgres://` URL with libpq's parameters; TLS follows `sslmode`
///   (`disable`, `prefer` (the default), `require`, `verify-ca`, `verify-full`) and `sslrootcert`
///   (a PEM file of CA certificates; without one, the verifying modes trust Mozilla's roots). In
///   production use `sslmode=verify-full`.
/// - The tables (`credential_records`, `credential_audit`, `credential_schema`) live in the first
///   schema of the connection's search path (set it with `options=-csearch_path%3Dname`); they are created and migrated on connect under an advisory lock,
///   and a database written by a newer version is refused untouched.
/// - Every call is one round trip on a pooled connection with its statements prepared.
///   Compare-and-swap and the change notification are one statement: the notification goes out
///   when the write commits and never for a write that did not happen. Notifications carry the id
///   and revision, never data.
/// - [`watch`](Store::watch) listens on a connection of its own; see the crate's "Storage" notes
///   for how a lost connection is handled.
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

#[derive(Debug)]
struct Inner {
    settings: Arc<Settings>,
    /// The notification channel of the store's schema.
    channel: String,
    pool: Pool,
    listeners: LocalListeners,
}

impl PostgresStore {
    /// Connects to the database at `url` with a pool of up to 16 connections and migrates its
    /// schema.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that cannot be read (never repeated in the error),
    /// [`Error::InvalidCertificate`] for an unreadable `sslrootcert`, [`Error::UnsupportedSchema`]
    /// for a database from a newer version, [`Error::Storage`] when the server cannot be reached
    /// or refuses the login or the certificate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// [`connect`](Self::connect) with a pool of up to `connections` connections (at least one).
    ///
    /// # Errors
    /// As for [`connect`](Self::connect).
    pub async fn connect_with_pool_size(url: &str, connections: usize) -> Result<Self> {
        let settings = Arc::new(Settings::from_url(url)?);
        let mut client = settings.connect().await?;
        let schema = postgres_schema::migrate(&mut client).await?;
        drop(client);
        let channel = changes_channel(&schema);
        let pool = Connector::pool(Arc::clone(&settings), channel.clone(), connections.max(1))?;
        let listeners = LocalListeners::default();
        Ok(Self { inner: Arc::new(Inner { settings, channel, pool, listeners }) })
    }

    /// Where the server is and how to reach it, for the audit sink's own connection.
    pub(crate) fn settings(&self) -> &Arc<Settings> {
        &self.inner.settings
    }

    /// The store's connection pool, for features that keep tables beside the records.
    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The driver's client on one of the store's pooled connections, for benchmarks that run raw
    /// statements next to the store's calls on the same pool.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub async fn pooled_client(&self) -> Result<PooledDriverClient> {
        self.inner.pool.get().await.map(PooledDriverClient)
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
        let row = connection
            .client
            .query_opt(&connection.statements.get, &[&id])
            .await
            .map_err(storage)?;
        drop(connection);
        row.map(|row| record_codec::decode_stored(id, row.get::<_, &[u8]>(0))).transpose()
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
            None => connection.client.query(&connection.statements.insert, &parameters[..7]).await,
            Some(_) => connection.client.query(&connection.statements.update, &parameters).await,
        }
        .map_err(storage)?;
        drop(connection);
        if written.len() == 1 {
            self.inner.listeners.report(&record.meta.id);
            Ok(record.meta.revision)
        } else {
            Err(Error::Conflict { id: record.meta.id })
        }
    }

    async fn delete(&self, id: &str, revision: u64) -> Result<()> {
        check_id(id)?;
        let connection = self.inner.pool.get().await?;
        let deleted = connection
            .client
            .query(&connection.statements.delete, &[&id, &to_sql_int(revision)])
            .await
            .map_err(storage)?;
        drop(connection);
        if deleted.len() == 1 {
            self.inner.listeners.report(id);
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
        let statements = &connection.statements;
        let unknown: bool = connection
            .client
            .query_one(&statements.key_ids_unknown, &[&environment])
            .await
            .map_err(storage)?
            .get(0);
        if unknown {
            return Ok(None);
        }
        let rows =
            connection.client.query(&statements.key_ids, &[&environment]).await.map_err(storage)?;
        Ok(Some(rows.iter().map(|row| row.get::<_, String>(0)).collect()))
    }

    /// The server's clock, so that leases lapse alike for every machine on the database.
    async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        let connection = self.inner.pool.get().await?;
        let row =
            connection.client.query_one(&connection.statements.now, &[]).await.map_err(storage)?;
        drop(connection);
        let micros: i64 = row.get(0);
        chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| Error::CorruptRecord {
            reason: "the server's clock is out of range".to_owned(),
        })
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let connection = self.inner.pool.get().await?;
        let rows = connection
            .client
            .query(
                &connection.statements.list,
                &[
                    &filter.kind,
                    &filter.state.map(|state| state.as_str()),
                    &filter.environment,
                    &filter.id_prefix,
                ],
            )
            .await
            .map_err(storage)?;
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

    /// A feed over `LISTEN`/`NOTIFY` on a connection of its own: sees the writes of every process
    /// and machine on the database within a heartbeat, and vouches for nothing while its
    /// connection is down.
    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        let (settings, channel) = (Arc::clone(&self.inner.settings), self.inner.channel.clone());
        postgres_feed::spawn(settings, channel, listener, &self.inner.listeners).map(Some)
    }
}
