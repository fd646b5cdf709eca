//! The in-memory audit sink.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::{AuditEvent, AuditQuery, AuditSink};
use crate::Result;

/// Audit events kept in memory, for tests and short-lived processes: the newest
/// [`DEFAULT_MEMORY_AUDIT_CAPACITY`] events, or the newest `n` with [`bounded`](Self::bounded).
/// Older events are dropped, so a long-running process does not grow without bound.
#[derive(Debug)]
pub struct MemoryAuditSink {
    events: Mutex<VecDeque<AuditEvent>>,
    capacity: usize,
}

/// How many events a [`MemoryAuditSink::new`] keeps.
pub const DEFAULT_MEMORY_AUDIT_CAPACITY: usize = 10_000;

impl Default for MemoryAuditSink {
    fn default() -> Self {
        Self::bounded(DEFAULT_MEMORY_AUDIT_CAPACITY)
    }
}

impl MemoryAuditSink {
    /// A sink that keeps the newest [`DEFAULT_MEMORY_AUDIT_CAPACITY`] events.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink that keeps the newest `capacity` events.
    pub fn bounded(capacity: usize) -> Self {
        Self { events: Mutex::new(VecDeque::new()), capacity }
    }

    fn push(&self, event: AuditEvent) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() >= self.capacity {
            events.pop_front();
        }
        events.push_back(event);
    }
}

#[async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        self.push(event);
        Ok(())
    }

    fn record_read(&self, event: AuditEvent) -> Result<()> {
        self.push(event);
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        Ok(query.apply(self.events.lock().unwrap_or_else(PoisonError::into_inner).iter()))
    }
}
