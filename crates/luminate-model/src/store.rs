//! The `MetricsStore` trait: the one seam between the server and a storage backend.
//!
//! A backend receives the tenant on every call and must never mix tenants; it knows nothing of HTTP,
//! tokens or quotas. Results are exact per CONTRACT §4 — the same query gives the same answer on every
//! backend, which the conformance suite checks against [`crate::reference`].

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use thiserror::Error;

use crate::backup::{SnapshotError, StoreSnapshot};
use crate::batch::PointBatch;
use crate::error::ErrorCode;
use crate::export::{ExportPlan, ExportStream};
use crate::keyed::{KeyedOutcome, KeyedWrite};
use crate::point::Tenant;
use crate::query::QueryPlan;
use crate::result::{MetricCardinality, QueryResult, ValueCount};
use crate::time::TimestampMs;
use crate::window::{GroupedValue, GroupedWindows, SeriesWindows, WindowRequest, WindowSteps};

/// A failure of the storage layer, with enough context to act on.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum StoreError {
    /// The backend cannot serve requests now (down, poisoned by an fsync failure, circuit open).
    #[error("storage unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The storage has no room for the write now (disk full, over quota) and kept nothing of it; the
    /// same request succeeds once space is freed, without a restart. `STORAGE_UNAVAILABLE` with a
    /// `Retry-After`.
    #[error("storage unavailable: {reason}")]
    Full {
        /// What could not be written, where, and the space left.
        reason: String,
    },
    /// The query ran past its deadline and was cancelled.
    #[error("query exceeded its timeout of {timeout:?}")]
    Timeout {
        /// The deadline it had.
        timeout: Duration,
    },
    /// The query would exceed a resource bound of the backend (e.g. memory per query).
    #[error("{message}")]
    QueryTooLarge {
        /// Which bound, with its value.
        message: String,
    },
    /// A bug or an unexpected I/O condition.
    #[error("internal storage error: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

impl StoreError {
    /// The contract's error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable { .. } | Self::Full { .. } => ErrorCode::StorageUnavailable,
            Self::Timeout { .. } => ErrorCode::QueryTimeout,
            Self::QueryTooLarge { .. } => ErrorCode::QueryLimitExceeded,
            Self::Internal { .. } => ErrorCode::InternalError,
        }
    }
}

/// Deadline and cancellation of one query. Cloned into the worker that runs it; scans call
/// [`QueryContext::check`] regularly so a timed-out query stops instead of running on.
#[derive(Debug, Clone)]
pub struct QueryContext {
    /// `None` when `now + timeout` is past what the clock can represent: no deadline, only cancellation.
    deadline: Option<Instant>,
    timeout: Duration,
    cancelled: Arc<AtomicBool>,
    // Never read: it only keeps what `holding` was given alive.
    _held: Held,
    /// What the backend could not read for this query (a damaged part set aside): shared by every
    /// clone, so a backend adds to it from its worker and the route reads it after the answer. Empty
    /// when the answer is whole; the route then says nothing (CONTRACT §4's exact answers).
    warnings: Arc<Mutex<Vec<String>>>,
}

/// What a context keeps alive for as long as any of its clones lives (see [`QueryContext::holding`]).
#[derive(Clone, Default)]
struct Held(Option<Arc<dyn Any + Send + Sync>>);

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Held" } else { "Nothing" })
    }
}

impl QueryContext {
    /// A context that expires `timeout` from now.
    pub fn new(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now().checked_add(timeout),
            timeout,
            cancelled: Arc::new(AtomicBool::new(false)),
            _held: Held::default(),
            warnings: Arc::default(),
        }
    }

    /// This context, keeping `resource` alive until its last clone is dropped: the server's reservation
    /// of query memory travels with the context into the worker that runs the query, so it is released
    /// when that work really ends — after a timeout, when the worker has noticed the cancellation; after
    /// a panic, when the worker unwinds — not when the request gives up waiting for it.
    pub fn holding(self, resource: Arc<dyn Any + Send + Sync>) -> Self {
        Self {
            _held: Held(Some(resource)),
            ..self
        }
    }

    /// Asks every holder of this context to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// The time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.map_or(Duration::MAX, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        })
    }

    /// Records that the answer is partial, and why (once per distinct message, in order).
    pub fn warn(&self, message: String) {
        let mut warnings = self.warnings.lock().unwrap_or_else(PoisonError::into_inner);
        if !warnings.contains(&message) {
            warnings.push(message);
        }
    }

    /// Why the answer is partial: empty when it is whole.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `Err(Timeout)` once cancelled or past the deadline.
    pub fn check(&self) -> Result<(), StoreError> {
        let expired = self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline);
        if self.cancelled.load(Ordering::Relaxed) || expired {
            self.cancel();
            return Err(StoreError::Timeout {
                timeout: self.timeout,
            });
        }
        Ok(())
    }
}

