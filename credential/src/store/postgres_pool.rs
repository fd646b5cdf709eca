//! The PostgreSQL store's pool: connections made on demand up to a bound, each driven by the
//! shared connection's runtime, and the store's statements, prepared per connection when the
//! server is reached directly and sent unnamed (one round trip, nothing kept on the server) when
//! a pooler in transaction mode stands in between.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};

use super::postgres_connection::{Settings, quote_literal, storage};
use crate::{Error, Result};

/// How long a call waits for a pooled connection before failing.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long making a pooled connection may take, a wait for a full server included, before the
/// checkout fails: a server that accepts the socket and then stops answering does not hold a
/// call for ever.
const CREATE_TIMEOUT: Duration = Duration::from_secs(15);

/// How the pool's connections run statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Statements {
    /// Prepared once per connection (named statements): each call is one round trip with no
    /// parsing on the server. For a direct connection to the server.
    Prepared,
    /// Parsed by the server on every call (the unnamed statement, still one round trip): a
    /// pooler in transaction mode hands each transaction to any server connection, where a
    /// statement prepared on another is unknown.
    Unnamed,
}

/// The statements the store runs, each with the types of its parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Query {
    Get,
    Insert,
    Update,
    Delete,
    List,
    Now,
    KeyIdsUnknown,
    KeyIds,
    /// The schema the connection's tables are in.
    Schema,
}

impl Query {
    const ALL: [Self; 9] = [
        Self::Get,
        Self::Insert,
        Self::Update,
        Self::Delete,
        Self::List,
        Self::Now,
        Self::KeyIdsUnknown,
        Self::KeyIds,
        Self::Schema,
    ];

    /// The statement's text for the store whose changes are announced on `channel`.
    fn sql(self, channel: &str) -> String {
        // A write and its notification are one statement: the notification goes out when the
        // write commits, and not at all when the compare-and-swap finds nothing to change.
        let notify = format!("SELECT pg_notify({}, revision || ' ' || id)", quote_literal(channel));
        match self {
            Self::Get => "SELECT record FROM credential_records WHERE id = $1".to_owned(),
            Self::Insert => format!(
                "WITH written AS (
                    INSERT INTO credential_records
                        (id, kind, environment, state, revision, record, key_id)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (id) DO NOTHING
                    RETURNING id, revision)
                 {notify} FROM written"
            ),
            Self::Update => format!(
                "WITH written AS (
                    UPDATE credential_records
                    SET kind = $2, environment = $3, state = $4, revision = $5, record = $6,
                        key_id = $7
                    WHERE id = $1 AND revision = $8
                    RETURNING id, revision)
                 {notify} FROM written"
            ),
            Self::Delete => format!(
                "WITH deleted AS (
                    DELETE FROM credential_records WHERE id = $1 AND revision = $2
                    RETURNING id, revision)
                 {notify} FROM deleted"
            ),
            Self::List => "SELECT id, record FROM credential_records
                 WHERE ($1::text IS NULL OR kind = $1)
                   AND ($2::text IS NULL OR state = $2)
                   AND ($3::text IS NULL OR environment = $3)
                   AND ($4::text IS NULL OR starts_with(id, $4))
                 ORDER BY id"
                .to_owned(),
            // Microseconds since the epoch: the server's clock, not the transaction's start.
            Self::Now => {
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint".to_owned()
            }
            Self::KeyIdsUnknown => "SELECT EXISTS (SELECT 1 FROM credential_records
                 WHERE key_id = '' AND environment = $1 AND state <> 'revoked')"
                .to_owned(),
            Self::KeyIds => {
                "SELECT key_id FROM credential_key_usage WHERE environment = $1 AND records > 0"
                    .to_owned()
            }
            Self::Schema => "SELECT current_schema()".to_owned(),
        }
    }

    /// The types of the statement's parameters, in order.
    fn parameter_types(self) -> &'static [Type] {
        const TEXT: Type = Type::TEXT;
        match self {
            Self::Get | Self::KeyIdsUnknown | Self::KeyIds => &[TEXT],
            Self::Insert => &[TEXT, TEXT, TEXT, TEXT, Type::INT8, Type::BYTEA, TEXT],
            Self::Update => &[TEXT, TEXT, TEXT, TEXT, Type::INT8, Type::BYTEA, TEXT, Type::INT8],
            Self::Delete => &[TEXT, Type::INT8],
            Self::List => &[TEXT, TEXT, TEXT, TEXT],
            Self::Now | Self::Schema => &[],
        }
    }
}

/// The store's statements' texts, in the order of [`Query::ALL`].
struct Texts([String; Query::ALL.len()]);

impl Texts {
    fn new(channel: &str) -> Self {
        Self(Query::ALL.map(|query| query.sql(channel)))
    }

    fn of(&self, query: Query) -> &str {
        &self.0[query as usize]
    }
}

/// A pooled connection, with the store's statements prepared on it when they are prepared.
pub(crate) struct PooledClient {
    pub(crate) client: Client,
    prepared: Option<Vec<Statement>>,
    texts: Arc<Texts>,
}

