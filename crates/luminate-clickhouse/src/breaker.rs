//! The circuit breaker in front of ClickHouse: after `threshold` consecutive outages (no connection,
//! a connection broken mid-request, no answer in time) it opens, and every request fails at once with
//! the reason instead of waiting for its own timeout; after `cool_down` one request is let through as a
//! probe (half-open): its success closes the circuit, its failure opens it again for another cool-down.
//!
//! An answer from ClickHouse, even an error, counts as a success: the server is up. Owns only this
//! state machine; the store decides what an outage is (see `transport::TransportError::is_outage`).
//! A `std` mutex: it is held for a few instructions and never across an `.await`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::observe::{BreakerState, ClickhouseObserver};

/// Where the breaker is.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Requests pass; `failures` consecutive outages so far.
    Closed { failures: u32 },
    /// Requests fail fast until `until`.
    Open { until: Instant, reason: String },
    /// One probe is in flight since `since`; others fail fast. A probe that never reports (its future
    /// was dropped) is replaced by another after a cool-down, so the breaker cannot stay stuck here.
    HalfOpen { since: Instant, reason: String },
}

/// Why a request was refused: the circuit is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The outage that opened the circuit, and when the next probe goes.
    pub reason: String,
}

/// The breaker. Cheap to consult on every request.
#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<State>,
    threshold: u32,
    cool_down: Duration,
    /// Told of every transition.
    observer: Arc<dyn ClickhouseObserver>,
}

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` consecutive outages, watched by nobody.
    #[cfg(test)]
    fn new(threshold: u32, cool_down: Duration) -> Self {
        Self::observed(threshold, cool_down, Arc::new(crate::observe::Unobserved))
    }

    /// A closed breaker that opens after `threshold` consecutive outages, telling `observer` of every
    /// transition.
    pub fn observed(
        threshold: u32,
        cool_down: Duration,
        observer: Arc<dyn ClickhouseObserver>,
    ) -> Self {
        observer.breaker(BreakerState::Closed);
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cool_down,
            observer,
        }
    }

    /// Replaces the state, telling the observer when its kind changes.
    fn set(&self, state: &mut State, next: State) {
        let kind = |s: &State| match s {
            State::Closed { .. } => BreakerState::Closed,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
        };
        let (before, after) = (kind(state), kind(&next));
        *state = next;
        if before != after {
            self.observer.breaker(after);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a request through, or refuses it while the circuit is open. Once the cool-down has passed,
    /// the first caller becomes the probe.
    pub fn admit(&self) -> Result<(), Refused> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Result<(), Refused> {
        let mut state = self.lock();
        match &*state {
            State::Closed { .. } => Ok(()),
            State::Open { until, reason } if now >= *until => {
                let next = State::HalfOpen {
                    since: now,
                    reason: reason.clone(),
                };
                self.set(&mut state, next);
                Ok(())
            }
            State::HalfOpen { since, reason } if now >= *since + self.cool_down => {
                let next = State::HalfOpen {
                    since: now,
                    reason: reason.clone(),
                };
                self.set(&mut state, next);
                Ok(())
            }
            State::Open { until, reason } => Err(Refused {
                reason: format!(
                    "circuit open: {reason}; next probe in {} ms",
                    until.saturating_duration_since(now).as_millis()
                ),
            }),
            State::HalfOpen { reason, .. } => Err(Refused {
                reason: format!("circuit half-open, a probe is in flight: {reason}"),
            }),
        }
    }

    /// ClickHouse answered: the circuit closes.
    pub fn record_success(&self) {
        let mut state = self.lock();
        if !matches!(*state, State::Closed { failures: 0 }) {
            self.set(&mut state, State::Closed { failures: 0 });
        }
    }

    /// ClickHouse could not be reached or did not answer.
    pub fn record_outage(&self, reason: &str) {
        self.record_outage_at(reason, Instant::now());
    }

    fn record_outage_at(&self, reason: &str, now: Instant) {
        let mut state = self.lock();
        let open = |reason: String| State::Open {
            until: now + self.cool_down,
            reason,
        };
        let next = match &*state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            State::Closed { .. } => open(format!(
                "{} consecutive failures, the last: {reason}",
                self.threshold
            )),
            // The probe failed (or a request admitted before the circuit opened did): cool down again.
            State::HalfOpen { .. } | State::Open { .. } => open(reason.to_owned()),
        };
        self.set(&mut state, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_consecutive_outages() {
        let b = CircuitBreaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        b.record_outage_at("refused", t0);
        b.record_outage_at("refused", t0);
        assert!(b.admit_at(t0).is_ok());
        b.record_outage_at("refused", t0);
        let refused = b.admit_at(t0).unwrap_err();
        assert!(
            refused
                .reason
                .contains("3 consecutive failures, the last: refused"),
            "{}",
            refused.reason
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = CircuitBreaker::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        b.record_outage_at("x", t0);
        b.record_success();
        b.record_outage_at("x", t0);
        assert!(b.admit_at(t0).is_ok());
    }

    #[test]
    fn half_open_admits_one_probe_then_closes_or_reopens() {
        let b = CircuitBreaker::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        b.record_outage_at("down", t0);
        assert!(b.admit_at(t0 + Duration::from_secs(9)).is_err());
        // Cool-down over: exactly one probe.
        let t1 = t0 + Duration::from_secs(10);
        assert!(b.admit_at(t1).is_ok());
        assert!(b.admit_at(t1).unwrap_err().reason.contains("probe"));
        // The probe fails: open for another cool-down.
        b.record_outage_at("still down", t1);
        assert!(b.admit_at(t1 + Duration::from_secs(9)).is_err());
        let t2 = t1 + Duration::from_secs(10);
        assert!(b.admit_at(t2).is_ok());
        b.record_success();
        assert!(b.admit_at(t2).is_ok());
        assert!(b.admit_at(t2).is_ok(), "closed: every request passes");
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced() {
        let b = CircuitBreaker::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        b.record_outage_at("down", t0);
        let t1 = t0 + Duration::from_secs(10);
        assert!(b.admit_at(t1).is_ok()); // this probe is dropped without a word
        assert!(b.admit_at(t1 + Duration::from_secs(9)).is_err());
        assert!(b.admit_at(t1 + Duration::from_secs(10)).is_ok());
    }

    /// Records every state the breaker reports.
    #[derive(Debug, Default)]
    struct Transitions(Mutex<Vec<BreakerState>>);

    impl ClickhouseObserver for Transitions {
        fn breaker(&self, state: BreakerState) {
            self.0.lock().unwrap().push(state);
        }
    }

    #[test]
    fn every_transition_and_only_transitions_are_reported() {
        let seen = Arc::new(Transitions::default());
        let b = CircuitBreaker::observed(2, Duration::from_secs(10), seen.clone());
        let t0 = Instant::now();
        b.record_outage_at("x", t0); // still closed: one failure of two
        b.record_success();
        b.record_outage_at("x", t0);
        b.record_outage_at("x", t0); // opens
        assert!(b.admit_at(t0).is_err());
        let t1 = t0 + Duration::from_secs(10);
        assert!(b.admit_at(t1).is_ok()); // half-open
        b.record_success(); // closes
        b.record_success();
        use BreakerState::{Closed, HalfOpen, Open};
        assert_eq!(*seen.0.lock().unwrap(), [Closed, Open, HalfOpen, Closed]);
    }
}
