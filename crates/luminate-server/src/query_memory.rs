//! The server-wide query memory budget (`query_limits.memory_budget_bytes`): before a query runs, it
//! reserves its store's estimate of the memory it will hold
//! ([`luminate_model::MetricsStore::query_memory`]), and gives it back when the work ends. Each
//! query's own memory is bounded by its backend; this bounds their sum, so that many concurrent heavy
//! queries wait or are refused instead of meeting the OOM killer.
//!
//! - **Reserve**: a query whose estimate fits in what is free is admitted at once. One that does not
//!   waits — at most `query_limits.memory_wait`, and never past its own deadline — for running queries
//!   to release theirs; whenever budget is released, every waiter looks again, so a small query is not
//!   held behind a big one that still does not fit (a big one may so wait longer, but its wait is
//!   bounded). A wait that ends without room is `503 STORAGE_UNAVAILABLE` with `Retry-After`.
//! - **Too large**: a query whose estimate exceeds the whole budget could never run; it is refused at
//!   once with `400 QUERY_LIMIT_EXCEEDED` naming the budget.
//! - **Release**: a [`Reservation`] gives its bytes back when dropped. The query route hands it to the
//!   [`luminate_model::QueryContext`] (`holding`), which the store clones into the worker that scans:
//!   it is released when the last of them is gone — when the answer is encoded, or after a timeout
//!   when the worker has noticed the cancellation, or when a panicking worker unwinds.
//! - **Self-metrics**: `luminate_query_memory_budget_bytes`, `..._reserved_bytes`, `..._waiting` and
//!   `luminate_query_memory_admissions_total{outcome}` (immediate, waited, busy, too_large).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use luminate_model::ErrorCode;
use luminate_model::time::format_duration;
use serde_json::json;
use tokio::sync::Notify;

use crate::error::ApiError;
use crate::telemetry::{QueryMemoryMetrics, Telemetry};

/// Seconds a refused query is told to wait before retrying (`Retry-After`): running queries take
/// about that long to finish.
const RETRY_AFTER_SECONDS: u64 = 1;

/// The budget every query of this process reserves from. Cheap to clone; clones share it.
#[derive(Debug, Clone)]
pub struct QueryMemory(Arc<Budget>);

#[derive(Debug)]
struct Budget {
    capacity: u64,
    /// Bytes reserved now. A std mutex: held for an addition, never across an await.
    reserved: Mutex<u64>,
    /// Wakes the waiters whenever bytes are released.
    released: Notify,
    metrics: QueryMemoryMetrics,
}

/// Bytes of the budget held by one query, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Reservation {
    /// The bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Why a query was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its estimate exceeds the whole budget: it could never run.
    TooLarge {
        /// The estimate.
        bytes: u64,
        /// The budget.
        budget: u64,
    },
    /// Running queries held too much of the budget for the whole wait.
    Busy {
        /// The estimate.
        bytes: u64,
        /// The budget.
        budget: u64,
        /// How long it waited.
        waited: Duration,
    },
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::TooLarge { bytes, budget } => ApiError::new(
                ErrorCode::QueryLimitExceeded,
                format!(
                    "the query would hold an estimated {} in memory, more than the server's whole query \
                     memory budget (query_limits.memory_budget_bytes: {}); narrow the time range or add filters",
                    size(bytes),
                    size(budget)
                ),
            )
            .with_details(json!({"limit": "memory_budget_bytes", "value": budget, "estimate_bytes": bytes})),
            Refusal::Busy {
                bytes,
                budget,
                waited,
            } => ApiError::new(
                ErrorCode::StorageUnavailable,
                format!(
                    "the server's query memory budget (query_limits.memory_budget_bytes: {}) is taken by running \
                     queries: this query needs an estimated {} and waited {} for it; retry in {RETRY_AFTER_SECONDS}s",
                    size(budget),
                    size(bytes),
                    format_duration(waited)
                ),
            )
            .with_details(json!({
                "limit": "memory_budget_bytes", "value": budget, "estimate_bytes": bytes,
                "retry_after_seconds": RETRY_AFTER_SECONDS,
            }))
            .with_retry_after(RETRY_AFTER_SECONDS),
        }
    }
}

