//! Group commit for durable audit sinks: events queue in memory and one writer thread makes them
//! durable in batches, so a read never waits for a disk flush and a mutation waits for one.
//!
//! - A read event is queued and the read goes on; the writer makes it durable with the next
//!   batch, which starts as soon as the previous one is done (within milliseconds, well inside
//!   50 ms on a working disk).
//! - A mutation event is queued and its caller waits until the batch holding it is durable; when
//!   that batch fails, the caller gets the error and the mutation does not happen.
//! - The queue is bounded: when it is full, or while the sink is failing, reads are refused
//!   ([`Error::AuditBackpressure`]) rather than served unaudited or buffered without bound.
//!
//! A crash loses the read events still queued (at most the last batch's worth, normally the last
//! few milliseconds of reads); it never loses a mutation event, because a mutation is not
//! committed before its event is durable.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::audit::AuditEvent;
use crate::{Error, Result};

/// Events a queue holds before it refuses reads.
pub(crate) const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// The most events written in one batch.
const MAX_BATCH: usize = 4_096;
/// Pause after a failed batch before the next attempt, doubling up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where batches go: appends `events` durably, in order, all or nothing.
pub(crate) trait BatchTarget: Send + 'static {
    fn write(&mut self, events: &[AuditEvent]) -> Result<()>;
}

struct Pending {
    event: Option<AuditEvent>,
    /// For mutations and flushes: told when the batch is durable, or why it is not.
    done: Option<oneshot::Sender<Result<()>>>,
}

#[derive(Default)]
struct State {
    pending: VecDeque<Pending>,
    /// The last batch failed and is being retried.
    failing: bool,
    /// The writer is waiting for work (so a new event must wake it).
    idle: bool,
    closed: bool,
    /// The writer thread has stopped (it panicked): nothing queued will ever be written.
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The queue in front of a durable sink; dropping it lets the writer finish what is queued and
/// stop.
pub(crate) struct AuditQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditQueue")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl AuditQueue {
    /// Starts the writer thread for `target`.
    pub(crate) fn start(name: &str, target: impl BatchTarget, capacity: usize) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            capacity,
        });
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run_writer(&writer, target))
            .map_err(|source| Error::io("starting the audit writer", source))?;
        Ok(Self { shared })
    }

    /// Queues a read event; refused when the queue is full or the sink is failing.
    pub(crate) fn enqueue(&self, event: AuditEvent) -> Result<()> {
        let mut state = self.shared.state();
        if state.stopped {
            return Err(Error::Audit { reason: "the audit writer stopped".to_owned() });
        }
        if state.failing || state.pending.len() >= self.shared.capacity {
            return Err(Error::AuditBackpressure);
        }
        state.pending.push_back(Pending { event: Some(event), done: None });
        self.wake_writer(state);
        Ok(())
    }

    /// Queues a mutation event and waits until it is durable.
    pub(crate) async fn record_durably(&self, event: AuditEvent) -> Result<()> {
        self.wait_for(Some(event)).await
    }

    /// Waits until everything queued so far is durable.
    pub(crate) async fn flush(&self) -> Result<()> {
        self.wait_for(None).await
    }

    async fn wait_for(&self, event: Option<AuditEvent>) -> Result<()> {
        let (done, outcome) = oneshot::channel();
        {
            let mut state = self.shared.state();
            if state.stopped {
                return Err(Error::Audit { reason: "the audit writer stopped".to_owned() });
            }
            // A mutation is refused at once while the sink fails; a flush waits for the retry.
            if state.failing && event.is_some() {
                return Err(Error::Audit { reason: "the audit sink is failing".to_owned() });
            }
            state.pending.push_back(Pending { event, done: Some(done) });
            self.wake_writer(state);
        }
        outcome.await.map_err(|_| Error::Audit { reason: "the audit writer stopped".to_owned() })?
    }

    fn wake_writer(&self, mut state: MutexGuard<'_, State>) {
        // Only an idle writer needs a wake-up: a busy one drains the queue when its batch is done.
        if state.idle {
            state.idle = false;
            drop(state);
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for AuditQueue {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_one();
    }
}

/// The events of a batch, in order, with repeated reads counted rather than repeated: within
/// each stretch between mutations, a read identical to an earlier one (same principal,
/// credential, version and outcome) adds to that one's count. Mutations stay exactly where and
/// what they are.
fn coalesce(batch: &[Pending]) -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = Vec::with_capacity(batch.len().min(64));
    // Where the current stretch of reads starts in `events`.
    let mut stretch = 0;
    for pending in batch {
        let Some(event) = &pending.event else { continue };
        if pending.done.is_some() {
            events.push(event.clone());
            stretch = events.len();
            continue;
        }
        // Stretches hold few distinct accesses (reads repeat), so a scan beats a map.
        match events[stretch..].iter_mut().find(|earlier| earlier.same_access(event)) {
            Some(earlier) => {
                earlier.count += 1;
                earlier.until = Some(earlier.until.unwrap_or(earlier.time).max(event.time));
            }
            None => events.push(event.clone()),
        }
    }
    events
}

