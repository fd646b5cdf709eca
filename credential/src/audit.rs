//! Audit: the [`AuditSink`] trait, the events it takes, queries over them, and the sinks that
//! come with the crate.
//!
//! Mutation events are durable before the mutation commits. Read events go to durable sinks
//! through a queue (`queue`): they are written in batches off the caller's path, durable within
//! about 50 ms, and repeated reads of one access between two batches become one event with a
//! count. A failing or full sink refuses reads and mutations (fail closed).
//!
//! ```
//! use credential::audit::{AuditAction, AuditQuery, AuditSink, MemoryAuditSink};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
//! let sink = MemoryAuditSink::new();
//! let reads = sink.query(&AuditQuery::all().action(AuditAction::Read)).await?;
//! assert!(reads.is_empty());
//! # Ok(()) }
//! ```

mod anchor;
pub(crate) mod bounds;
mod event;
mod jsonl;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod queue;
mod restores;
#[cfg(feature = "sqlite")]
mod sqlite;
mod unwritten;

use std::sync::Arc;

use async_trait::async_trait;

pub(crate) use self::anchor::Anchors;
pub use self::anchor::TrailAnchor;
pub use self::bounds::{MAX_AUDIT_PRINCIPAL_LEN, MAX_AUDIT_REASON_LEN};
pub use self::event::{AuditAction, AuditEvent, AuditOutcome};
pub use self::jsonl::{ChainReport, JsonlAuditSink};
pub use self::memory::{DEFAULT_MEMORY_AUDIT_CAPACITY, MemoryAuditSink};
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresAuditSink;
pub use self::query::{AuditQuery, AuditSummary};
pub use self::restores::RestoreCheck;
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteAuditSink;
pub use self::unwritten::Unwritten;
use crate::Result;
use crate::error::ResultFuture;

/// Where audit events go.
///
/// A manager records a mutation's event with [`record`](Self::record) before committing the
/// mutation, and refuses the mutation when recording fails (fail closed). Read events go to
/// [`record_read`](Self::record_read), which must not wait for I/O: a durable sink queues them
/// and writes them in batches; when it cannot take one (queue full, sink failing) the read is
/// refused.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Records a mutation's event; returns once it is durable.
    ///
    /// # Errors
    /// [`Error::Audit`](crate::Error::Audit) when the event could not be recorded.
    async fn record(&self, event: AuditEvent) -> Result<()>;

    /// Takes a read event without waiting for I/O.
    ///
    /// # Errors
    /// [`Error::AuditBackpressure`](crate::Error::AuditBackpressure) or
    /// [`Error::Audit`](crate::Error::Audit) when the event cannot be taken: the read is refused.
    fn record_read(&self, event: AuditEvent) -> Result<()>;

    /// Returns once every event taken so far is durable: what a short-lived process (a command
    /// line tool) calls before it exits, so that no queued read event is lost. The default does
    /// nothing, for sinks that write every event at once.
    ///
    /// # Errors
    /// [`Error::Audit`](crate::Error::Audit) when queued events could not be written.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Writes every event taken so far, then takes no more: what
    /// [`Manager::shutdown`](crate::Manager::shutdown) calls last. Returns the events it could not
    /// write, with the reason, rather than dropping them. Queries still answer afterwards;
    /// recording fails. A sink shared by several managers is closed for all of them. The default
    /// flushes, for sinks that hold nothing back.
    ///
    /// # Errors
    /// [`Unwritten`] when events could not be written.
    async fn close(&self) -> std::result::Result<(), Unwritten> {
        self.flush().await.map_err(|error| Unwritten::new(Vec::new(), error))
    }

    /// The last line this sink has made durable, when it keeps a hash-chained trail: a manager
    /// names it in every record it writes (see [`TrailAnchor`]), so a trail cut short ends
    /// before a line the store vouches for. `None` (the default) for a sink without a chain.
    fn trail_anchor(&self) -> Option<TrailAnchor> {
        None
    }

    /// The events passing `query`, oldest first, including every event taken so far.
    ///
    /// # Errors
    /// [`Error::Audit`](crate::Error::Audit) when the events cannot be read.
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>>;

    /// Totals over the events passing `query`.
    ///
    /// # Errors
    /// As [`query`](Self::query).
    async fn summary(&self, query: &AuditQuery) -> Result<AuditSummary> {
        let events = self.query(query).await?;
        Ok(AuditSummary::of(&events))
    }
}

/// A shared sink is a sink: keep an `Arc` to query what a manager records. Each call hands back
/// the shared sink's own future, without boxing it a second time.
#[async_trait]
impl<S: AuditSink + ?Sized> AuditSink for Arc<S> {
    fn record<'a, 'f>(&'a self, event: AuditEvent) -> ResultFuture<'f, ()>
    where
        'a: 'f,
        Self: 'f,
    {
        (**self).record(event)
    }

    fn record_read(&self, event: AuditEvent) -> Result<()> {
        (**self).record_read(event)
    }

    fn flush<'a, 'f>(&'a self) -> ResultFuture<'f, ()>
    where
        'a: 'f,
        Self: 'f,
    {
        (**self).flush()
    }

    fn close<'a, 'f>(
        &'a self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::result::Result<(), Unwritten>> + Send + 'f>,
    >
    where
        'a: 'f,
        Self: 'f,
    {
        (**self).close()
    }

    fn trail_anchor(&self) -> Option<TrailAnchor> {
        (**self).trail_anchor()
    }

    fn query<'a, 'b, 'f>(&'a self, query: &'b AuditQuery) -> ResultFuture<'f, Vec<AuditEvent>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).query(query)
    }

    fn summary<'a, 'b, 'f>(&'a self, query: &'b AuditQuery) -> ResultFuture<'f, AuditSummary>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).summary(query)
    }
}