impl PooledClient {
    /// Runs `query` with `parameters` (of the types [`Query`] names) and returns its rows.
    pub(crate) async fn query(
        &self,
        query: Query,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        match &self.prepared {
            Some(statements) => self.client.query(&statements[query as usize], parameters).await,
            None => {
                let typed: Vec<(&(dyn ToSql + Sync), Type)> = parameters
                    .iter()
                    .zip(query.parameter_types())
                    .map(|(value, kind)| (*value, kind.clone()))
                    .collect();
                self.client.query_typed(self.texts.of(query), &typed).await
            }
        }
        .map_err(storage)
    }

    /// [`query`](Self::query) for a statement that returns exactly one row.
    pub(crate) async fn query_one(
        &self,
        query: Query,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Row> {
        self.query(query, parameters).await?.into_iter().next().ok_or_else(|| {
            Error::storage("postgres", false, std::io::Error::other("a query returned no row"))
        })
    }
}

/// Makes and checks the pool's connections.
pub(crate) struct Connector {
    settings: Arc<Settings>,
    statements: Statements,
    texts: Arc<Texts>,
    /// Where the connections' I/O is driven: a runtime that outlives any caller's.
    driver: tokio::runtime::Handle,
}

impl Connector {
    /// A pool of at most `size` connections to the server `settings` name, announcing changes
    /// on `channel`.
    pub(crate) fn pool(
        settings: Arc<Settings>,
        statements: Statements,
        channel: &str,
        driver: tokio::runtime::Handle,
        size: usize,
    ) -> Result<Pool> {
        let connector = Self { settings, statements, texts: Arc::new(Texts::new(channel)), driver };
        deadpool::managed::Pool::builder(connector)
            .max_size(size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(CHECKOUT_TIMEOUT))
            .create_timeout(Some(CREATE_TIMEOUT))
            .build()
            .map(|pool| Pool { pool })
            .map_err(|_| Error::Config { reason: "the PostgreSQL connection pool cannot be built" })
    }
}

impl deadpool::managed::Manager for Connector {
    type Type = PooledClient;
    type Error = Error;

    async fn create(&self) -> Result<PooledClient> {
        // Made on the driver's runtime: a socket answers to the runtime it was made on, and the
        // caller's may stop running (a writer thread's between batches) while the pool keeps it.
        let settings = Arc::clone(&self.settings);
        let driver = self.driver.clone();
        let connecting = self.driver.spawn(async move {
            let (client, connection) = settings.connect_raw(None).await?;
            // The driver ends when the connection closes; the client then reports it closed.
            driver.spawn(async move {
                let _ = connection.await;
            });
            Ok::<_, Error>(client)
        });
        let client = connecting.await.map_err(|_| {
            Error::storage("postgres", true, std::io::Error::other("the connection driver stopped"))
        })??;
        let prepared = match self.statements {
            Statements::Unnamed => None,
            Statements::Prepared => {
                let mut statements = Vec::with_capacity(Query::ALL.len());
                for query in Query::ALL {
                    let text = self.texts.of(query);
                    statements.push(client.prepare(text).await.map_err(storage)?);
                }
                Some(statements)
            }
        };
        Ok(PooledClient { client, prepared, texts: Arc::clone(&self.texts) })
    }

    /// A connection the driver found closed (the server restarted, say) is dropped; checking
    /// each one with a round trip would double the cost of every call.
    async fn recycle(
        &self,
        connection: &mut PooledClient,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Error> {
        if connection.client.is_closed() {
            Err(deadpool::managed::RecycleError::message("closed"))
        } else {
            Ok(())
        }
    }
}

/// The store's connections. A checkout that finds no open idle connection connects, and a failure
/// to connect is the caller's error at once: while the server is away calls fail fast. A
/// checkout that finds every connection busy waits for one, up to [`CHECKOUT_TIMEOUT`].
pub(crate) struct Pool {
    pool: deadpool::managed::Pool<Connector>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("max_size", &self.pool.status().max_size).finish()
    }
}

impl Pool {
    /// An open connection.
    pub(crate) async fn get(&self) -> Result<deadpool::managed::Object<Connector>> {
        use deadpool::managed::{PoolError, TimeoutType};
        let timed_out = |message: String| {
            let error = std::io::Error::new(std::io::ErrorKind::TimedOut, message);
            Error::storage("postgres", true, error)
        };
        self.pool.get().await.map_err(|error| match error {
            PoolError::Backend(error) => error,
            PoolError::Timeout(TimeoutType::Create) => timed_out(format!(
                "the server did not complete a new connection within {} s",
                CREATE_TIMEOUT.as_secs()
            )),
            PoolError::Timeout(_) => timed_out(format!(
                "every connection of the store's pool ({}) stayed busy for {} s",
                self.max_size(),
                CHECKOUT_TIMEOUT.as_secs()
            )),
            _ => Error::storage(
                "postgres",
                false,
                std::io::Error::other("the connection pool is closed"),
            ),
        })
    }

    /// The most connections the pool keeps.
    pub(crate) fn max_size(&self) -> usize {
        self.pool.status().max_size
    }

    /// Lets the pool keep up to `size` connections.
    pub(crate) fn grow_to(&self, size: usize) {
        if size > self.max_size() {
            self.pool.resize(size);
        }
    }
}
