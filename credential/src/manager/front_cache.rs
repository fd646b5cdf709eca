//! Each thread's own copy of the cache entries it read lately, together with the principal whose
//! read it was allowed for: a hit reads and writes only this thread's memory (the served value's
//! reference count aside), so threads reading at once do not slow each other down.
//!
//! Coherence: the shared cache stamps every entry it hands out with the *epoch* of its id's shard
//! (one of 256), read under the shared cache's lock. Every change that removes entries there
//! moves the epochs that cover them (one id: its shard's; everything: all of them), under the
//! same lock; a copy is served only while its shard's epoch is still the one it was stamped with,
//! so a change the manager has seen reaches the copies at once. Time to live, the feed's
//! freshness and grant expiry are checked on every hit as in the shared cache.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use chrono::{DateTime, Utc};

use super::access::Principal;
use super::audit_batch::ReadTally;
use super::cache::Cached;
use super::clock;
use hashbrown::HashTable;

/// Shards of ids with their own epoch: a change to one id invalidates the copies of about one
/// id in this many.
const EPOCH_SHARDS: usize = 256;

/// The versions of the shared cache's contents that copies are checked against, and the
/// threads' copies of it (so they can all be dropped with the cache).
pub(crate) struct Epochs {
    shards: Box<[AtomicU64]>,
    fronts: Mutex<Vec<Weak<Mutex<Front>>>>,
}

/// The epoch an entry was handed out under, and the shard of ids it is the epoch of.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    epoch: u64,
    shard: u16,
}

fn shard_of(key: &str) -> u16 {
    // Any fixed hash will do: it only spreads ids over the shards.
    let hash = foldhash::fast::FixedState::default().hash_one(key);
    u16::try_from(hash % EPOCH_SHARDS as u64).unwrap_or_default()
}

