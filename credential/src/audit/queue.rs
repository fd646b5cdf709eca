//! Group commit for durable audit sinks: read events are counted per thread and mutation events
//! queue in memory; one writer thread makes them durable in batches, so a read never waits for a
//! disk flush and a mutation waits for one.
//!
//! - A read event is counted in the tally of the reading thread's shard (the same access again
//!   only adds to its count) and the read goes on; the writer takes every tally for its next
//!   batch, at most [`LINGER`] after it took the last (at once for a mutation or a flush, or when
//!   the last batch took longer), and counts an access read on several threads as one. Tallies
//!   are sharded by thread so that threads reading at once do not wait on one lock.
//! - A mutation event is queued behind the reads counted before it and its caller waits until the
//!   batch holding it is durable; when that batch fails, the caller gets the error and the
//!   mutation does not happen.
//! - Everything is bounded: a tally holds at most as many distinct accesses as the queue's
//!   capacity; when it is full, or while the sink is failing, reads are refused
//!   ([`Error::AuditBackpressure`]) rather than served unaudited or counted without bound.
//!
//! A crash loses the read events not yet written (at most the last batch's worth, normally the
//! last few milliseconds of reads); it never loses a mutation event, because a mutation is not
//! committed before its event is durable.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hashbrown::HashTable;
use tokio::sync::oneshot;

use super::{AuditEvent, Unwritten};
use crate::util::{IdMap, Sharded};
use crate::{Error, Result};

/// Distinct accesses a thread's tally holds, and events the queue holds, before reads are refused.
pub(crate) const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// The most events written in one batch.
const MAX_BATCH: usize = 16_384;
/// How long the writer lets reads accumulate from one take to the next: repeated accesses
/// meanwhile become one event, and readers need not wake the writer while it lingers. A writer
/// whose batch took longer takes them at once; a mutation or a flush cuts it short.
const LINGER: Duration = Duration::from_millis(25);
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
    closed: bool,
    /// The writer thread has stopped (closed, or it panicked): nothing queued will ever be
    /// written.
    stopped: bool,
    /// Why the last batch failed, while the sink is failing.
    last_error: Option<Error>,
    /// Told when the writer thread has stopped.
    on_stop: Vec<oneshot::Sender<()>>,
}

/// What [`Shared::refusing`] holds.
const TAKING: u8 = 0;
const FAILING: u8 = 1;
const STOPPED: u8 = 2;

/// A read event (owned, or borrowed from a batch) as a key: two are equal when they record the
/// same access, whenever it happened.
struct Access<E: Borrow<AuditEvent> = AuditEvent>(E);

impl<E: Borrow<AuditEvent>> PartialEq for Access<E> {
    fn eq(&self, other: &Self) -> bool {
        self.0.borrow().same_access(other.0.borrow())
    }
}

impl<E: Borrow<AuditEvent>> Eq for Access<E> {}

impl<E: Borrow<AuditEvent>> Hash for Access<E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let event: &AuditEvent = self.0.borrow();
        event.credential.hash(state);
        event.principal.hash(state);
        event.action.hash(state);
        event.outcome.hash(state);
        event.version.hash(state);
    }
}

/// How often an access was counted, and the time of the latest.
struct Span {
    count: u64,
    last: DateTime<Utc>,
}

/// The reads one thread counted since the writer last took them.
#[derive(Default)]
struct Tally {
    reads: IdMap<Span, Access>,
}

impl Tally {
    /// Counts `event`; refused when it is a new access and the tally is full.
    fn count(&mut self, event: AuditEvent, capacity: usize) -> Result<()> {
        let full = self.reads.len() >= capacity;
        let (time, until, count) = (event.time, event.until, event.count);
        match self.reads.entry(Access(event)) {
            std::collections::hash_map::Entry::Occupied(mut counted) => {
                let span = counted.get_mut();
                span.count = span.count.saturating_add(count);
                span.last = span.last.max(until.unwrap_or(time));
            }
            std::collections::hash_map::Entry::Vacant(_) if full => {
                return Err(Error::AuditBackpressure);
            }
            std::collections::hash_map::Entry::Vacant(new) => {
                new.insert(Span { count, last: until.unwrap_or(time) });
            }
        }
        Ok(())
    }