/// `31.2 MiB (32714752 bytes)`.
fn size(bytes: u64) -> String {
    format!(
        "{:.1} MiB ({bytes} bytes)",
        bytes as f64 / f64::from(1 << 20)
    )
}

impl QueryMemory {
    /// A budget of `capacity` bytes, measured in `telemetry`.
    pub fn new(capacity: u64, telemetry: &Telemetry) -> Self {
        let metrics = telemetry.query_memory.clone();
        metrics
            .budget
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
        Self(Arc::new(Budget {
            capacity,
            reserved: Mutex::new(0),
            released: Notify::new(),
            metrics,
        }))
    }

    /// The budget.
    pub fn capacity(&self) -> u64 {
        self.0.capacity
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        *self.0.lock()
    }

    /// Reserves `bytes`, waiting up to `wait` for running queries to release enough.
    pub async fn reserve(&self, bytes: u64, wait: Duration) -> Result<Reservation, Refusal> {
        let budget = &self.0;
        if bytes > budget.capacity {
            budget.metrics.admitted("too_large");
            return Err(Refusal::TooLarge {
                bytes,
                budget: budget.capacity,
            });
        }
        if let Some(reservation) = self.try_reserve(bytes) {
            budget.metrics.admitted("immediate");
            return Ok(reservation);
        }
        let _waiting = budget.metrics.waiting();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so that a release between the look and the wait still wakes us.
            let released = budget.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(reservation) = self.try_reserve(bytes) {
                budget.metrics.admitted("waited");
                return Ok(reservation);
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                budget.metrics.admitted("busy");
                return Err(Refusal::Busy {
                    bytes,
                    budget: budget.capacity,
                    waited: started.elapsed(),
                });
            }
        }
    }

    /// Reserves `bytes` if they are free now.
    fn try_reserve(&self, bytes: u64) -> Option<Reservation> {
        let budget = &self.0;
        let mut reserved = budget.lock();
        if budget.capacity - *reserved < bytes {
            return None;
        }
        *reserved += bytes;
        budget.metrics.set_reserved(*reserved);
        Some(Reservation {
            budget: budget.clone(),
            bytes,
        })
    }
}

