//! Audit events in a table of the SQLite store's own database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior, params};

use super::queue::{AuditQueue, BatchTarget, DEFAULT_QUEUE_CAPACITY};
use super::{AuditAction, AuditEvent, AuditOutcome, AuditQuery, AuditSink, Unwritten};
use crate::store::sqlite_error;
use crate::{Error, Result, SqliteStore, blocking};

/// Audit events in the `audit_events` table of a [`SqliteStore`]'s database, on a connection of
/// their own. Events are written by a background writer in batches, one transaction per batch
/// (group commit): a mutation's event is committed before the mutation proceeds; a read's event
/// with the next batch, milliseconds later. A crash can lose the read events still queued, never a
/// mutation's.
#[derive(Debug, Clone)]
pub struct SqliteAuditSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: SqliteStore,
    queue: AuditQueue,
}

impl SqliteAuditSink {
    /// The audit table of `store`'s database.
    ///
    /// # Errors
    /// A storage error when the database cannot be opened.
    pub fn new(store: &SqliteStore) -> Result<Self> {
        let target = SqliteTarget { connection: store.connect()? };
        let queue = AuditQueue::start("credential-audit-sqlite", target, DEFAULT_QUEUE_CAPACITY)?;
        Ok(Self { inner: Arc::new(Inner { store: store.clone(), queue }) })
    }
}

/// An event from a row of the audit table, with its action and outcome still as stored.
fn row_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditEvent, String, String)> {
    let event = AuditEvent {
        time: DateTime::from_timestamp_nanos(row.get(0)?),
        principal: row.get::<_, String>(1)?.into(),
        credential: row.get::<_, String>(2)?.into(),
        environment: row.get::<_, String>(3)?.into(),
        action: AuditAction::Read,
        outcome: AuditOutcome::Success,
        version: row.get::<_, Option<i64>>(6)?.and_then(|version| u64::try_from(version).ok()),
        error: row.get(7)?,
        reason: row.get(8)?,
        count: u64::try_from(row.get::<_, i64>(9)?).unwrap_or(1),
        until: row.get::<_, Option<i64>>(10)?.map(DateTime::from_timestamp_nanos),
        revision: row.get::<_, Option<i64>>(11)?.and_then(|revision| u64::try_from(revision).ok()),
    };
    Ok((event, row.get(4)?, row.get(5)?))
}

/// Inserts batches in one transaction each.
struct SqliteTarget {
    connection: Connection,
}

impl BatchTarget for SqliteTarget {
    fn write(&mut self, events: &[AuditEvent]) -> Result<()> {
        let audit_error = |error| Error::audit_caused_by(sqlite_error(error));
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(audit_error)?;
        {
            let mut statement = transaction
                .prepare_cached(
                    "INSERT INTO audit_events (time_ns, principal, credential, environment, action, outcome, version, error, reason, count, until_ns, revision)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(audit_error)?;
            for event in events {
                statement
                    .execute(params![
                        event.time.timestamp_nanos_opt().unwrap_or(i64::MAX),
                        event.principal,
                        event.credential,
                        event.environment,
                        event.action.as_str(),
                        event.outcome.as_str(),
                        event.version.and_then(|version| i64::try_from(version).ok()),
                        event.error,
                        event.reason,
                        i64::try_from(event.count).unwrap_or(i64::MAX),
                        event.until.and_then(|until| until.timestamp_nanos_opt()),
                        event.revision.and_then(|revision| i64::try_from(revision).ok()),
                    ])
                    .map_err(audit_error)?;
            }
        }
        transaction.commit().map_err(audit_error)
    }
}

#[async_trait]
impl AuditSink for SqliteAuditSink {
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
        let (query, store) = (query.clone(), self.inner.store.clone());
        blocking::run(move || {
                let connection = store.connect()?;
                let nanos = |time: Option<DateTime<Utc>>| time.and_then(|time| time.timestamp_nanos_opt());
                let mut statement = connection
                    .prepare_cached(
                        "SELECT time_ns, principal, credential, environment, action, outcome, version, error, reason, count, until_ns, revision
                         FROM audit_events
                         WHERE (?1 IS NULL OR credential = ?1) AND (?2 IS NULL OR principal = ?2)
                           AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR outcome = ?4)
                           AND (?5 IS NULL OR time_ns >= ?5) AND (?6 IS NULL OR time_ns < ?6)
                         ORDER BY seq DESC LIMIT ?7",
                    )
                    .map_err(sqlite_error)?;
                let limit = query.limit.and_then(|limit| i64::try_from(limit).ok()).unwrap_or(-1);
                let rows = statement
                    .query_map(
                        params![
                            query.credential,
                            query.principal,
                            query.action.map(AuditAction::as_str),
                            query.outcome.map(AuditOutcome::as_str),
                            nanos(query.since),
                            nanos(query.until),
                            limit
                        ],
                        row_event,
                    )
                    .map_err(sqlite_error)?;
                let mut events = Vec::new();
                for row in rows {
                    let (event, action, outcome) = row.map_err(sqlite_error)?;
                    events.push(AuditEvent { action: action.parse()?, outcome: outcome.parse()?, ..event });
                }
                events.reverse();
                Ok(events)
            })
            .await
    }
}
