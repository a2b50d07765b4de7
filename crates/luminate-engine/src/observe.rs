//! observe: what the engine tells its embedder as it works, for the embedder's own metrics. The engine
//! depends on no metrics library; the server implements [`EngineObserver`] with its Prometheus
//! counters and histograms (issue 6). Gauges (series, head size, parts, WAL size) are not events: the
//! embedder reads them with [`crate::Engine::stats`] on its own schedule.

use std::fmt::Debug;
use std::time::Duration;

use luminate_model::Tenant;

/// Receives the engine's events. Called on the engine's own threads (the writer, the flusher, the
/// compactor), often while the writer holds no lock but is the only writer: an implementation must be
/// cheap and never block (an atomic add, a histogram observation).
pub trait EngineObserver: Send + Sync + Debug {
    /// One record of `bytes` payload bytes was appended to the WAL.
    fn wal_appended(&self, bytes: u64) {
        let _ = bytes;
    }

    /// A WAL fsync took `elapsed`; `ok` is false when it failed (which poisons the engine).
    fn wal_synced(&self, elapsed: Duration, ok: bool) {
        let _ = (elapsed, ok);
    }

    /// A write(2) to the WAL failed (which poisons the engine).
    fn wal_write_failed(&self) {}

    /// `operation` found no space on the data directory's file system and kept nothing of what it
    /// wrote: `write` (a write or delete refused, or a WAL segment not created), `flush` or `compaction`
    /// (an attempt that is retried). Nothing is poisoned (`crate::space`).
    fn no_space(&self, operation: &'static str) {
        let _ = operation;
    }

    /// A frozen head was flushed to parts in `elapsed`; `ok` is false when the flush failed.
    fn flushed(&self, elapsed: Duration, ok: bool) {
        let _ = (elapsed, ok);
    }

    /// `tenant` passed 80 % of the cardinality limit `limit` (`max_unique_series_per_metric` or
    /// `max_metrics_per_tenant`); the engine has logged it.
    fn cardinality_warning(&self, tenant: &Tenant, limit: &'static str) {
        let _ = (tenant, limit);
    }

    /// One compaction job (a partition's parts merged into one) ran for `elapsed`.
    fn compacted(&self, elapsed: Duration, ok: bool) {
        let _ = (elapsed, ok);
    }
}

/// The observer of an engine nobody watches.
#[derive(Debug, Default)]
pub struct Unobserved;

impl EngineObserver for Unobserved {}