impl Epochs {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            shards: (0..EPOCH_SHARDS).map(|_| AtomicU64::new(0)).collect(),
            fronts: Mutex::default(),
        })
    }

    /// Drops every thread's copies now (the cache is going away): decrypted values must not
    /// outlive it in threads that do not read again.
    pub(crate) fn forget_copies(&self) {
        let fronts =
            std::mem::take(&mut *self.fronts.lock().unwrap_or_else(PoisonError::into_inner));
        for front in fronts.iter().filter_map(Weak::upgrade) {
            let mut front = front.lock().unwrap_or_else(PoisonError::into_inner);
            front.copies = HashTable::new();
            front.reader = None;
        }
    }

    /// The current stamp for `key` (the caller holds the shared cache's lock).
    pub(crate) fn stamp(&self, key: &str) -> Stamp {
        let shard = shard_of(key);
        Stamp { epoch: self.epoch(shard), shard }
    }

    fn epoch(&self, shard: u16) -> u64 {
        self.shards.get(usize::from(shard)).map_or(0, |epoch| epoch.load(Ordering::Acquire))
    }

    /// `key` changed: its copies, and those of its shard, are no longer served.
    pub(crate) fn changed(&self, key: &str) {
        if let Some(epoch) = self.shards.get(usize::from(shard_of(key))) {
            epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Everything changed: every shard moves (rare, so a hit checks one epoch, not two).
    pub(crate) fn changed_all(&self) {
        for epoch in &*self.shards {
            epoch.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Who a copy may be served to without asking the policy again, besides the principal it was
/// made for.
#[derive(Clone, Copy)]
pub(crate) enum Allowed {
    /// Anyone: the manager has no access policy.
    Anyone,
    /// The principal it was made for alone, until the decision may change.
    Reader { until: Option<DateTime<Utc>> },
}

impl Allowed {
    /// When the decision may change.
    fn until(self) -> Option<DateTime<Utc>> {
        match self {
            Self::Anyone => None,
            Self::Reader { until } => until,
        }
    }
}

/// The longest id a copy keeps in itself.
const INLINE_ID: usize = 30;

/// A copy's id: kept in the copy itself when it is short (most are), so that finding a copy reads
/// no other memory, and compared as a whole.
#[derive(PartialEq, Eq)]
enum CopyId {
    Inline { len: u8, bytes: [u8; INLINE_ID] },
    Long(Box<[u8]>),
}

impl CopyId {
    fn new(id: &str) -> Self {
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= INLINE_ID => {
                let mut bytes = [0; INLINE_ID];
                bytes[..id.len()].copy_from_slice(id.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Long(id.as_bytes().into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Long(bytes) => bytes,
        }
    }
}

/// A thread's copy of one entry: its id and what a hit checks, kept together and small so that a
/// thread's copies of many ids take few CPU cache lines, and the shared entry.
struct Kept {
    id: CopyId,
    /// The epoch of the id's shard when the entry was handed out.
    epoch: u64,
    /// Unix nanoseconds from which the copy is not served: when the entry goes stale, the
    /// decision may change, the credential expires or its refresh falls due, whichever is first
    /// (the shared path then decides what to do).
    served_until: i64,
    /// The principal the copy was made for (this thread's shared copy of its name): it is served
    /// to them, and their reads are the ones `tally` counts when the sink keeps tallies.
    reader: Arc<str>,
    tally: Option<Arc<ReadTally>>,
    cached: Cached,
    shard: u16,
    /// Served to any principal (the manager has no access policy).
    anyone: bool,
}

/// One thread's copies of one cache's entries. Only its thread reads or writes it, except when the
/// cache drops them all; its lock is never contended otherwise.
#[derive(Default)]
struct Front {
    copies: HashTable<Kept>,
    hasher: foldhash::fast::RandomState,
    /// The principal name the latest copy was made for: copies for one principal share it, so
    /// comparing names on a hit is most often comparing pointers.
    reader: Option<Arc<str>>,
}

impl Front {
    fn hash(&self, id: &[u8]) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The copy of `id`.
    fn copy(&self, id: &str) -> Option<&Kept> {
        let id = id.as_bytes();
        self.copies.find(self.hash(id), |kept| kept.id.as_bytes() == id)
    }

    /// Keeps `kept` in place of any copy of its id.
    fn keep(&mut self, kept: Kept) {
        let hash = self.hash(kept.id.as_bytes());
        let hasher = &self.hasher;
        match self.copies.entry(
            hash,
            |old| old.id == kept.id,
            |old| hasher.hash_one(old.id.as_bytes()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut old) => *old.get_mut() = kept,
            hashbrown::hash_table::Entry::Vacant(free) => {
                free.insert(kept);
            }
        }
    }

    /// `name`, as the copies already share it if they do.
    fn interned(&mut self, name: &Arc<str>) -> Arc<str> {
        match &self.reader {
            Some(reader) if **reader == **name => Arc::clone(reader),
            _ => {
                self.reader = Some(Arc::clone(name));
                Arc::clone(name)
            }
        }
    }
}

/// A thread's copies of one cache, known by the cache's epochs.
type Copies = (Weak<Epochs>, Arc<Mutex<Front>>);

thread_local! {
    /// This thread's copies, per cache.
    static FRONTS: RefCell<Vec<Copies>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` on this thread's copies for the cache with `epochs`, forgetting on the way the
/// copies of caches that no longer exist.
fn with_front<T>(epochs: &Arc<Epochs>, work: impl FnOnce(&mut Front) -> T) -> T {
    FRONTS.with(|fronts| {
        let mut fronts = fronts.borrow_mut();
        let position = fronts.iter().position(|(of, _)| of.as_ptr() == Arc::as_ptr(epochs));
        let index = match position {
            Some(index) => index,
            None => {
                fronts.retain(|(of, _)| of.strong_count() > 0);
                let front = Arc::new(Mutex::new(Front::default()));
                let mut registered = epochs.fronts.lock().unwrap_or_else(PoisonError::into_inner);
                registered.retain(|front| front.strong_count() > 0);
                registered.push(Arc::downgrade(&front));
                drop(registered);
                fronts.push((Arc::downgrade(epochs), front));
                fronts.len() - 1
            }
        };
        let mut front = fronts[index].1.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut front)
    })
}

/// A hit on a thread's copy.
pub(crate) enum Hit<T> {
    /// Counted on the copy's tally, so nothing else is recorded: what the reader takes of the
    /// copy, and its kind and version for telemetry.
    Counted { taken: T, kind: &'static str, version: u64 },
    /// Not counted: the read is audited as any other.
    Uncounted(Cached),
}

/// This thread's copy of `key`, if it is current, fresh at `now` and may be served to
/// `principal`. The read is counted on the copy's tally when `counts` says the copy will be
/// served as a read and the tally counts `principal`'s reads; then only `take` of the copy is
/// handed out.
///
/// # Errors
/// The tally refused the read: the audit sink is failing.
pub(crate) fn get<T>(
    epochs: &Arc<Epochs>,
    key: &str,
    principal: &Principal,
    now: i64,
    counts: impl FnOnce(&Cached) -> bool,
    take: impl FnOnce(&Cached) -> T,
) -> Option<crate::Result<Hit<T>>> {
    with_front(epochs, |front| {
        let kept = front.copy(key)?;
        let name = principal.shared_name();
        let reads = Arc::ptr_eq(&kept.reader, name) || *kept.reader == **name;
        let fresh = kept.epoch == epochs.epoch(kept.shard) && now < kept.served_until;
        if !(fresh && (reads || kept.anyone)) {
            return None;
        }
        let hit = match &kept.tally {
            Some(tally) if reads && counts(&kept.cached) => {
                if let Err(refused) = tally.count(now) {
                    return Some(Err(refused));
                }
                let cached = &kept.cached;
                Hit::Counted {
                    taken: take(cached),
                    kind: cached.credential.kind,
                    version: cached.version,
                }
            }
            _ => Hit::Uncounted(kept.cached.clone()),
        };
        Some(Ok(hit))
    })
}

/// Keeps a copy of `cached`, handed out by the shared cache under `stamp`, for `reader` and
/// whoever else `allowed` says, with `reader`'s reads counted on `tally`. A thread keeps at most
/// `capacity` copies per cache; when full it starts over.
#[allow(clippy::too_many_arguments)]
pub(crate) fn put(
    epochs: &Arc<Epochs>,
    capacity: usize,
    key: &str,
    cached: &Cached,
    fresh_until: DateTime<Utc>,
    stamp: Stamp,
    reader: &Principal,
    allowed: Allowed,
    tally: Option<Arc<ReadTally>>,
) {
    with_front(epochs, |front| {
        if front.copies.len() >= capacity && front.copy(key).is_none() {
            front.copies.clear();
        }
        let served_until = [Some(fresh_until), allowed.until(), cached.expires_at, cached.due_at]
            .into_iter()
            .flatten()
            .map(clock::nanos)
            .min()
            .unwrap_or(i64::MAX);
        let reader = front.interned(reader.shared_name());
        let kept = Kept {
            id: CopyId::new(key),
            epoch: stamp.epoch,
            served_until,
            reader,
            tally,
            cached: cached.clone(),
            shard: stamp.shard,
            anyone: matches!(allowed, Allowed::Anyone),
        };
        front.keep(kept);
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::manager::audit::{AuditAction, AuditEvent, AuditOutcome};
    use crate::manager::audit_batch::{AuditQueue, BatchTarget};

    fn cached(version: u64) -> Cached {
        Cached::for_tests(version)
    }

    /// The version of `key` this thread's copy serves `principal` at `now`, uncounted.
    fn served(epochs: &Arc<Epochs>, key: &str, principal: &Principal, now: i64) -> Option<u64> {
        match get(epochs, key, principal, now, |_| false, |_| ())?.ok()? {
            Hit::Uncounted(cached) => Some(cached.version),
            Hit::Counted { .. } => None,
        }
    }

    #[test]
    fn a_copy_is_served_until_its_epochs_move_its_time_passes_or_another_principal_asks() {
        let epochs = Epochs::new();
        let now = Utc::now();
        let later = now + chrono::Duration::from_std(Duration::from_secs(60)).unwrap();
        let alice = Principal::named("alice");
        let allowed = Allowed::Reader { until: Some(later) };
        let stamp = epochs.stamp("a");
        put(&epochs, 10, "a", &cached(1), later, stamp, &alice, allowed, None);
        assert_eq!(served(&epochs, "a", &alice, clock::nanos(now)), Some(1));
        assert!(served(&epochs, "a", &Principal::named("bob"), clock::nanos(now)).is_none());
        assert!(
            served(&epochs, "a", &alice, clock::nanos(later)).is_none(),
            "stale, and the grant ran out"
        );
        epochs.changed("a");
        assert!(served(&epochs, "a", &alice, clock::nanos(now)).is_none(), "changed since");
        put(&epochs, 10, "a", &cached(2), later, epochs.stamp("a"), &alice, allowed, None);
        assert_eq!(served(&epochs, "a", &alice, clock::nanos(now)), Some(2));
        epochs.changed_all();
        assert!(served(&epochs, "a", &alice, clock::nanos(now)).is_none(), "everything changed");
        // Another thread has copies of its own.
        put(&epochs, 10, "a", &cached(3), later, epochs.stamp("a"), &alice, Allowed::Anyone, None);
        std::thread::scope(|scope| {
            scope.spawn(|| assert!(served(&epochs, "a", &alice, clock::nanos(now)).is_none()));
        });
        assert_eq!(served(&epochs, "a", &Principal::named("bob"), clock::nanos(now)), Some(3));
    }

    /// A trail that keeps nothing.
    struct Discard;

    impl BatchTarget for Discard {
        fn write(&mut self, _: &[AuditEvent]) -> crate::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_hit_is_counted_only_for_the_principal_the_copy_counts_and_only_as_told() {
        let queue = AuditQueue::start("test-copies", Discard, 16).unwrap();
        let read = AuditEvent {
            time: Utc::now(),
            principal: Arc::from("alice"),
            credential: Arc::from("a"),
            environment: Arc::from("e"),
            action: AuditAction::Read,
            outcome: AuditOutcome::Success,
            version: Some(1),
            error: None,
            reason: None,
            count: 1,
            until: None,
        };
        let epochs = Epochs::new();
        let later = Utc::now() + chrono::Duration::seconds(60);
        let now = clock::nanos(Utc::now());
        let (alice, bob) = (Principal::named("alice"), Principal::named("bob"));
        // No policy: served to anyone, counted for the reader it was made for.
        let tally = Some(queue.tally_for(&read));
        put(&epochs, 10, "a", &cached(1), later, epochs.stamp("a"), &alice, Allowed::Anyone, tally);
        let hit = |principal: &Principal, counts: bool| {
            get(&epochs, "a", principal, now, |_| counts, |cached| cached.version)
                .map(|hit| hit.unwrap())
        };
        assert!(matches!(hit(&alice, true), Some(Hit::Counted { taken: 1, version: 1, .. })));
        assert!(matches!(hit(&bob, true), Some(Hit::Uncounted(_))), "served, not counted");
        assert!(matches!(hit(&alice, false), Some(Hit::Uncounted(_))), "not a counted read");

        // With a policy: served to the reader alone.
        let (allowed, tally) = (Allowed::Reader { until: None }, Some(queue.tally_for(&read)));
        put(&epochs, 10, "a", &cached(2), later, epochs.stamp("a"), &alice, allowed, tally);
        assert!(matches!(hit(&alice, true), Some(Hit::Counted { taken: 2, .. })));
        assert!(hit(&bob, true).is_none());
    }

    #[test]
    fn long_and_short_ids_find_their_own_copies() {
        let epochs = Epochs::new();
        let later = Utc::now() + chrono::Duration::seconds(60);
        let now = clock::nanos(Utc::now());
        let long = "a".repeat(INLINE_ID + 5);
        let ids = [&long[..INLINE_ID], &long[..INLINE_ID + 1], long.as_str(), "a", ""];
        let anyone = Principal::named("anyone");
        for (version, id) in (1..).zip(ids) {
            put(
                &epochs,
                10,
                id,
                &cached(version),
                later,
                epochs.stamp(id),
                &anyone,
                Allowed::Anyone,
                None,
            );
        }
        for (version, id) in (1..).zip(ids) {
            assert_eq!(served(&epochs, id, &anyone, now), Some(version), "{id}");
        }
        assert_eq!(served(&epochs, "aa", &anyone, now), None);
        put(
            &epochs,
            10,
            &long,
            &cached(9),
            later,
            epochs.stamp(&long),
            &anyone,
            Allowed::Anyone,
            None,
        );
        assert_eq!(served(&epochs, &long, &anyone, now), Some(9), "replaced");
        with_front(&epochs, |front| assert_eq!(front.copies.len(), ids.len()));
    }

    #[test]
    fn copies_are_bounded_and_forgotten_with_their_cache() {
        let epochs = Epochs::new();
        let later = Utc::now() + chrono::Duration::seconds(60);
        let anyone = Principal::named("anyone");
        for n in 0..25 {
            let key = format!("k{n}");
            put(
                &epochs,
                10,
                &key,
                &cached(n),
                later,
                epochs.stamp(&key),
                &anyone,
                Allowed::Anyone,
                None,
            );
        }
        with_front(&epochs, |front| assert!(front.copies.len() <= 10));
        drop(epochs);
        let other = Epochs::new();
        with_front(&other, |_| ());
        FRONTS.with(|fronts| assert_eq!(fronts.borrow().len(), 1, "the dropped cache's are gone"));
    }

    #[test]
    fn a_cache_going_away_drops_the_copies_of_threads_that_never_read_again() {
        let epochs = Epochs::new();
        let (kept, anyone) = (cached(1), Principal::named("anyone"));
        let later = Utc::now() + chrono::Duration::seconds(60);
        std::thread::scope(|scope| {
            let (made, wait) = std::sync::mpsc::channel();
            let (finish, finished) = std::sync::mpsc::channel::<()>();
            let (epochs, kept, anyone) = (&epochs, &kept, &anyone);
            scope.spawn(move || {
                put(epochs, 10, "a", kept, later, epochs.stamp("a"), anyone, Allowed::Anyone, None);
                made.send(()).unwrap();
                // The thread lives on without reading again.
                let _ = finished.recv();
            });
            wait.recv().unwrap();
            assert_eq!(kept.holders(), 2, "the thread's copy");
            epochs.forget_copies();
            assert_eq!(kept.holders(), 1, "dropped with the cache");
            finish.send(()).unwrap();
        });
    }
}
