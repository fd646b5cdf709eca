//! Masking what actions write: every secret value the manager served, replaced by `***` in text
//! and in streams, as is and in the encodings an action is likely to write it in.
//!
//! [`Manager::masker`](crate::Manager::masker) returns the manager's [`Masker`]. It learns each
//! secret field of every credential the manager decodes or is given (typed reads, templates,
//! reveals, refresh results, rotations) and masks it, as long as the process lives: a value
//! rotated away or revoked is still a secret. Each value is masked:
//! - as is;
//! - as base64, standard and URL-safe, with and without padding;
//! - percent-encoded (RFC 3986 components, form bodies and URL userinfo, with uppercase hex);
//! - JSON-escaped;
//! - and, for a `password` beside a `username` or `user` field or a `client_secret` beside a
//!   `client_id`, as the base64 of `user:password` that an `Authorization: Basic` header carries.
//!
//! Values shorter than [`MIN_MASKED_LEN`] bytes are left alone: they are common words and numbers,
//! and masking them would garble every line that happens to contain one. Values longer than
//! [`MAX_MASKED_LEN`] bytes are not masked either.
//!
//! ```
//! use credential::SecretString;
//! use credential::masking::Masker;
//!
//! let masker = Masker::new();
//! masker.add(&SecretString::from("s3cr3t-token"));
//! assert_eq!(masker.mask("GET /?token=s3cr3t-token"), "GET /?token=***");
//! // Its base64 too, as in a Basic auth header.
//! assert_eq!(masker.mask("Authorization: Basic czNjcjN0LXRva2Vu"), "Authorization: Basic ***");
//! ```
//!
//! # How it stays fast
//! Learning a value costs a read one short lock and a set lookup, and only when a value is
//! decrypted (a cache hit learns nothing). The automaton that finds the values is built when text
//! is next masked, over the values learned since the last full build only; a background thread
//! then folds them into one automaton, so text without a secret costs a single scan. The values
//! the masker holds are bounded ([`DEFAULT_CAPACITY`]), oldest dropped first, and wiped when it is
//! dropped.

mod async_writer;
mod buffer;
mod forms;
#[cfg(feature = "tracing-subscriber")]
mod make_writer;
mod scanner;
mod writer;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use hashbrown::HashTable;
use secrecy::{ExposeSecret, SecretString};

pub use self::async_writer::AsyncMaskingWriter;
pub use self::forms::{MAX_MASKED_LEN, MIN_MASKED_LEN};
use self::forms::{Probe, Secret};
#[cfg(feature = "tracing-subscriber")]
pub use self::make_writer::MaskingMakeWriter;
pub use self::scanner::MASK;
use self::scanner::{Scanner, mask_until};
pub use self::writer::MaskingWriter;

/// How many bytes of secret values a masker holds unless told otherwise: 4 MiB, about 100,000
/// tokens of 40 bytes. Its automaton takes about 25 times as much.
pub const DEFAULT_CAPACITY: usize = 4 << 20;

/// The field pairs masked as the base64 of `user:secret`: (secret field, user fields).
const BASIC_PAIRS: [(&str, &[&str]); 2] =
    [("password", &["username", "user"]), ("client_secret", &["client_id"])];

/// Masks every secret it learned in text an action writes; see the [module docs](self). Cheap to
/// clone: clones share what they know.
#[derive(Clone)]
pub struct Masker {
    shared: Arc<Shared>,
}

struct Shared {
    known: Mutex<Known>,
    scanner: RwLock<Arc<Scanner>>,
    /// Held while an automaton is installed: one install at a time, so none undoes another.
    installing: Mutex<()>,
    /// How many secrets were learned so far (written under `known`).
    learned: AtomicU64,
    /// A background thread is folding the recent values into one automaton.
    consolidating: AtomicBool,
}

/// The values known, oldest first, each with its learn number, and an index to find them by
/// value.
struct Known {
    order: VecDeque<(u64, Arc<Secret>)>,
    index: HashTable<Arc<Secret>>,
    hasher: foldhash::fast::RandomState,
    bytes: usize,
    capacity: usize,
    evicted: u64,
}

