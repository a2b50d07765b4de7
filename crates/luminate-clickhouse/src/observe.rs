//! What the ClickHouse backend tells its embedder, for the embedder's own metrics: every HTTP request
//! to ClickHouse (its kind, time and outcome) and every change of the circuit breaker. This crate
//! depends on no metrics library; the server implements [`ClickhouseObserver`] with Prometheus metrics.

use std::fmt::Debug;
use std::time::Duration;

/// What a statement does, from its first keyword: a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `INSERT`.
    Insert,
    /// `SELECT` (and `WITH ... SELECT`): queries, discovery, health.
    Select,
    /// Anything else: DDL, mutations, `KILL QUERY`.
    Command,
}

impl Operation {
    /// The kind of `sql`.
    pub fn of(sql: &str) -> Self {
        let head = sql.trim_start();
        let starts =
            |word: &str| head.len() >= word.len() && head[..word.len()].eq_ignore_ascii_case(word);
        if starts("INSERT") {
            Self::Insert
        } else if starts("SELECT") || starts("WITH") {
            Self::Select
        } else {
            Self::Command
        }
    }

    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Select => "select",
            Self::Command => "command",
        }
    }
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests pass.
    Closed,
    /// One probe is in flight.
    HalfOpen,
    /// Requests fail fast.
    Open,
}

impl BreakerState {
    /// As a gauge value: 0 closed, 1 half-open, 2 open.
    pub fn as_gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

/// Receives the backend's events. Called on request paths: an implementation must be cheap and never
/// block.
pub trait ClickhouseObserver: Send + Sync + Debug {
    /// One HTTP request to ClickHouse ended after `elapsed`; `ok` is false for any failure (no
    /// connection, a timeout, an exception in the answer).
    fn request(&self, operation: Operation, elapsed: Duration, ok: bool) {
        let _ = (operation, elapsed, ok);
    }

    /// The circuit breaker is now in `state` (called on every transition).
    fn breaker(&self, state: BreakerState) {
        let _ = state;
    }
}

/// The observer of a backend nobody watches.
#[derive(Debug, Default)]
pub struct Unobserved;

impl ClickhouseObserver for Unobserved {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_classified_by_their_first_keyword() {
        assert_eq!(
            Operation::of("INSERT INTO t FORMAT RowBinary"),
            Operation::Insert
        );
        assert_eq!(Operation::of("  select 1"), Operation::Select);
        assert_eq!(
            Operation::of("WITH x AS (SELECT 1) SELECT * FROM x"),
            Operation::Select
        );
        assert_eq!(
            Operation::of("ALTER TABLE t DELETE WHERE 1"),
            Operation::Command
        );
        assert_eq!(
            Operation::of("KILL QUERY WHERE query_id = 'x'"),
            Operation::Command
        );
        assert_eq!(Operation::of("IN"), Operation::Command);
    }
}
