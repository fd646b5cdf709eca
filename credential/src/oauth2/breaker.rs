//! A circuit breaker per token endpoint: stops hammering a provider that is down.
//!
//! Closed: requests go through; each transient failure counts, any answer from the provider
//! resets the count. After `failures` in a row it opens: requests are refused at once for
//! `open_for`. Then it lets one request through as a probe (others are still refused); the
//! probe's success closes it, its failure opens it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Consecutive transient failures that open a token endpoint's breaker.
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// How long an open breaker refuses requests before it lets a probe through.
pub const DEFAULT_BREAKER_OPEN: Duration = Duration::from_secs(30);

/// The breakers of every token endpoint a refresher has used.
#[derive(Debug)]
pub(crate) struct Breakers {
    failures: u32,
    open_for: Duration,
    by_endpoint: Mutex<HashMap<String, Arc<Breaker>>>,
}

impl Breakers {
    pub(crate) fn new(failures: u32, open_for: Duration) -> Self {
        Self { failures, open_for, by_endpoint: Mutex::default() }
    }

    /// The breaker of `endpoint`.
    pub(crate) fn of(&self, endpoint: &str) -> Arc<Breaker> {
        let mut by_endpoint = self.by_endpoint.lock().unwrap_or_else(PoisonError::into_inner);
        let breaker = by_endpoint.entry(endpoint.to_owned()).or_insert_with(|| {
            Arc::new(Breaker {
                failures: self.failures,
                open_for: self.open_for,
                state: Mutex::new(State::default()),
            })
        });
        Arc::clone(breaker)
    }
}

#[derive(Debug)]
pub(crate) struct Breaker {
    failures: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures_in_a_row: u32,
    open_until: Option<Instant>,
    probing: bool,
}

impl Breaker {
    /// Whether a request may go out now. A `true` after the open period makes the caller the
    /// probe, which must report back.
    pub(crate) fn admit(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.open_until {
            None => true,
            Some(until) if now < until || state.probing => false,
            Some(_) => {
                state.probing = true;
                true
            }
        }
    }

    /// The provider answered (with a token or a refusal): it is up.
    pub(crate) fn answered(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = State::default();
    }

    /// A transient failure at `now`.
    pub(crate) fn failed(&self, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
        if state.probing || state.failures_in_a_row >= self.failures {
            state.open_until = Some(now + self.open_for);
            state.probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_once_then_closes_on_an_answer() {
        let breakers = Breakers::new(3, Duration::from_secs(30));
        let breaker = breakers.of("https://auth.example/token");
        let start = Instant::now();
        for _ in 0..2 {
            assert!(breaker.admit(start));
            breaker.failed(start);
        }
        assert!(breaker.admit(start), "two failures do not open it");
        breaker.failed(start);
        assert!(!breaker.admit(start + Duration::from_secs(29)), "open");
        let later = start + Duration::from_secs(30);
        assert!(breaker.admit(later), "the probe");
        assert!(!breaker.admit(later), "one probe at a time");
        breaker.failed(later);
        assert!(!breaker.admit(later + Duration::from_secs(1)), "a failed probe opens it again");
        let again = later + Duration::from_secs(30);
        assert!(breaker.admit(again));
        breaker.answered();
        assert!(breaker.admit(again) && breaker.admit(again), "closed");
        // Another endpoint has a breaker of its own, and the same one is shared.
        assert!(breakers.of("https://other.example/token").admit(start));
        assert!(Arc::ptr_eq(&breaker, &breakers.of("https://auth.example/token")));
    }
}