/// Marks the queue stopped when the writer thread ends for any reason, a panic included, and
/// drops what is queued, so that every waiter hears of it and no new event is taken.
struct StopOnExit<'a>(&'a Shared);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.stopped = true;
        state.pending.clear();
    }
}

fn run_writer(shared: &Shared, mut target: impl BatchTarget) {
    let _stop_on_exit = StopOnExit(shared);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut batch = {
            let mut state = shared.state();
            while state.pending.is_empty() && !state.closed {
                state.idle = true;
                state = shared.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            state.idle = false;
            if state.pending.is_empty() {
                return;
            }
            let take = state.pending.len().min(MAX_BATCH);
            state.pending.drain(..take).collect::<Vec<_>>()
        };
        let events = coalesce(&batch);
        match target.write(&events) {
            Ok(()) => {
                shared.state().failing = false;
                backoff = FIRST_BACKOFF;
                for pending in batch {
                    if let Some(done) = pending.done {
                        let _ = done.send(Ok(()));
                    }
                }
            }
            Err(error) => {
                // Waiting mutations fail (they will not happen, so their events must not be
                // written later); queued reads already happened and are retried first. The sink
                // is marked failing before any waiter hears of it.
                let mut waiters = Vec::new();
                batch.retain_mut(|pending| match pending.done.take() {
                    Some(done) => {
                        waiters.push(done);
                        false
                    }
                    None => true,
                });
                let mut state = shared.state();
                state.failing = true;
                for pending in batch.into_iter().rev() {
                    state.pending.push_front(pending);
                }
                let closed = state.closed;
                drop(state);
                // A lasting failure (a full disk, a refused write) reaches the waiter as the audit
                // failing, the trait's promise; a transient one (a dropped connection) keeps its
                // kind, so that the caller knows a retry can help.
                let failure = if error.is_transient() || matches!(error, Error::Audit { .. }) {
                    error.clone()
                } else {
                    Error::Audit { reason: error.to_string() }
                };
                for done in waiters {
                    let _ = done.send(Err(failure.clone()));
                }
                let state = shared.state();
                let _ = shared.wake.wait_timeout(state, backoff);
                if closed {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::manager::audit::{AuditAction, AuditOutcome};

    fn event(action: AuditAction) -> AuditEvent {
        AuditEvent {
            time: chrono::Utc::now(),
            principal: Arc::from("p"),
            credential: Arc::from("c"),
            environment: Arc::from("e"),
            action,
            outcome: AuditOutcome::Success,
            version: None,
            error: None,
            reason: None,
            count: 1,
            until: None,
        }
    }

    /// A target that fails while told to and reports every batch it takes.
    struct Switchable {
        fail: Arc<Mutex<bool>>,
        written: mpsc::Sender<Vec<AuditAction>>,
    }

    impl BatchTarget for Switchable {
        fn write(&mut self, events: &[AuditEvent]) -> Result<()> {
            if *self.fail.lock().unwrap_or_else(PoisonError::into_inner) {
                return Err(Error::Audit { reason: "disk full".to_owned() });
            }
            let _ = self.written.send(events.iter().map(|event| event.action).collect());
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_target_refuses_mutations_and_keeps_reads_for_retry() {
        let fail = Arc::new(Mutex::new(true));
        let (written, batches) = mpsc::channel();
        let target = Switchable { fail: Arc::clone(&fail), written };
        let queue = AuditQueue::start("test-audit", target, 4).unwrap();
        queue.enqueue(event(AuditAction::Read)).unwrap();
        let refused = queue.record_durably(event(AuditAction::Revoke)).await;
        assert!(matches!(refused, Err(Error::Audit { .. })));
        // Failing now: reads are refused rather than queued without the sink.
        assert!(matches!(queue.enqueue(event(AuditAction::Read)), Err(Error::AuditBackpressure)));
        *fail.lock().unwrap() = false;
        // The retried read is written; the refused revoke never is.
        let first = batches.recv().unwrap();
        assert_eq!(first, vec![AuditAction::Read]);
        queue.flush().await.unwrap();
        queue.enqueue(event(AuditAction::Read)).unwrap();
        queue.flush().await.unwrap();
        let rest: Vec<AuditAction> = batches.try_iter().flatten().collect();
        assert!(!rest.contains(&AuditAction::Revoke));
    }

    #[test]
    fn repeated_reads_are_counted_and_mutations_keep_their_place() {
        let read = |credential: &str| Pending {
            event: Some(AuditEvent {
                credential: Arc::from(credential),
                ..event(AuditAction::Read)
            }),
            done: None,
        };
        let (done, _outcome) = oneshot::channel();
        let revoke = Pending { event: Some(event(AuditAction::Revoke)), done: Some(done) };
        let batch = vec![read("a"), read("b"), read("a"), read("a"), revoke, read("a")];
        let events = coalesce(&batch);
        let shape: Vec<(AuditAction, &str, u64)> =
            events.iter().map(|event| (event.action, &*event.credential, event.count)).collect();
        assert_eq!(
            shape,
            [
                (AuditAction::Read, "a", 3),
                (AuditAction::Read, "b", 1),
                (AuditAction::Revoke, "c", 1),
                (AuditAction::Read, "a", 1)
            ]
        );
        assert!(events[0].until.is_some());
    }

    /// A target that panics, as a bug in a sink would.
    struct Panicking;

    impl BatchTarget for Panicking {
        fn write(&mut self, _events: &[AuditEvent]) -> Result<()> {
            panic!("a bug in the sink");
        }
    }

    #[tokio::test]
    async fn a_writer_that_dies_fails_every_waiter_and_refuses_new_events() {
        let queue = AuditQueue::start("test-audit", Panicking, 4).unwrap();
        assert!(matches!(
            queue.record_durably(event(AuditAction::Revoke)).await,
            Err(Error::Audit { .. })
        ));
        // The thread is gone: nothing waits forever, nothing is queued for nobody.
        assert!(matches!(
            queue.record_durably(event(AuditAction::Revoke)).await,
            Err(Error::Audit { .. })
        ));
        assert!(queue.enqueue(event(AuditAction::Read)).is_err());
    }

    /// A target that blocks until released, so the queue can be filled deterministically.
    struct Gated {
        gate: mpsc::Receiver<()>,
    }

    impl BatchTarget for Gated {
        fn write(&mut self, _events: &[AuditEvent]) -> Result<()> {
            let _ = self.gate.recv();
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_reads() {
        let (release, gate) = mpsc::channel();
        let queue = AuditQueue::start("test-audit", Gated { gate }, 2).unwrap();
        let mut refused = false;
        for _ in 0..8 {
            if queue.enqueue(event(AuditAction::Read)).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "a bounded queue must refuse once full");
        for _ in 0..16 {
            let _ = release.send(());
        }
        queue.flush().await.unwrap();
        queue.enqueue(event(AuditAction::Read)).unwrap();
        drop(release);
    }
}