impl Budget {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // Only additions and subtractions happen under it: a panic cannot leave it half-changed.
        self.reserved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, bytes: u64) {
        {
            let mut reserved = self.lock();
            *reserved -= bytes;
            self.metrics.set_reserved(*reserved);
        }
        self.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Registry;
    use crate::telemetry::tests::exposition;

    const WAIT: Duration = Duration::from_secs(5);

    fn budget(capacity: u64) -> (QueryMemory, Registry) {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 10);
        (QueryMemory::new(capacity, &telemetry), registry)
    }

    #[tokio::test]
    async fn reservations_add_up_to_the_budget_and_drops_give_them_back() {
        let (memory, registry) = budget(100);
        let a = memory.reserve(60, WAIT).await.unwrap();
        let b = memory.reserve(40, WAIT).await.unwrap();
        assert_eq!((a.bytes(), b.bytes(), memory.reserved()), (60, 40, 100));
        let text = exposition(&registry);
        assert!(
            text.contains("luminate_query_memory_reserved_bytes 100"),
            "{text}"
        );
        assert!(
            text.contains("luminate_query_memory_budget_bytes 100"),
            "{text}"
        );
        drop(a);
        assert_eq!(memory.reserved(), 40);
        drop(b);
        assert_eq!(memory.reserved(), 0);
        let text = exposition(&registry);
        assert!(
            text.contains("luminate_query_memory_reserved_bytes 0"),
            "{text}"
        );
        assert!(
            text.contains(r#"luminate_query_memory_admissions_total{outcome="immediate"} 2"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_estimate_over_the_whole_budget_is_refused_at_once_naming_it() {
        let (memory, registry) = budget(100);
        let started = Instant::now();
        let refusal = memory.reserve(101, WAIT).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            refusal,
            Refusal::TooLarge {
                bytes: 101,
                budget: 100
            }
        );
        let error = ApiError::from(refusal);
        assert_eq!(error.status().as_u16(), 400);
        assert_eq!(error.code, ErrorCode::QueryLimitExceeded);
        assert!(
            error.message.contains("query_limits.memory_budget_bytes"),
            "{}",
            error.message
        );
        assert_eq!(error.details["limit"], "memory_budget_bytes");
        assert_eq!(error.retry_after, None);
        assert!(
            exposition(&registry)
                .contains(r#"luminate_query_memory_admissions_total{outcome="too_large"} 1"#)
        );
    }

    #[tokio::test]
    async fn a_query_waits_for_a_release_and_then_runs() {
        let (memory, registry) = budget(100);
        let running = memory.reserve(80, WAIT).await.unwrap();
        let waiter = {
            let memory = memory.clone();
            tokio::spawn(async move { memory.reserve(50, WAIT).await })
        };
        // Waiting, not admitted: the gauge says so.
        let waiting = r#"luminate_query_memory_waiting 1"#;
        for _ in 0..100 {
            if exposition(&registry).contains(waiting) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(exposition(&registry).contains(waiting));
        assert_eq!(memory.reserved(), 80);
        drop(running);
        let admitted = waiter.await.unwrap().unwrap();
        assert_eq!(memory.reserved(), 50);
        drop(admitted);
        let text = exposition(&registry);
        assert!(text.contains("luminate_query_memory_waiting 0"), "{text}");
        assert!(
            text.contains(r#"luminate_query_memory_admissions_total{outcome="waited"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_small_query_is_not_held_behind_a_big_one_that_still_does_not_fit() {
        let (memory, _registry) = budget(100);
        let running = memory.reserve(70, WAIT).await.unwrap();
        let big = {
            let memory = memory.clone();
            tokio::spawn(async move { memory.reserve(90, Duration::from_millis(300)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let small = memory.reserve(30, Duration::ZERO).await.unwrap();
        assert_eq!(memory.reserved(), 100);
        drop((running, small));
        assert_eq!(big.await.unwrap().unwrap().bytes(), 90);
    }

    #[tokio::test]
    async fn a_wait_that_ends_without_room_is_a_503_with_retry_after() {
        let (memory, registry) = budget(100);
        let _running = memory.reserve(100, WAIT).await.unwrap();
        let started = Instant::now();
        let refusal = memory
            .reserve(1, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        let Refusal::Busy {
            bytes: 1,
            budget: 100,
            waited,
        } = refusal
        else {
            panic!("{refusal:?}");
        };
        assert!(waited >= Duration::from_millis(50));
        let error = ApiError::from(refusal);
        assert_eq!(error.status().as_u16(), 503);
        assert_eq!(error.code, ErrorCode::StorageUnavailable);
        assert_eq!(error.retry_after, Some(1));
        assert!(
            error.message.contains("query_limits.memory_budget_bytes"),
            "{}",
            error.message
        );
        let text = exposition(&registry);
        assert!(
            text.contains(r#"luminate_query_memory_admissions_total{outcome="busy"} 1"#),
            "{text}"
        );
        assert!(text.contains("luminate_query_memory_waiting 0"), "{text}");
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_nothing_behind() {
        let (memory, registry) = budget(100);
        let running = memory.reserve(100, WAIT).await.unwrap();
        // The request goes away (client gone, deadline) while it waits: its future is dropped.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(20), memory.reserve(10, WAIT)).await;
        assert!(gave_up.is_err());
        assert!(exposition(&registry).contains("luminate_query_memory_waiting 0"));
        drop(running);
        assert_eq!(memory.reserved(), 0);
    }

    #[test]
    fn a_panicking_or_timed_out_worker_releases_when_it_ends() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (memory, _registry) = budget(100);
        let reservation = runtime.block_on(memory.reserve(60, WAIT)).unwrap();
        let ctx = luminate_model::QueryContext::new(Duration::from_secs(60))
            .holding(Arc::new(reservation));
        // The store's worker holds a clone; the route's is dropped when it answers 504.
        let worker = ctx.clone();
        ctx.cancel();
        drop(ctx);
        assert_eq!(memory.reserved(), 60, "the worker has not stopped yet");
        let panicked = std::thread::spawn(move || {
            let _held = worker;
            panic!("a bug in the engine");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(memory.reserved(), 0);
    }
}
