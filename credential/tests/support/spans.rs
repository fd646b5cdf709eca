//! A tracing subscriber that keeps, as text, everything every span and event said while a test
//! captures: installed for the whole test binary (the spans of a multi-threaded runtime's tasks
//! reach no thread's own subscriber), it records nothing, and costs the other tests nothing, while
//! no test holds a [`Capture`].
#![allow(dead_code)]

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Everything every span and event said, as text.
#[derive(Default)]
pub(crate) struct Spans {
    pub(crate) text: Mutex<String>,
    next: AtomicU64,
    /// For the binary's global subscriber: how many tests capture now (it records only while
    /// some do). A subscriber a test sets for its own thread records everything.
    capturing: Option<AtomicUsize>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Subscriber for Spans {
    /// Asked again at every span and event, so that what is enabled follows the captures.
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        self.capturing.as_ref().is_none_or(|capturing| capturing.load(Ordering::Relaxed) > 0)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut text = self.text.lock().unwrap();
        let _ = write!(text, "\nspan {}", span.metadata().name());
        span.record(&mut Fields(&mut text));
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut text = self.text.lock().unwrap();
        text.push_str("\nrecord");
        values.record(&mut Fields(&mut text));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = self.text.lock().unwrap();
        let _ = write!(text, "\nevent {}", event.metadata().level());
        event.record(&mut Fields(&mut text));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// The global subscriber, recording until the capture is dropped; what it recorded (other tests'
/// spans among it) is in its `text`.
pub(crate) struct Capture(&'static Spans);

impl std::ops::Deref for Capture {
    type Target = Spans;

    fn deref(&self) -> &Spans {
        self.0
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(capturing) = &self.0.capturing {
            capturing.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Starts recording every span and event of the test binary, until the capture is dropped.
pub(crate) fn capture() -> Capture {
    let spans = global();
    if let Some(capturing) = &spans.capturing {
        capturing.fetch_add(1, Ordering::Relaxed);
    }
    Capture(spans)
}

/// The test binary's global subscriber, installed by the first call.
fn global() -> &'static Spans {
    static SPANS: std::sync::OnceLock<std::sync::Arc<Spans>> = std::sync::OnceLock::new();
    SPANS.get_or_init(|| {
        let spans =
            std::sync::Arc::new(Spans { capturing: Some(AtomicUsize::new(0)), ..Spans::default() });
        tracing::subscriber::set_global_default(std::sync::Arc::clone(&spans)).unwrap();
        spans
    })
}
