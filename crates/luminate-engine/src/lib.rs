//! Luminate's embedded storage engine (API skeleton: bodies are being written).
//!
//! A synchronous API with its own threads; no tokio, no HTTP. The server wraps it in a `MetricsStore`.

use std::path::PathBuf;
use std::time::Duration;

use luminate_model::result::{MetricCardinality, QueryResult, ValueCount};
use luminate_model::store::{QueryContext, RetentionOverride, StorageHealth, StoreError, WriteOutcome};
use luminate_model::{Point, QueryPlan, Tenant, TimestampMs};

/// When an accepted write reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before acknowledging (group commit). A power loss loses nothing acknowledged.
    Always,
    /// Acknowledge after write(2); fsync every interval. A power loss may lose up to one interval of
    /// acknowledged writes; a process crash loses nothing.
    Interval(Duration),
    /// Never fsync explicitly; the OS flushes. A power loss may lose any recent writes.
    None,
}

/// Per-tenant cardinality limits enforced at write time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardinalityLimits {
    /// New series of one metric beyond this are rejected with `CARDINALITY_EXCEEDED`.
    pub max_series_per_metric: u64,
    /// New metrics of one tenant beyond this are rejected with `CARDINALITY_EXCEEDED`.
    pub max_metrics_per_tenant: u64,
}

impl Default for CardinalityLimits {
    fn default() -> Self {
        Self { max_series_per_metric: 1_000_000, max_metrics_per_tenant: 1_000 }
    }
}

/// How the engine is opened.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Directory holding the WAL, the lock file and metadata.
    pub data_dir: PathBuf,
    /// Durability of acknowledged writes.
    pub sync: SyncPolicy,
    /// Size at which the WAL rolls to a new segment.
    pub wal_segment_bytes: u64,
    /// Cardinality limits.
    pub limits: CardinalityLimits,
}

impl EngineConfig {
    /// Defaults for `data_dir`: fsync always, 64 MiB segments, the contract's limits.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), sync: SyncPolicy::Always, wal_segment_bytes: 64 << 20, limits: CardinalityLimits::default() }
    }
}

/// What opening the engine found in the WAL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Complete records replayed.
    pub records_replayed: u64,
    /// Bytes dropped from a torn or corrupted tail, with the segment and offset where they started.
    pub dropped: Vec<DroppedTail>,
}

/// A torn or corrupted tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTail {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the first byte dropped.
    pub offset: u64,
    /// Bytes dropped.
    pub bytes: u64,
    /// Why (short checksum mismatch, truncated header, ...).
    pub reason: String,
}

/// Engine failures, with the file and operation involved.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another process holds the data directory.
    #[error("data directory {path} is locked by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file holds bytes that cannot be what the engine wrote (outside the tolerated torn tail).
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corruption {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// An fsync or write failed earlier; the engine refuses further writes rather than lose data silently.
    #[error("engine is poisoned after a failed write or fsync: {reason}")]
    Poisoned {
        /// The original failure.
        reason: String,
    },
    /// A query-level failure (timeout, too large).
    #[error(transparent)]
    Query(#[from] StoreError),
}

impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Query(q) => q,
            EngineError::Poisoned { .. } | EngineError::Locked { .. } => StoreError::Unavailable { reason: e.to_string() },
            other => StoreError::Internal { message: other.to_string() },
        }
    }
}

/// The embedded engine. `Send + Sync`: share it behind an `Arc`.
#[derive(Debug)]
pub struct Engine {}

#[allow(unused_variables, clippy::missing_errors_doc)]
impl Engine {
    /// Locks the data directory, replays the WAL and starts the writer thread.
    pub fn open(config: EngineConfig) -> Result<Self, EngineError> {
        todo!()
    }
    /// What recovery found when the engine was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        todo!()
    }
    /// Appends to the WAL (waiting for fsync under `SyncPolicy::Always`), then applies to the head.
    pub fn write(&self, tenant: &Tenant, points: Vec<Point>) -> Result<WriteOutcome, EngineError> {
        todo!()
    }
    /// Runs a query over the head.
    pub fn query(&self, tenant: &Tenant, plan: &QueryPlan, ctx: &QueryContext) -> Result<QueryResult, EngineError> {
        todo!()
    }
    /// Sorted metric names with stored points.
    pub fn metric_names(&self, tenant: &Tenant) -> Vec<String> {
        todo!()
    }
    /// Sorted dimension keys; `None` for an unknown metric.
    pub fn dimension_keys(&self, tenant: &Tenant, metric: &str) -> Option<Vec<String>> {
        todo!()
    }
    /// Values by stored points descending, ties by value.
    pub fn dimension_values(&self, tenant: &Tenant, metric: &str, key: &str, prefix: &str, limit: usize) -> Option<Vec<ValueCount>> {
        todo!()
    }
    /// Series per metric and distinct values per key, largest first.
    pub fn cardinality(&self, tenant: &Tenant, metric: Option<&str>) -> Vec<MetricCardinality> {
        todo!()
    }
    /// Deletes points `< before` (logged in the WAL, so it survives restart).
    pub fn delete_before(&self, tenant: &Tenant, metric: &str, before: TimestampMs) -> Result<u64, EngineError> {
        todo!()
    }
    /// Persists a retention override.
    pub fn set_retention(&self, tenant: &Tenant, metric: &str, retention: Duration) -> Result<(), EngineError> {
        todo!()
    }
    /// The tenant's retention overrides, by metric name.
    pub fn retention_overrides(&self, tenant: &Tenant) -> Vec<RetentionOverride> {
        todo!()
    }
    /// Tenants with data or overrides.
    pub fn tenants(&self) -> Vec<Tenant> {
        todo!()
    }
    /// Healthy unless poisoned; disk use of the data directory.
    pub fn health(&self) -> StorageHealth {
        todo!()
    }
    /// Forces everything written to stable storage (shutdown under `Interval`/`None` policies).
    pub fn sync(&self) -> Result<(), EngineError> {
        todo!()
    }
}
