//! config: how the engine is opened — the data directory, durability ([`SyncPolicy`]), cardinality
//! limits and the thresholds of flush, compaction and part summaries. Plain values with defaults; the
//! server maps its configuration file onto them, and validates them there.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::observe::{self, EngineObserver};
use crate::part;

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
        Self {
            max_series_per_metric: 1_000_000,
            max_metrics_per_tenant: 1_000,
        }
    }
}

/// How long and how many idempotency keys the engine remembers ([`crate::Engine::write_keyed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWindow {
    /// A key is remembered this long after its write was logged (by the wall clock, so across restarts).
    pub ttl: Duration,
    /// Keys remembered at most; the oldest is forgotten first.
    pub capacity: usize,
}

impl Default for KeyWindow {
    /// The contract's window: 10 minutes, 100 000 keys.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            capacity: 100_000,
        }
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
    /// The head is frozen and flushed to parts once it holds this many points.
    pub head_max_points: u64,
    /// ... or once its first point is this old.
    pub head_max_age: Duration,
    /// A partition (tenant, metric, day) with this many parts is merged into one.
    pub compaction_min_parts: usize,
    /// Rows a block summary must stand for, on average, for a part to carry block summaries (docs/
    /// engine.md, "Parts"); `0` summarises every part.
    pub summary_min_rows: u64,
    /// The window of idempotency keys logged with their writes.
    pub keys: KeyWindow,
    /// Told of WAL appends, fsyncs, flushes and compactions (the embedder's metrics).
    pub observer: Arc<dyn EngineObserver>,
}

impl EngineConfig {
    /// Defaults for `data_dir`: fsync always, 64 MiB segments, the contract's limits, a flush every
    /// 2M points or 10 minutes, partitions merged at 4 parts, idempotency keys remembered 10 minutes.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            sync: SyncPolicy::Always,
            wal_segment_bytes: 64 << 20,
            limits: CardinalityLimits::default(),
            head_max_points: 2_000_000,
            head_max_age: Duration::from_secs(600),
            compaction_min_parts: 4,
            summary_min_rows: part::DEFAULT_SUMMARY_MIN_ROWS,
            keys: KeyWindow::default(),
            observer: Arc::new(observe::Unobserved),
        }
    }
}