/// A point the backend refused at write time (cardinality limits), by its index in the written slice.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Index of the point in the batch given to `write`.
    pub index: usize,
    /// `CARDINALITY_EXCEEDED`.
    pub code: ErrorCode,
    /// Which limit, with its value.
    pub message: String,
}

/// What a write stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOutcome {
    /// Points stored (durable under the sync policy when `write` returns).
    pub accepted: usize,
    /// Points refused, each with its reason.
    pub rejected: Vec<Rejection>,
    /// Protocol samples not stored because they equal the newest sample of their series (same
    /// timestamp, same value): a sender's retry. Always 0 for [`MetricsStore::write`].
    pub duplicates: usize,
    /// Protocol samples not stored because their timestamp is not after the newest sample of their
    /// series (and they are not its duplicate). Always 0 for [`MetricsStore::write`].
    pub out_of_order: usize,
}

/// Health of the storage as seen by the backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageHealth {
    /// `healthy` or `unavailable`.
    pub status: HealthStatus,
    /// Bytes the backend uses on disk, when it knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_used_bytes: Option<u64>,
    /// Why it is not healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StorageHealth {
    /// Unavailable for `reason`, disk use unknown.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Unavailable,
            disk_used_bytes: None,
            error: Some(reason.into()),
        }
    }

    /// Unavailable because of `error`: an `Unavailable` error's own reason (without the
    /// "storage unavailable:" prefix), any other error's message.
    pub fn failed(error: StoreError) -> Self {
        Self::unavailable(match error {
            StoreError::Unavailable { reason } | StoreError::Full { reason } => reason,
            other => other.to_string(),
        })
    }
}

/// Coarse health.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Serving reads and writes.
    Healthy,
    /// Not serving.
    Unavailable,
}

/// The verdict of one named health check (CONTRACT §7 `checks.<name>.status`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// What the check looks at works.
    Pass,
    /// It works, but needs an operator's attention soon (e.g. disk space running low); the server
    /// stays ready.
    Warn,
    /// It does not work: the server answers health with `503`.
    Fail,
}

/// What a health check found: its verdict and, when there is something to say, why or with what numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The verdict.
    pub status: CheckStatus,
    /// Why (always given for `warn` and `fail`), or what was verified.
    pub message: Option<String>,
}

impl CheckOutcome {
    /// Passed, nothing to add.
    pub fn pass() -> Self {
        Self {
            status: CheckStatus::Pass,
            message: None,
        }
    }

    /// Works, but needs attention, because of `message`.
    pub fn warn(message: String) -> Self {
        Self {
            status: CheckStatus::Warn,
            message: Some(message),
        }
    }

    /// Failed, because of `message`.
    pub fn fail(message: String) -> Self {
        Self {
            status: CheckStatus::Fail,
            message: Some(message),
        }
    }

    /// The same verdict with `message`.
    pub fn with_message(self, message: String) -> Self {
        Self {
            message: Some(message),
            ..self
        }
    }
}

/// The probe of a health check: owns what it needs (`'static`), so the server can run every check
/// on a task of its own, concurrently, and stop waiting for it at a deadline.
pub type CheckProbe = Pin<Box<dyn Future<Output = CheckOutcome> + Send + 'static>>;

/// A named health check a backend offers, not yet run.
pub struct HealthCheck {
    /// Its key in `checks` (`wal_writable`, `clickhouse_reachable`, ...).
    pub name: &'static str,
    /// What runs it.
    pub probe: CheckProbe,
}

