//! What the core reports to `tracing` (feature `tracing`) and `metrics` (feature `metrics`): the
//! facts its audit events hold (who, which credential, what, how it ended, the error code), where
//! a read was served from and how long store calls took. Never a value, and never an id as a
//! metric label. Without either feature every call here compiles to nothing.
//!
//! Spans: `credential` (DEBUG) around each read and commit, with `op` (`read` or `commit`) and
//! `id`, `kind`, `principal`, `action`, `outcome`, `error` and, for reads, `source` recorded as
//! they become known; `credential.store` (TRACE) around each store call, with `op` (`get`, `put`).
//! Events: every read at TRACE, every mutation at INFO, a denial at WARN, a payload that does not
//! open at ERROR.
//!
//! Metrics (register a recorder before building a manager: handles are taken at build time):
//! `credential_reads_total` {source = cache | store, outcome}, `credential_commits_total`
//! {action, outcome}, `credential_denials_total` {action}, `credential_decrypt_failures_total`,
//! `credential_errors_total` {code}, `credential_store_call_seconds` {op} (histogram).

#[cfg(feature = "metrics")]
use std::time::Instant;

use crate::Error;
use crate::audit::{AuditAction, AuditEvent, AuditOutcome};

/// Whether anything is reported at all.
pub(crate) const ENABLED: bool = cfg!(any(feature = "tracing", feature = "metrics"));

/// `work` awaited inside `operation`'s span when a tracing subscriber wants its fields, and in
/// place otherwise: handing a future to [`Operation::within`] moves it, and a commit's future is
/// a kilobyte.
macro_rules! awaited_within {
    ($operation:expr, $work:expr) => {
        if $operation.traced() { $operation.within($work).await } else { $work.await }
    };
}
pub(crate) use awaited_within;

/// Where a read was served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Cache,
    Store,
}

/// Metric handles taken once, so the read path neither allocates keys nor looks them up.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    #[cfg(feature = "metrics")]
    reads: ReadCounters,
    #[cfg(feature = "metrics")]
    commits: CommitCounters,
    #[cfg(feature = "metrics")]
    store: StoreHistograms,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct ReadCounters {
    /// By source, then outcome (success, denied, failure).
    by_source: [[metrics::Counter; 3]; 2],
}

#[cfg(feature = "metrics")]
impl Default for ReadCounters {
    fn default() -> Self {
        let counter = |source: &'static str, outcome: &'static str| metrics::counter!("credential_reads_total", "source" => source, "outcome" => outcome);
        let outcomes = |source| {
            [counter(source, "success"), counter(source, "denied"), counter(source, "failure")]
        };
        Self { by_source: [outcomes("cache"), outcomes("store")] }
    }
}

/// `credential_commits_total` by action, then outcome: each taken on its first use, so a manager
/// neither builds a key per commit nor registers every pair at start-up.
#[cfg(feature = "metrics")]
#[derive(Debug, Default)]
struct CommitCounters {
    by_action: [[std::sync::OnceLock<metrics::Counter>; 3]; AuditAction::COUNT],
}

#[cfg(feature = "metrics")]
impl CommitCounters {
    fn get(&self, action: AuditAction, outcome: AuditOutcome) -> &metrics::Counter {
        self.by_action[action as usize][outcome_index(outcome)].get_or_init(|| {
            metrics::counter!(
                "credential_commits_total",
                "action" => action.as_str(),
                "outcome" => outcome.as_str()
            )
        })
    }
}

/// One read or commit in progress, and its span.
pub(crate) struct Operation {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl Operation {
    /// A read begins.
    pub(crate) fn read() -> Self {
        Self::begin("read")
    }

    /// A commit begins.
    pub(crate) fn commit() -> Self {
        Self::begin("commit")
    }

    fn begin(op: &'static str) -> Self {
        #[cfg(not(feature = "tracing"))]
        let _ = op;
        Self {
            // Without any subscriber (one relaxed load), not even the callsite is consulted.
            #[cfg(feature = "tracing")]
            span: if !tracing::dispatcher::has_been_set() {
                tracing::Span::none()
            } else {
                tracing::debug_span!(
                    "credential",
                    op,
                    id = tracing::field::Empty,
                    kind = tracing::field::Empty,
                    principal = tracing::field::Empty,
                    action = tracing::field::Empty,
                    outcome = tracing::field::Empty,
                    error = tracing::field::Empty,
                    source = tracing::field::Empty,
                )
            },
        }
    }