    /// Moves every counted access, as one event each, to `into` (keeping the tally's memory for
    /// the next reads).
    fn drain_into(&mut self, into: &mut Vec<AuditEvent>) {
        into.extend(self.reads.drain().map(|(Access(mut event), span)| {
            event.until = (span.count > 1 || event.until.is_some()).then_some(span.last);
            event.count = span.count;
            event
        }));
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
    tallies: Sharded<Mutex<Tally>>,
    /// [`TAKING`], [`FAILING`] or [`STOPPED`]: read without the state's lock on every read.
    refusing: AtomicU8,
    /// The writer waits for work: a read counted now must wake it.
    idle: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves every thread's counted reads to the end of the queue, oldest first; the state's
    /// lock is held, so nothing queued later can overtake them.
    fn take_tallies(&self, state: &mut State) {
        let mut reads = Vec::new();
        for tally in self.tallies.iter() {
            tally.lock().unwrap_or_else(PoisonError::into_inner).drain_into(&mut reads);
        }
        // Oldest first, and one event for each access however many threads counted it.
        reads.sort_by_key(|event| event.time);
        let mut counting = Counting::with_capacity(reads.len());
        for read in reads {
            counting.read(read, |read| read);
        }
        let reads = counting.events.into_iter();
        state.pending.extend(reads.map(|event| Pending { event: Some(event), done: None }));
    }

    /// `Ok` while reads are taken.
    fn taking(&self) -> Result<()> {
        match self.refusing.load(Ordering::Acquire) {
            TAKING => Ok(()),
            STOPPED => Err(stopped()),
            _ => Err(Error::AuditBackpressure),
        }
    }

    /// Wakes the writer if it waits for work. Pairs with the writer's store before it looks for
    /// counted reads a last time: either it sees this read, or this sees it idle.
    fn wake_if_idle(&self) {
        if self.idle.load(Ordering::SeqCst) {
            let _state = self.state();
            if self.idle.swap(false, Ordering::SeqCst) {
                self.wake.notify_one();
            }
        }
    }

    fn set_failing(&self, state: &mut State, failing: bool) {
        state.failing = failing;
        if !state.stopped {
            self.refusing.store(if failing { FAILING } else { TAKING }, Ordering::Release);
        }
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

fn stopped() -> Error {
    Error::audit("the audit writer stopped")
}

impl AuditQueue {
    /// Starts the writer thread for `target`.
    pub(crate) fn start(name: &str, target: impl BatchTarget, capacity: usize) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            capacity,
            tallies: Sharded::new(Mutex::default),
            refusing: AtomicU8::new(TAKING),
            idle: AtomicBool::new(false),
        });
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run_writer(&writer, target))
            .map_err(|source| Error::io("starting the audit writer", source))?;
        Ok(Self { shared })
    }

    /// Counts a read event; refused when this thread's tally is full or the sink is failing or
    /// stopped.
    pub(crate) fn enqueue(&self, event: AuditEvent) -> Result<()> {
        {
            let mut tally =
                self.shared.tallies.local().lock().unwrap_or_else(PoisonError::into_inner);
            // Checked under the tally's lock: the writer marks the queue stopped before it takes
            // the tallies a last time, so a read is either refused or taken, never left behind.
            self.shared.taking()?;
            tally.count(event, self.shared.capacity)?;
        }
        self.shared.wake_if_idle();
        Ok(())
    }

    /// Queues a mutation event and waits until it is durable.
    pub(crate) async fn record_durably(&self, event: AuditEvent) -> Result<()> {
        self.wait_for(Some(event)).await
    }

    /// Waits until everything queued or counted so far is durable.
    pub(crate) async fn flush(&self) -> Result<()> {
        self.wait_for(None).await
    }

    /// Writes what is queued and counted, then stops the writer: no event is taken afterwards.
    /// Returns the read events that could not be written, with the reason.
    pub(crate) async fn close(&self) -> std::result::Result<(), Unwritten> {
        let stopping = {
            let mut state = self.shared.state();
            state.closed = true;
            let (told, stopping) = oneshot::channel();
            // A writer already stopped is not waited for: `told` is dropped here.
            if !state.stopped {
                state.on_stop.push(told);
            }
            stopping
        };
        self.shared.wake.notify_one();
        // An error here is the writer stopped before (`told` was dropped): nothing to wait for.
        let _ = stopping.await;
        let mut state = self.shared.state();
        let events: Vec<AuditEvent> =
            state.pending.drain(..).filter_map(|pending| pending.event).collect();
        if events.is_empty() {
            return Ok(());
        }
        let error = state.last_error.clone().unwrap_or_else(stopped);
        Err(Unwritten::new(events, error))
    }

    async fn wait_for(&self, event: Option<AuditEvent>) -> Result<()> {
        let (done, outcome) = oneshot::channel();
        {
            let mut state = self.shared.state();
            if state.stopped {
                // After a close, what could not be written was handed back: nothing is owed.
                return if state.closed && event.is_none() { Ok(()) } else { Err(stopped()) };
            }
            // A mutation is refused at once while the sink fails; a flush waits for the retry.
            if state.failing && event.is_some() {
                return Err(Error::audit("the audit sink is failing"));
            }
            // The reads counted before this event go before it.
            self.shared.take_tallies(&mut state);
            state.pending.push_back(Pending { event, done: Some(done) });
            self.shared.idle.store(false, Ordering::SeqCst);
            drop(state);
            self.shared.wake.notify_one();
        }
        outcome.await.map_err(|_| stopped())?
    }
}