impl HealthCheck {
    /// The check `name`, run by `probe`.
    pub fn new(
        name: &'static str,
        probe: impl Future<Output = CheckOutcome> + Send + 'static,
    ) -> Self {
        Self {
            name,
            probe: Box::pin(probe),
        }
    }
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A per-metric retention set through the admin API (it overrides configured policies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionOverride {
    /// Metric name.
    pub metric: String,
    /// Points older than this are deleted by the cleanup task.
    pub retention: Duration,
}

/// A storage backend. Every method is scoped to one tenant, except [`MetricsStore::tenants`], which the
/// retention task uses to visit them all.
#[async_trait]
pub trait MetricsStore: Send + Sync + 'static {
    /// `embedded` or `clickhouse`.
    fn backend_name(&self) -> &'static str;

    /// Stores validated points. Returns once accepted points are durable under the configured sync
    /// policy and visible to queries that start afterwards.
    async fn write(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError>;

    /// Stores validated samples received through an ingestion protocol (Prometheus remote write,
    /// OTLP) under the newest-sample rule of docs/ingest.md: per series, a sample is stored only when
    /// its timestamp is after the newest sample the series holds (whichever API stored that one), so a
    /// sender's retry or resend stores nothing twice. A sample that is not is counted in
    /// [`WriteOutcome::duplicates`] (same timestamp and value as the newest) or
    /// [`WriteOutcome::out_of_order`], never rejected. The rule holds across restarts and between
    /// concurrent writes of one process; how exactly between processes is the backend's to document.
    /// Otherwise as [`MetricsStore::write`].
    async fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError>;

    /// [`MetricsStore::write`] of a batch sent with an idempotency key (`crate::keyed`): the answer,
    /// built by `keyed.respond` from the outcome, is returned with it. A store that remembers keys
    /// durably logs the key and the answer with the batch, atomically, and answers a key it remembers
    /// with [`KeyedOutcome::Replayed`] without storing anything. Default: nothing remembered — the
    /// batch is written and answered (the server's in-memory cache is then the only memory of keys).
    async fn write_keyed(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, StoreError> {
        let outcome = self.write(tenant, batch).await?;
        let response = (keyed.respond)(&outcome);
        Ok(KeyedOutcome::Stored { outcome, response })
    }

    /// Runs a range, aggregate or rate query with the exact semantics of CONTRACT §4.
    async fn query(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, StoreError>;

    /// An estimate, in bytes, of the memory this process will hold at most while it runs `plan` and
    /// encodes the answer: what the server reserves from its query memory budget before calling
    /// [`MetricsStore::query`]. Cheap (no scan): a backend that buffers what it reads estimates from
    /// what it knows of the data; one that does not, from the largest answer ([`crate::memory`]).
    /// Default: the overhead and the largest answer the plan allows. A wrapper forwards its inner store's.
    async fn query_memory(&self, tenant: &Tenant, plan: &QueryPlan) -> Result<u64, StoreError> {
        let _ = tenant;
        Ok(crate::memory::answer_only(plan, u64::MAX))
    }

    /// Each series of `request.metric` passing its filters with a point in a window of `steps`, its
    /// points in each step's window folded into a [`crate::window::SeriesWindow`] (PromQL's instant
    /// selectors and range functions over millions of points, for an instant query or every step of a
    /// range query, without holding the points: [`crate::window`]); `request.start` and `end` are
    /// ignored. `QueryTooLarge` past `request.limit` series; `None` when the store cannot fold them
    /// (the caller reads points). A wrapper forwards its inner store's. Default: `None`.
    async fn series_windows(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: &WindowSteps,
        ctx: &QueryContext,
    ) -> Result<SeriesWindows, StoreError> {
        let _ = (tenant, request, steps, ctx);
        Ok(None)
    }

    /// [`MetricsStore::series_windows`] grouped in the store, with a window per step of `steps`
    /// (`request.start` and `end` are ignored): per group of `group_by` values, the count and the
    /// `value.moment` of `value.value` over its series' windows at each step — `sum by (region)
    /// (rate(x[1m]))` over a million series, or over a range query's steps in one read, without a
    /// series' dimensions leaving the store. At most `request.limit` groups (more is
    /// `QueryTooLarge`). A wrapper forwards its inner store's. Default: `None`.
    async fn grouped_windows(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: &WindowSteps,
        group_by: &[String],
        value: GroupedValue,
        ctx: &QueryContext,
    ) -> Result<GroupedWindows, StoreError> {
        let _ = (tenant, request, steps, group_by, value, ctx);
        Ok(None)
    }

    /// An estimate, in bytes, of the memory [`MetricsStore::series_windows`] over `steps` steps (or
    /// [`MetricsStore::grouped_windows`], with `group_by`) holds for `request`, as
    /// [`MetricsStore::query_memory`] is for a query (a store that folds counts
    /// [`crate::window::SERIES_DIMENSIONS_BYTES`] per series it selects and
    /// [`crate::window::WINDOW_BYTES`] per series and step, or [`crate::window::GROUP_STEP_BYTES`]
    /// per group and step and the windows it holds at once). A wrapper forwards its inner store's.
    /// Default: 0, as the default folds hold nothing.
    async fn series_windows_memory(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: usize,
        group_by: Option<&[String]>,
    ) -> Result<u64, StoreError> {
        let _ = (tenant, request, steps, group_by);
        Ok(0)
    }

    /// Metric names with stored points, sorted.
    async fn metric_names(&self, tenant: &Tenant) -> Result<Vec<String>, StoreError>;

    /// Dimension keys of a metric, sorted; `None` when the metric is unknown.
    async fn dimension_keys(
        &self,
        tenant: &Tenant,
        metric: &str,
    ) -> Result<Option<Vec<String>>, StoreError>;

    /// Values of one key by stored points descending, ties by value, narrowed to those starting with
    /// `prefix`, at most `limit`; `None` when the metric is unknown.
    async fn dimension_values(
        &self,
        tenant: &Tenant,
        metric: &str,
        key: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Option<Vec<ValueCount>>, StoreError>;

    /// Series per metric (largest first, ties by name) and distinct values per key; only `metric` when
    /// given (empty when unknown).
    async fn cardinality(
        &self,
        tenant: &Tenant,
        metric: Option<&str>,
    ) -> Result<Vec<MetricCardinality>, StoreError>;

    /// Deletes the metric's points with timestamp `< before`; returns how many were deleted.
    async fn delete_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> Result<u64, StoreError>;

    /// The retention task's delete: the metric's points with timestamp `< cutoff`, its retention
    /// having passed; returns how many were deleted now. A backend that expires points by itself (a
    /// ClickHouse TTL covering the cut) may leave them to that and return 0; the default deletes.
    async fn expire_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        cutoff: TimestampMs,
    ) -> Result<u64, StoreError> {
        self.delete_before(tenant, metric, cutoff).await
    }

    /// Persists a per-metric retention override that survives restarts.
    async fn set_retention(
        &self,
        tenant: &Tenant,
        metric: &str,
        retention: Duration,
    ) -> Result<(), StoreError>;

    /// The tenant's retention overrides.
    async fn retention_overrides(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<RetentionOverride>, StoreError>;

    /// Every tenant with stored data or overrides.
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Brings the stored data of every tenant to its settled form now — what it becomes by itself once
    /// writes pause: the embedded engine flushes its head to parts and compacts them; ClickHouse merges
    /// the points table's parts (`OPTIMIZE ... FINAL`). Answers do not change. For operators (before
    /// a filesystem snapshot) and benchmarks (settled bytes on disk).
    async fn settle(&self) -> Result<(), StoreError>;

    /// Current health.
    async fn health(&self) -> StorageHealth;

    /// Why this process must be restarted to serve again, if it must: a state only a restart
    /// recovers from (the embedded engine poisoned by a failed write or fsync, whose WAL replay is the
    /// recovery). `GET /api/v1/health/live` fails on it, so an orchestrator restarts the process for
    /// this and for nothing else — not for a full disk or an unreachable ClickHouse, which a restart
    /// does not cure. A wrapper forwards its inner store's. Default: never.
    fn restart_needed(&self) -> Option<String> {
        None
    }

    /// The backend's named health checks besides `storage` (which is [`MetricsStore::health`]), each
    /// a probe the server runs concurrently with the others, bounds by a deadline and times. A wrapper
    /// forwards its inner store's. Default: none.
    fn checks(&self) -> Vec<HealthCheck> {
        Vec::new()
    }

    /// An online, consistent snapshot of everything the backend stores, for a backup: files that, written
    /// under an empty directory, make a store that answers as this one did for every write acknowledged
    /// before the call (and possibly some after), pinned until the snapshot is dropped. The server
    /// holds it while a client downloads it ([`crate::backup`]). A wrapper forwards its inner store's.
    /// Default: [`SnapshotError::Unsupported`].
    async fn snapshot(&self) -> Result<Arc<dyn StoreSnapshot>, SnapshotError> {
        Err(SnapshotError::Unsupported {
            backend: self.backend_name(),
            message: format!(
                "the {} backend does not take snapshots",
                self.backend_name()
            ),
        })
    }

    /// Makes everything accepted durable and releases resources; called once on graceful shutdown.
    async fn close(&self) -> Result<(), StoreError>;

    /// Starts streaming every point `plan` selects (`POST /api/v1/export`), in batches of at most
    /// [`crate::export::EXPORT_BATCH_POINTS`], each series' points in runs ordered by timestamp.
    /// Memory stays bounded whatever the export's size: the backend reads on only as the
    /// stream is consumed, and stops when it is dropped. No deadline applies (the caller bounds how
    /// many run at once). A write that lands while an export runs may or may not be in it; the order
    /// of series and whether a series comes in one run are the backend's to document. Failing here
    /// means nothing was read; failing in the stream ends the export there. A wrapper forwards its
    /// inner store's. Default: `Unavailable` (a store that cannot export).
    async fn export(&self, tenant: &Tenant, plan: &ExportPlan) -> Result<ExportStream, StoreError> {
        let _ = (tenant, plan);
        Err(StoreError::Unavailable {
            reason: format!("the {} backend cannot export", self.backend_name()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_times_out_and_cancels() {
        let ctx = QueryContext::new(Duration::from_secs(60));
        assert!(ctx.check().is_ok());
        let clone = ctx.clone();
        ctx.cancel();
        assert_eq!(
            clone.check(),
            Err(StoreError::Timeout {
                timeout: Duration::from_secs(60)
            })
        );
        let expired = QueryContext::new(Duration::ZERO);
        assert!(expired.check().is_err());
    }

    #[test]
    fn a_timeout_past_the_clock_never_expires_and_still_cancels() {
        let ctx = QueryContext::new(Duration::MAX);
        assert!(ctx.check().is_ok());
        assert_eq!(ctx.remaining(), Duration::MAX);
        ctx.cancel();
        assert!(ctx.check().is_err());
    }

    #[test]
    fn a_held_resource_lives_as_long_as_the_last_clone_of_the_context() {
        let resource: Arc<dyn Any + Send + Sync> = Arc::new(());
        let watch = Arc::downgrade(&resource);
        let ctx = QueryContext::new(Duration::from_secs(60)).holding(resource);
        let worker = ctx.clone();
        ctx.cancel();
        drop(ctx);
        assert!(watch.upgrade().is_some(), "the worker still runs");
        assert!(worker.check().is_err());
        drop(worker);
        assert!(watch.upgrade().is_none());
    }

    #[test]
    fn check_statuses_are_spelled_as_the_health_route_shows_them() {
        let spelled: Vec<serde_json::Value> =
            [CheckStatus::Pass, CheckStatus::Warn, CheckStatus::Fail]
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect();
        assert_eq!(spelled, ["pass", "warn", "fail"]);
        let warned = CheckOutcome::warn("low".into());
        assert_eq!(
            warned.clone().with_message("lower".into()),
            CheckOutcome {
                status: CheckStatus::Warn,
                message: Some("lower".into())
            }
        );
        assert_eq!(CheckOutcome::pass().message, None);
    }
}