impl Known {
    /// Adds what `probe` borrows unless it is known: `true` if it was added, as learn number
    /// `number`. Past the capacity, the oldest values are dropped.
    fn add(&mut self, probe: Probe<'_>, number: u64) -> bool {
        if !probe.maskable() {
            return false;
        }
        let hash = self.hasher.hash_one(probe);
        if self.index.find(hash, |known| known.probe() == probe).is_some() {
            return false;
        }
        let secret = Arc::new(Secret::of(probe));
        self.bytes += secret.len();
        let hasher = &self.hasher;
        self.index.insert_unique(hash, Arc::clone(&secret), |known| hasher.hash_one(known.probe()));
        self.order.push_back((number, secret));
        while self.bytes > self.capacity {
            let Some((_, oldest)) = self.order.pop_front() else { break };
            self.bytes -= oldest.len();
            let hash = self.hasher.hash_one(oldest.probe());
            if let Ok(entry) = self.index.find_entry(hash, |known| Arc::ptr_eq(known, &oldest)) {
                entry.remove();
            }
            self.evicted += 1;
        }
        true
    }
}

/// Values being learned, under the lock of what is known.
struct Learning<'a> {
    known: MutexGuard<'a, Known>,
    evicted_before: u64,
    number: u64,
    learned: &'a AtomicU64,
}

impl Learning<'_> {
    fn add(&mut self, probe: Probe<'_>) {
        if self.known.add(probe, self.number + 1) {
            self.number += 1;
        }
    }
}

impl Drop for Learning<'_> {
    fn drop(&mut self) {
        // Published under the lock, after the values: a masker that sees the number finds them.
        self.learned.store(self.number, Ordering::Release);
        let evicted = self.known.evicted - self.evicted_before;
        if evicted > 0 {
            crate::telemetry::masker_evicted(evicted);
        }
    }
}

impl Masker {
    /// A masker that knows nothing yet, holding up to [`DEFAULT_CAPACITY`] bytes of values.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A masker holding up to `capacity` bytes of values (at least [`MAX_MASKED_LEN`]); past it,
    /// the values learned first are dropped first.
    pub fn with_capacity(capacity: usize) -> Self {
        let known = Known {
            order: VecDeque::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            bytes: 0,
            capacity: capacity.max(MAX_MASKED_LEN),
            evicted: 0,
        };
        Self {
            shared: Arc::new(Shared {
                known: Mutex::new(known),
                scanner: RwLock::new(Arc::new(Scanner::empty())),
                installing: Mutex::new(()),
                learned: AtomicU64::new(0),
                consolidating: AtomicBool::new(false),
            }),
        }
    }

    /// Masks `secret` from now on, like the values the manager serves: for secrets an engine
    /// holds from elsewhere.
    pub fn add(&self, secret: &SecretString) {
        self.learning().add(Probe::Value(secret.expose_secret().as_bytes()));
    }

