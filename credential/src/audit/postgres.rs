//! Audit events in a table of the PostgreSQL store's own database.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;

use super::queue::{AuditQueue, BatchTarget, DEFAULT_QUEUE_CAPACITY};
use super::{AuditAction, AuditEvent, AuditOutcome, AuditQuery, AuditSink, Unwritten};
use crate::store::PostgresStore;
use crate::store::postgres_connection::storage;
use crate::{Error, Result};

/// Audit events in the `credential_audit` table of a [`PostgresStore`]'s database. A writer
/// thread inserts them in batches on the store's pooled connections, one statement per batch
/// (group commit): a mutation's event is committed before the mutation proceeds; a read's event with the
/// next batch, milliseconds later. A crash can lose the read events still queued, never a
/// mutation's. While the database cannot be reached, mutations fail and reads are refused once
/// the queue is failing ([`Error::AuditBackpressure`]).
#[derive(Debug, Clone)]
pub struct PostgresAuditSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: PostgresStore,
    queue: AuditQueue,
}

impl PostgresAuditSink {
    /// The audit table of `store`'s database.
    ///
    /// # Errors
    /// An I/O error when the writer thread cannot be started.
    pub fn new(store: &PostgresStore) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::io("starting the audit writer", source))?;
        let target = PostgresTarget { store: store.clone(), runtime };
        let queue = AuditQueue::start("credential-audit-postgres", target, DEFAULT_QUEUE_CAPACITY)?;
        Ok(Self { inner: Arc::new(Inner { store: store.clone(), queue }) })
    }
}

/// Inserts each batch with one (unnamed) statement on one of the store's pooled connections,
/// waiting for it on the writer thread's own runtime.
struct PostgresTarget {
    store: PostgresStore,
    runtime: tokio::runtime::Runtime,
}

impl BatchTarget for PostgresTarget {
    fn write(&mut self, events: &[AuditEvent]) -> Result<()> {
        let columns = Columns::of(events);
        let pool = self.store.pool();
        self.runtime
            .block_on(async {
                let connection = pool.get().await?;
                connection
                    .client
                    .execute_typed(
                        "INSERT INTO credential_audit
                            (time_ns, principal, credential, environment, action, outcome, version,
                             error, reason, count, until_ns, revision)
                         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        &[
                            (&columns.time_ns, Type::INT8_ARRAY),
                            (&columns.principal, Type::TEXT_ARRAY),
                            (&columns.credential, Type::TEXT_ARRAY),
                            (&columns.environment, Type::TEXT_ARRAY),
                            (&columns.action, Type::TEXT_ARRAY),
                            (&columns.outcome, Type::TEXT_ARRAY),
                            (&columns.version, Type::INT8_ARRAY),
                            (&columns.error, Type::TEXT_ARRAY),
                            (&columns.reason, Type::TEXT_ARRAY),
                            (&columns.count, Type::INT8_ARRAY),
                            (&columns.until_ns, Type::INT8_ARRAY),
                            (&columns.revision, Type::INT8_ARRAY),
                        ],
                    )
                    .await
                    .map(drop)
                    .map_err(storage)
            })
            .map_err(Error::audit_caused_by)
    }
}

/// A batch of events by column, for one `unnest` insert.
struct Columns<'a> {
    time_ns: Vec<i64>,
    principal: Vec<&'a str>,
    credential: Vec<&'a str>,
    environment: Vec<&'a str>,
    action: Vec<&'static str>,
    outcome: Vec<&'static str>,
    version: Vec<Option<i64>>,
    error: Vec<Option<&'a str>>,
    reason: Vec<Option<&'a str>>,
    count: Vec<i64>,
    until_ns: Vec<Option<i64>>,
    revision: Vec<Option<i64>>,
}

impl<'a> Columns<'a> {
    fn of(events: &'a [AuditEvent]) -> Self {
        let nanos = |time: DateTime<Utc>| time.timestamp_nanos_opt().unwrap_or(i64::MAX);
        Self {
            time_ns: events.iter().map(|event| nanos(event.time)).collect(),
            principal: events.iter().map(|event| &*event.principal).collect(),
            credential: events.iter().map(|event| &*event.credential).collect(),
            environment: events.iter().map(|event| &*event.environment).collect(),
            action: events.iter().map(|event| event.action.as_str()).collect(),
            outcome: events.iter().map(|event| event.outcome.as_str()).collect(),
            version: events
                .iter()
                .map(|event| event.version.and_then(|version| i64::try_from(version).ok()))
                .collect(),
            error: events.iter().map(|event| event.error.as_deref()).collect(),
            reason: events.iter().map(|event| event.reason.as_deref()).collect(),
            count: events
                .iter()
                .map(|event| i64::try_from(event.count).unwrap_or(i64::MAX))
                .collect(),
            until_ns: events.iter().map(|event| event.until.map(nanos)).collect(),
            revision: events
                .iter()
                .map(|event| event.revision.and_then(|revision| i64::try_from(revision).ok()))
                .collect(),
        }
    }
}

#[async_trait]
impl AuditSink for PostgresAuditSink {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        self.inner.queue.record_durably(event).await
    }

    fn record_read(&self, event: AuditEvent) -> Result<()> {
        self.inner.queue.enqueue(event)
    }

    async fn flush(&self) -> Result<()> {
        self.inner.queue.flush().await
    }

    async fn close(&self) -> std::result::Result<(), Unwritten> {
        self.inner.queue.close().await
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        self.inner.queue.flush().await?;
        let nanos = |time: Option<DateTime<Utc>>| time.and_then(|time| time.timestamp_nanos_opt());
        let limit = query.limit.and_then(|limit| i64::try_from(limit).ok());
        let connection = self.inner.store.pool().get().await?;
        let rows = connection
            .client
            .query_typed(
                "SELECT time_ns, principal, credential, environment, action, outcome, version,
                        error, reason, count, until_ns, revision
                 FROM credential_audit
                 WHERE ($1::text IS NULL OR credential = $1) AND ($2::text IS NULL OR principal = $2)
                   AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR outcome = $4)
                   AND ($5::bigint IS NULL OR time_ns >= $5) AND ($6::bigint IS NULL OR time_ns < $6)
                 ORDER BY seq DESC LIMIT $7",
                &[
                    (&query.credential, Type::TEXT),
                    (&query.principal, Type::TEXT),
                    (&query.action.map(AuditAction::as_str), Type::TEXT),
                    (&query.outcome.map(AuditOutcome::as_str), Type::TEXT),
                    (&nanos(query.since), Type::INT8),
                    (&nanos(query.until), Type::INT8),
                    (&limit, Type::INT8),
                ],
            )
            .await
            .map_err(storage)?;
        drop(connection);
        let mut events = rows
            .iter()
            .map(|row| {
                Ok(AuditEvent {
                    time: DateTime::from_timestamp_nanos(row.get(0)),
                    principal: row.get::<_, &str>(1).into(),
                    credential: row.get::<_, &str>(2).into(),
                    environment: row.get::<_, &str>(3).into(),
                    action: row.get::<_, &str>(4).parse()?,
                    outcome: row.get::<_, &str>(5).parse()?,
                    version: row
                        .get::<_, Option<i64>>(6)
                        .and_then(|version| u64::try_from(version).ok()),
                    error: row.get(7),
                    reason: row.get(8),
                    count: u64::try_from(row.get::<_, i64>(9)).unwrap_or(1),
                    until: row.get::<_, Option<i64>>(10).map(DateTime::from_timestamp_nanos),
                    revision: row
                        .get::<_, Option<i64>>(11)
                        .and_then(|revision| u64::try_from(revision).ok()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }
}
