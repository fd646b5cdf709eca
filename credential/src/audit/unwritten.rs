//! What a sink could not write before it closed.

use super::AuditEvent;
use crate::Error;

/// The audit events a sink could not make durable before it closed, and the error that stopped
/// them: what [`AuditSink::close`](super::AuditSink::close) and
/// [`Manager::shutdown`](crate::Manager::shutdown) hand back instead of losing them. The events
/// are reads that were served (a mutation whose event is not durable never happens); write them
/// somewhere else, or at least count them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Unwritten {
    /// The events, oldest first.
    pub events: Vec<AuditEvent>,
    /// Why they were not written.
    pub error: Error,
}

impl Unwritten {
    /// `events` left unwritten because of `error`.
    pub fn new(events: Vec<AuditEvent>, error: Error) -> Self {
        Self { events, error }
    }
}

impl std::fmt::Display for Unwritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} audit events could not be written: {}", self.events.len(), self.error)
    }
}

impl std::error::Error for Unwritten {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// As an [`Error::Audit`] that says how many events were not written, keeping the cause.
impl From<Unwritten> for Error {
    fn from(unwritten: Unwritten) -> Self {
        Error::audit_caused_by(unwritten)
    }
}