    /// `text` with every secret known replaced by [`MASK`]; borrowed when there is none. Every
    /// secret learned before the call is masked.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let runs = self.scanner().runs(text.as_bytes());
        if runs.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = Vec::with_capacity(text.len());
        mask_until(&runs, text.as_bytes(), 0, text.len(), &mut out);
        // Forms are UTF-8, so runs fall on character boundaries and `out` is UTF-8.
        Cow::Owned(
            String::from_utf8(out).unwrap_or_else(|not_utf8| {
                String::from_utf8_lossy(not_utf8.as_bytes()).into_owned()
            }),
        )
    }

    /// `inner` behind a writer that masks what passes through, across write boundaries.
    pub fn writer<W: std::io::Write>(&self, inner: W) -> MaskingWriter<W> {
        MaskingWriter::new(self.clone(), inner)
    }

    /// `inner` behind an asynchronous writer that masks what passes through, such as a child
    /// process's output on its way to a log.
    pub fn async_writer<W: tokio::io::AsyncWrite>(&self, inner: W) -> AsyncMaskingWriter<W> {
        AsyncMaskingWriter::new(self.clone(), inner)
    }

    /// `inner` (a `tracing-subscriber` writer maker) behind one that masks every event.
    #[cfg(feature = "tracing-subscriber")]
    pub fn make_writer<M>(&self, inner: M) -> MaskingMakeWriter<M> {
        MaskingMakeWriter::new(self.clone(), inner)
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.known().order.len()
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Learns a credential's secret values, each with its field's name, and the Basic auth pairs
    /// they make with the text field `text_field` finds by name.
    pub(crate) fn learn_secrets<'a>(
        &self,
        secrets: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        text_field: impl Fn(&str) -> Option<&'a str>,
    ) {
        let mut learning = self.learning();
        for (name, value) in secrets {
            learning.add(Probe::Value(value));
            for (_, users) in BASIC_PAIRS.iter().filter(|(secret, _)| *secret == name) {
                if let Some(user) = users.iter().find_map(|user| text_field(user)) {
                    learning.add(Probe::BasicPair { user: user.as_bytes(), password: value });
                }
            }
        }
    }

    /// A batch of values to learn under one lock, published when it ends.
    fn learning(&self) -> Learning<'_> {
        let known = self.known();
        let number = self.shared.learned.load(Ordering::Relaxed);
        Learning { evicted_before: known.evicted, known, number, learned: &self.shared.learned }
    }

    /// The scanner covering every secret learned before the call.
    pub(crate) fn scanner(&self) -> Arc<Scanner> {
        let learned = self.shared.learned.load(Ordering::Acquire);
        let current = self.current();
        if current.generation() >= learned { current } else { self.catch_up() }
    }

    fn current(&self) -> Arc<Scanner> {
        Arc::clone(&self.shared.scanner.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Installs a scanner that adds, to the current one's base, an automaton over every value
    /// learned since that base was built; then folds them into the base in the background.
    fn catch_up(&self) -> Arc<Scanner> {
        let installing = lock(&self.shared.installing);
        let current = self.current();
        let scanner = self.with_recent(current.base_generation(), current.base().cloned());
        let scanner = match scanner {
            Some(scanner) => self.install(scanner),
            None => current,
        };
        drop(installing);
        self.consolidate_in_background();
        scanner
    }

    /// A scanner over `base` (covering the values learned up to `base_generation`) and an
    /// automaton over the values learned since; `None` if that automaton cannot be built.
    fn with_recent(
        &self,
        base_generation: u64,
        base: Option<aho_corasick::AhoCorasick>,
    ) -> Option<Scanner> {
        let (recent, generation) = {
            let known = self.known();
            let recent: Vec<_> = known
                .order
                .iter()
                .rev()
                .take_while(|(number, _)| *number > base_generation)
                .map(|(_, secret)| Arc::clone(secret))
                .collect();
            (recent, self.shared.learned.load(Ordering::Relaxed))
        };
        match Scanner::automaton(recent.iter().map(|secret| &**secret)) {
            Ok(automaton) => Some(Scanner::new(base, base_generation, automaton, generation)),
            Err(_) => {
                crate::telemetry::masker_build_failed();
                None
            }
        }
    }

    fn install(&self, scanner: Scanner) -> Arc<Scanner> {
        let scanner = Arc::new(scanner);
        let mut current = self.shared.scanner.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::clone(&scanner);
        scanner
    }

    /// Starts a thread that builds one automaton over every value known and installs it, unless
    /// one is running. Without a thread the recent automaton keeps growing, still exact.
    fn consolidate_in_background(&self) {
        if self.shared.consolidating.swap(true, Ordering::AcqRel) {
            return;
        }
        let masker = self.clone();
        let spawned = std::thread::Builder::new()
            .name("credential-masker".to_owned())
            .spawn(move || masker.consolidate());
        if spawned.is_err() {
            self.shared.consolidating.store(false, Ordering::Release);
        }
    }

    /// Folds the recent values into the base until no recent value is left, then lets the next
    /// catch-up start another thread.
    fn consolidate(&self) {
        loop {
            match self.consolidate_once() {
                Some(installed) if installed.has_recent() => continue,
                Some(_) => {}
                None => {
                    self.shared.consolidating.store(false, Ordering::Release);
                    return;
                }
            }
            self.shared.consolidating.store(false, Ordering::Release);
            // A catch-up that found this thread running left its values to it.
            if !self.current().has_recent()
                || self.shared.consolidating.swap(true, Ordering::AcqRel)
            {
                return;
            }
        }
    }

    /// Builds one automaton over every value known, outside every lock, and installs it with an
    /// automaton over the values learned meanwhile. `None` if it cannot be built.
    fn consolidate_once(&self) -> Option<Arc<Scanner>> {
        let (all, base_generation) = {
            let known = self.known();
            let all: Vec<_> = known.order.iter().map(|(_, secret)| Arc::clone(secret)).collect();
            (all, self.shared.learned.load(Ordering::Relaxed))
        };
        let base = Scanner::automaton(all.iter().map(|secret| &**secret));
        drop(all);
        let Ok(base) = base else {
            crate::telemetry::masker_build_failed();
            return None;
        };
        let _installing = lock(&self.shared.installing);
        self.with_recent(base_generation, base).map(|scanner| self.install(scanner))
    }

    fn known(&self) -> MutexGuard<'_, Known> {
        lock(&self.shared.known)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for Masker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known = self.known();
        f.debug_struct("Masker")
            .field("values", &known.order.len())
            .field("bytes", &known.bytes)
            .field("capacity", &known.capacity)
            .field("evicted", &known.evicted)
            .finish()
    }
}