impl Drop for AuditQueue {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_one();
    }
}

/// The events of a batch, in order, with repeated reads counted rather than repeated: within
/// each stretch between mutations, a read of the same access as an earlier one (same principal,
/// credential, version and outcome) adds its count to that one's. Mutations stay exactly where
/// and what they are.
fn coalesce(batch: &[Pending]) -> Vec<AuditEvent> {
    let mut counting = Counting::with_capacity(batch.len());
    for pending in batch {
        let Some(event) = &pending.event else { continue };
        if pending.done.is_some() {
            counting.mutation(event.clone());
        } else {
            counting.read(event, AuditEvent::clone);
        }
    }
    counting.events
}

/// Events in order, each read counted on an earlier read of the same access since the last
/// mutation (its count added, its time the latest `until`) instead of being kept again.
struct Counting {
    events: Vec<AuditEvent>,
    /// Where in `events` each read of the current stretch is.
    reads: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

impl Counting {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            events: Vec::with_capacity(capacity),
            reads: HashTable::with_capacity(capacity),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Counts `read` on the earlier read of its access, or keeps it (as `own` makes it).
    fn read<E: Borrow<AuditEvent>>(&mut self, read: E, own: impl FnOnce(E) -> AuditEvent) {
        let Self { events, reads, hasher } = self;
        let hash = hasher.hash_one(Access(read.borrow()));
        match reads.find(hash, |&at| events[at].same_access(read.borrow())) {
            Some(&at) => {
                let (earlier, read) = (&mut events[at], read.borrow());
                earlier.count = earlier.count.saturating_add(read.count);
                let last = read.until.unwrap_or(read.time);
                earlier.until = Some(earlier.until.unwrap_or(earlier.time).max(last));
            }
            None => {
                let at = events.len();
                events.push(own(read));
                reads.insert_unique(hash, at, |&at| hasher.hash_one(Access(&events[at])));
            }
        }
    }

    /// Keeps `mutation`: no read after it is counted on one before it.
    fn mutation(&mut self, mutation: AuditEvent) {
        self.events.push(mutation);
        self.reads.clear();
    }
}

/// Marks the queue stopped when the writer thread ends for any reason, a panic included, so that
/// no new event is taken; drops the waiting mutations (they hear of it, and do not happen) and
/// keeps the reads that were served but not written, for [`AuditQueue::close`] to hand back.
struct StopOnExit<'a>(&'a Shared);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.stopped = true;
        self.0.refusing.store(STOPPED, Ordering::Release);
        self.0.take_tallies(&mut state);
        state.pending.retain(|pending| pending.done.is_none());
        for told in state.on_stop.drain(..) {
            let _ = told.send(());
        }
    }
}