    /// Whether a tracing subscriber is set, and so wants the fields of this operation's span.
    pub(crate) fn traced(&self) -> bool {
        #[cfg(feature = "tracing")]
        {
            tracing::dispatcher::has_been_set()
        }
        #[cfg(not(feature = "tracing"))]
        {
            false
        }
    }

    /// `work`, inside this operation's span.
    pub(crate) fn within<F: Future>(&self, work: F) -> impl Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        {
            tracing::Instrument::instrument(work, self.span.clone())
        }
        #[cfg(not(feature = "tracing"))]
        {
            work
        }
    }

    /// The read whose audit event is `event` ended, served from `source`.
    pub(crate) fn read_ended(
        self,
        telemetry: &Telemetry,
        event: &AuditEvent,
        kind: Option<&str>,
        source: Source,
    ) {
        #[cfg(feature = "metrics")]
        {
            let by_outcome = &telemetry.reads.by_source[usize::from(source == Source::Store)];
            by_outcome[outcome_index(event.outcome)].increment(1);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = telemetry;
        #[cfg(feature = "tracing")]
        if self.traced() {
            self.record(event, kind);
            let source = match source {
                Source::Cache => "cache",
                Source::Store => "store",
            };
            self.span.record("source", source);
            let _entered = self.span.enter();
            tracing::trace!(source, "credential read");
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (kind, source);
        ended(event);
    }

    /// A commit of `action` ended with `error` (none: success). Its audit event is made only
    /// when something reads it: a failure's report, or a tracing subscriber (which also gets
    /// `kind`).
    pub(crate) fn commit_ended(
        self,
        telemetry: &Telemetry,
        action: AuditAction,
        error: Option<&Error>,
        kind: Option<&str>,
        event: impl FnOnce() -> AuditEvent,
    ) {
        let outcome = AuditOutcome::of(error);
        #[cfg(feature = "metrics")]
        telemetry.commits.get(action, outcome).increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = (telemetry, action, outcome);
        let traced = self.traced();
        if !traced && error.is_none() {
            return;
        }
        let event = event();
        #[cfg(feature = "tracing")]
        if traced {
            self.record(&event, kind);
            let _entered = self.span.enter();
            // With its own fields, so that an engine logging at INFO, where the span is filtered
            // out, still sees what changed (never a value).
            if outcome == AuditOutcome::Success {
                tracing::info!(
                    id = &*event.credential,
                    kind,
                    action = action.as_str(),
                    outcome = outcome.as_str(),
                    principal = &*event.principal,
                    "credential changed"
                );
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = kind;
        ended(&event);
    }

    #[cfg(feature = "tracing")]
    fn record(&self, event: &AuditEvent, kind: Option<&str>) {
        let span = &self.span;
        span.record("id", &*event.credential);
        if let Some(kind) = kind {
            span.record("kind", kind);
        }
        span.record("principal", &*event.principal);
        span.record("action", event.action.as_str());
        span.record("outcome", event.outcome.as_str());
        if let Some(error) = &event.error {
            span.record("error", error.as_str());
        }
    }
}

/// What any operation's end reports besides its own kind: denials and failures.
fn ended(event: &AuditEvent) {
    let Some(code) = event.error.as_deref() else {
        return;
    };
    let undecryptable = matches!(code, "decrypt" | "wrong_master_key");
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("credential_errors_total", "code" => code.to_owned()).increment(1);
        match event.outcome {
            AuditOutcome::Denied => {
                metrics::counter!("credential_denials_total", "action" => event.action.as_str())
                    .increment(1);
            }
            _ if undecryptable => {
                metrics::counter!("credential_decrypt_failures_total").increment(1);
            }
            _ => {}
        }
    }
    #[cfg(feature = "tracing")]
    match event.outcome {
        AuditOutcome::Denied => tracing::warn!(
            id = &*event.credential,
            principal = &*event.principal,
            action = event.action.as_str(),
            "access denied"
        ),
        _ if undecryptable => tracing::error!(
            id = &*event.credential,
            error = code,
            "a sealed payload did not open: tampered, or sealed under another key"
        ),
        _ => {}
    }
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = (undecryptable, AuditOutcome::Success);
}

#[cfg(feature = "metrics")]
fn outcome_index(outcome: AuditOutcome) -> usize {
    match outcome {
        AuditOutcome::Success => 0,
        AuditOutcome::Denied => 1,
        AuditOutcome::Failure => 2,
    }
}

/// A store call the core makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreOp {
    Get,
    Put,
    Delete,
}

impl StoreOp {
    fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Put => "put",
            Self::Delete => "delete",
        }
    }
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct StoreHistograms {
    get: metrics::Histogram,
    put: metrics::Histogram,
    delete: metrics::Histogram,
}

#[cfg(feature = "metrics")]
impl Default for StoreHistograms {
    fn default() -> Self {
        let histogram =
            |op: &'static str| metrics::histogram!("credential_store_call_seconds", "op" => op);
        Self { get: histogram("get"), put: histogram("put"), delete: histogram("delete") }
    }
}

impl Telemetry {
    /// `call` to the store: in a span, and timed.
    pub(crate) async fn store_call<T>(&self, op: StoreOp, call: impl Future<Output = T>) -> T {
        #[cfg(feature = "metrics")]
        let started = Instant::now();
        #[cfg(feature = "tracing")]
        let result = if tracing::dispatcher::has_been_set() {
            let span = tracing::trace_span!("credential.store", op = op.name());
            tracing::Instrument::instrument(call, span).await
        } else {
            call.await
        };
        #[cfg(not(feature = "tracing"))]
        let result = call.await;
        #[cfg(feature = "metrics")]
        {
            let histogram = match op {
                StoreOp::Get => &self.store.get,
                StoreOp::Put => &self.store.put,
                StoreOp::Delete => &self.store.delete,
            };
            histogram.record(started.elapsed().as_secs_f64());
        }
        #[cfg(not(feature = "tracing"))]
        let _ = op.name();
        #[cfg(not(feature = "metrics"))]
        let _ = self;
        result
    }
}

/// The audit sink refused a read's event, so the read failed after all.
pub(crate) fn audit_refused(error: &Error) {
    #[cfg(feature = "metrics")]
    metrics::counter!("credential_errors_total", "code" => error.code()).increment(1);
    #[cfg(feature = "tracing")]
    tracing::warn!(error = error.code(), "a read was refused: its audit event could not be queued");
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = error;
}

/// A store's change feed lost track: the caches over it start over.
#[cfg(any(feature = "sqlite", feature = "file", feature = "postgres", feature = "vault"))]
pub(crate) fn feed_lost(store: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("credential_feed_losses_total", "store" => store).increment(1);
    #[cfg(feature = "tracing")]
    tracing::warn!(store, "change feed lost; caches bypassed until it catches up");
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = store;
}

/// The server `store` names refused a new connection for having too many: the caller waits and
/// tries again.
#[cfg(feature = "postgres")]
pub(crate) fn server_full(store: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("credential_server_full_waits_total", "store" => store).increment(1);
    #[cfg(feature = "tracing")]
    tracing::warn!(store, "the server refuses new connections (too many clients); waiting");
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = store;
}

/// A refresh of `id` landed with `outcome`.
pub(crate) fn refresh_landed(id: &str, outcome: &Result<(), Error>) {
    let code = outcome.as_ref().err().map(Error::code);
    #[cfg(feature = "metrics")]
    metrics::counter!("credential_refreshes_total", "outcome" => code.unwrap_or("success"))
        .increment(1);
    #[cfg(feature = "tracing")]
    match code {
        None => tracing::info!(id, "credential refreshed"),
        Some(code) => tracing::warn!(id, error = code, "credential refresh failed"),
    }
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = (id, code);
}

/// The masker dropped its `count` oldest values to stay within its capacity: they are no longer
/// masked.
pub(crate) fn masker_evicted(count: u64) {
    #[cfg(feature = "metrics")]
    metrics::counter!("credential_masker_evictions_total").increment(count);
    #[cfg(feature = "tracing")]
    tracing::warn!(count, "masker full: its oldest values are no longer masked");
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = count;
}

/// The masker could not build an automaton over its values: the values learned since its last
/// build are not masked until one succeeds.
pub(crate) fn masker_build_failed() {
    #[cfg(feature = "metrics")]
    metrics::counter!("credential_masker_build_failures_total").increment(1);
    #[cfg(feature = "tracing")]
    tracing::error!("masker could not build its automaton: recent values are not masked");
}

/// A rotation step on `id` ended with `error` (none: success). The reason names no value.
pub(crate) fn rotation_step(id: &str, step: &'static str, error: Option<String>) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "credential_rotation_steps_total",
        "step" => step,
        "outcome" => if error.is_some() { "failure" } else { "success" }
    )
    .increment(1);
    #[cfg(feature = "tracing")]
    match &error {
        None => tracing::info!(id, step, "credential rotation step done"),
        Some(reason) => {
            tracing::warn!(id, step, reason = %reason, "credential rotation step failed")
        }
    }
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = (id, step, error);
}