#[cfg(test)]
impl Masker {
    /// Waits for the background consolidation, if one runs.
    pub(crate) fn settle(&self) {
        while self.shared.consolidating.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }

    /// How many automata a scan of text runs.
    pub(crate) fn scans(&self) -> usize {
        let scanner = self.scanner();
        usize::from(scanner.base().is_some()) + usize::from(scanner.has_recent())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    fn secret(value: &str) -> SecretString {
        SecretString::from(value)
    }

    #[test]
    fn every_value_added_before_a_mask_is_masked_and_then_one_scan_finds_them_all() {
        let masker = Masker::new();
        assert_eq!(masker.mask("nothing known yet"), "nothing known yet");
        for round in 0..300 {
            let value = format!("token-{round:04}-a7f3");
            masker.add(&secret(&value));
            // Masked at once, whatever the background thread is doing.
            assert_eq!(masker.mask(&format!("[{value}]")), "[***]");
        }
        masker.settle();
        assert_eq!(masker.scans(), 1);
        assert_eq!(masker.mask("token-0000-a7f3 token-0299-a7f3"), "*** ***");
        assert!(matches!(masker.mask("no secret here"), Cow::Borrowed(_)));
        assert_eq!(masker.len(), 300);
    }

    #[test]
    fn values_added_on_many_threads_are_each_masked_by_the_thread_that_added_it() {
        let masker = Masker::new();
        let barrier = Barrier::new(4);
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let (masker, barrier) = (&masker, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    for round in 0..100 {
                        let value = format!("t{thread}-r{round:03}-secret");
                        masker.add(&secret(&value));
                        assert_eq!(masker.mask(&value), "***");
                    }
                });
            }
        });
        masker.settle();
        assert_eq!(masker.len(), 400);
    }

    #[test]
    fn past_its_capacity_the_oldest_values_are_dropped_first() {
        let masker = Masker::with_capacity(0);
        let big = |fill: char| "x".repeat(MAX_MASKED_LEN / 2 - 2) + &fill.to_string().repeat(2);
        masker.add(&secret(&big('a')));
        masker.add(&secret(&big('b')));
        masker.add(&secret(&big('c')));
        assert_eq!(masker.len(), 2);
        masker.mask("");
        masker.settle();
        assert_eq!(masker.mask(&big('a')), big('a'));
        assert_eq!(masker.mask(&big('c')), "***");
        let debug = format!("{masker:?}");
        assert!(debug.contains("evicted: 1"), "{debug}");
    }

    #[test]
    fn a_credential_teaches_its_secrets_and_its_basic_auth_pair() {
        let masker = Masker::new();
        let text_field = |name: &str| (name == "username").then_some("octocat");
        masker.learn_secrets([("password", &b"hunter2-pw"[..]), ("token", b"tok")], text_field);
        assert_eq!(masker.len(), 2);
        // base64("octocat:hunter2-pw")
        assert_eq!(masker.mask("Basic b2N0b2NhdDpodW50ZXIyLXB3"), "Basic ***");
        assert_eq!(masker.mask("pw=hunter2-pw"), "pw=***");
    }

    #[test]
    fn its_debug_output_shows_counts_and_no_value() {
        let masker = Masker::new();
        masker.add(&secret("CANARY-masker-debug"));
        let debug = format!("{masker:?}");
        assert!(!debug.contains("CANARY"), "{debug}");
        assert!(debug.contains("values: 1"), "{debug}");
    }
}