/// The next batch: what is queued, then what the threads counted; waits while there is nothing,
/// and first lingers until `until` (if given). `None` once the queue is closed and empty.
fn next_batch(shared: &Shared, until: Option<Instant>) -> Option<Vec<Pending>> {
    let mut state = shared.state();
    if let Some(until) = until {
        while state.pending.is_empty() && !state.closed {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = shared.wake.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
    loop {
        if state.pending.is_empty() {
            shared.take_tallies(&mut state);
        }
        if !state.pending.is_empty() {
            let take = state.pending.len().min(MAX_BATCH);
            return Some(state.pending.drain(..take).collect());
        }
        if state.closed {
            return None;
        }
        // Idle from here; a read counted after this store wakes the writer, and one counted
        // before it is found by the look below.
        shared.idle.store(true, Ordering::SeqCst);
        shared.take_tallies(&mut state);
        if !state.pending.is_empty() {
            shared.idle.store(false, Ordering::SeqCst);
            continue;
        }
        state = shared.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
    }
}

fn run_writer(shared: &Shared, mut target: impl BatchTarget) {
    let _stop_on_exit = StopOnExit(shared);
    let mut backoff = FIRST_BACKOFF;
    // Reads are taken at most every `LINGER`: a writer busy longer than that takes them at once.
    let mut linger_until = None;
    while let Some(mut batch) = next_batch(shared, linger_until) {
        linger_until = Some(Instant::now() + LINGER);
        let events = coalesce(&batch);
        match target.write(&events) {
            Ok(()) => {
                let mut state = shared.state();
                shared.set_failing(&mut state, false);
                state.last_error = None;
                drop(state);
                backoff = FIRST_BACKOFF;
                for pending in batch {
                    if let Some(done) = pending.done {
                        let _ = done.send(Ok(()));
                    }
                }
            }
            Err(error) => {
                // Waiting mutations fail (they will not happen, so their events must not be
                // written later); counted reads already happened and are retried first. The sink
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
                shared.set_failing(&mut state, true);
                state.last_error = Some(error.clone());
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
                    Error::audit_caused_by(error)
                };
                for done in waiters {
                    let _ = done.send(Err(failure.clone()));
                }
                // Closing: what is left goes back to the closer rather than waiting for a retry.
                if closed {
                    return;
                }
                let state = shared.state();
                let _ = shared.wake.wait_timeout(state, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::audit::{AuditAction, AuditOutcome};

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
            revision: None,
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
                return Err(Error::audit("disk full"));
            }
            let _ = self.written.send(events.iter().map(|event| event.action).collect());
            Ok(())
        }
    }

    #[tokio::test]
    async fn closing_writes_what_is_held_then_takes_nothing_more() {
        let (written, batches) = mpsc::channel();
        let target = Switchable { fail: Arc::default(), written };
        let queue = AuditQueue::start("test-audit", target, 16).unwrap();
        queue.enqueue(event(AuditAction::Read)).unwrap();
        queue.close().await.unwrap();
        let actions: Vec<AuditAction> = batches.try_iter().flatten().collect();
        assert_eq!(actions, vec![AuditAction::Read]);
        assert!(matches!(queue.enqueue(event(AuditAction::Read)), Err(Error::Audit { .. })));
        assert!(queue.record_durably(event(AuditAction::Revoke)).await.is_err());
        // Nothing is owed after a close: a flush (a query's first step) answers at once.
        queue.flush().await.unwrap();
        queue.close().await.unwrap();
    }

    #[tokio::test]
    async fn closing_a_failing_queue_hands_back_the_reads_it_could_not_write() {
        let (written, _batches) = mpsc::channel();
        let target = Switchable { fail: Arc::new(Mutex::new(true)), written };
        let queue = AuditQueue::start("test-audit", target, 16).unwrap();
        let mut read = event(AuditAction::Read);
        read.credential = Arc::from("served/while-failing");
        queue.enqueue(read).unwrap();
        let unwritten = queue.close().await.unwrap_err();
        let ids: Vec<&str> = unwritten.events.iter().map(|event| &*event.credential).collect();
        assert_eq!(ids, ["served/while-failing"]);
        assert!(unwritten.error.to_string().contains("disk full"), "{}", unwritten.error);
        assert!(unwritten.to_string().starts_with("1 audit events could not be written"));
        assert!(matches!(Error::from(unwritten), Error::Audit { .. }));
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

    /// A target that says when it starts a batch and blocks until released, so the tally can be
    /// filled deterministically, and records every event it is given.
    struct Gated {
        entered: mpsc::Sender<()>,
        gate: mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<AuditEvent>>>,
    }

    impl Gated {
        /// The target, the writer's signal that it started a batch, and the gate that lets it
        /// go on.
        fn new() -> (Self, mpsc::Receiver<()>, mpsc::Sender<()>) {
            let (release, gate) = mpsc::channel();
            let (entered, writing) = mpsc::channel();
            (Self { entered, gate, written: Arc::default() }, writing, release)
        }
    }

    impl BatchTarget for Gated {
        fn write(&mut self, events: &[AuditEvent]) -> Result<()> {
            let _ = self.entered.send(());
            let _ = self.gate.recv();
            self.written.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(events);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_full_tally_refuses_new_accesses_but_counts_repeated_ones() {
        let (target, writing, release) = Gated::new();
        let queue = AuditQueue::start("test-audit", target, 2).unwrap();
        let read = |credential: &str| AuditEvent {
            credential: Arc::from(credential),
            ..event(AuditAction::Read)
        };
        // The writer takes the first read and blocks writing it; two more accesses fill the
        // tally; a third is refused, a repeat of a counted one is not.
        queue.enqueue(read("first")).unwrap();
        writing.recv().unwrap();
        let mut refused = None;
        for n in 0..8 {
            if queue.enqueue(read(&format!("c{n}"))).is_err() {
                refused = Some(n);
                break;
            }
        }
        assert_eq!(refused, Some(2), "a tally of two must refuse a third access");
        queue.enqueue(read("c0")).unwrap();
        for _ in 0..16 {
            let _ = release.send(());
        }
        queue.flush().await.unwrap();
        queue.enqueue(read("c7")).unwrap();
        drop(release);
    }

    /// A target that records every event it is given.
    struct Recording(Arc<Mutex<Vec<AuditEvent>>>);

    impl BatchTarget for Recording {
        fn write(&mut self, events: &[AuditEvent]) -> Result<()> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(events);
            Ok(())
        }
    }

    #[tokio::test]
    async fn reads_counted_on_many_threads_are_all_written_before_a_later_mutation() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let queue =
            AuditQueue::start("test-audit", Recording(Arc::clone(&written)), 1_000).unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let queue = &queue;
                scope.spawn(move || {
                    for n in 0..500 {
                        let credential = format!("c{}", (n + thread) % 7);
                        let read = AuditEvent {
                            credential: Arc::from(credential),
                            ..event(AuditAction::Read)
                        };
                        queue.enqueue(read).unwrap();
                    }
                });
            }
        });
        queue.record_durably(event(AuditAction::Revoke)).await.unwrap();
        let written = written.lock().unwrap();
        let (last, reads) = written.split_last().unwrap();
        assert_eq!(last.action, AuditAction::Revoke);
        assert_eq!(reads.iter().map(|read| read.count).sum::<u64>(), 2_000);
        assert!(reads.iter().all(|read| read.action == AuditAction::Read));
    }

    #[tokio::test]
    async fn an_access_counted_on_several_threads_is_written_once() {
        // More accesses than a batch holds, counted on two threads: each thread's tally alone
        // would fill most of a batch, so only counting them together before the batch is cut
        // writes each access once.
        const ACCESSES: usize = MAX_BATCH * 3 / 5;
        let (target, writing, release) = Gated::new();
        let written = Arc::clone(&target.written);
        let queue = AuditQueue::start("test-audit", target, ACCESSES + 1).unwrap();
        let read = |credential: &str| AuditEvent {
            credential: Arc::from(credential),
            ..event(AuditAction::Read)
        };
        // The writer blocks on its first batch while the threads count.
        queue.enqueue(read("first")).unwrap();
        writing.recv().unwrap();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                let queue = &queue;
                scope.spawn(move || {
                    for access in 0..ACCESSES {
                        queue.enqueue(read(&format!("c{access}"))).unwrap();
                    }
                    queue.enqueue(read("shared")).unwrap();
                    queue.enqueue(read("shared")).unwrap();
                });
            }
        });
        for _ in 0..8 {
            let _ = release.send(());
        }
        queue.flush().await.unwrap();
        drop(release);
        let written = written.lock().unwrap();
        let counted = &written[1..];
        assert_eq!(counted.len(), ACCESSES + 1, "an access was written more than once");
        assert!(
            counted
                .iter()
                .all(|event| event.count == if &*event.credential == "shared" { 4 } else { 2 })
        );
        let shared = counted.iter().find(|event| &*event.credential == "shared").unwrap();
        assert!(shared.until.is_some_and(|until| shared.time <= until));
    }
}
