//! Luminate's embedded storage engine: a durable head of recent data behind a write-ahead log.
//!
//! A synchronous API with its own writer thread; no tokio, no HTTP. The server wraps it in a
//! `MetricsStore`. Modules, one layer calling the next:
//! - `commit`: the writer thread — orders writes, assigns series ids, group-commits the WAL, applies
//!   each record (through `apply`, as replay does) to the index and the head;
//! - `wal`: segmented log of opaque checksummed records; `record`: the typed payloads;
//! - `index`: the long-lived series index — interned strings, series ids, postings, discovery counters;
//! - `head`: the flushable buffer of recent points, in columns per metric;
//! - `exec`: query execution over the index and the head's columns, in parallel on the engine's pool;
//! - `retention`, `lock`, `files`: metadata, the directory lock, durable file operations.
//!
//! Owns the data directory's layout: `LOCK`, `wal/`, `retention.json`. Does not own validation,
//! quotas or tenants' identity (the server's), nor on-disk columnar parts (a later issue).

#![deny(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod apply;
mod commit;
mod exec;
mod files;
mod head;
mod index;
mod lock;
mod part;
mod record;
mod retention;
mod wal;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use luminate_model::result::{MetricCardinality, QueryResult, ValueCount};
use luminate_model::store::{
    HealthStatus, QueryContext, RetentionOverride, StorageHealth, StoreError, WriteOutcome,
};
use luminate_model::{Point, QueryPlan, Tenant, TimestampMs};

use crate::commit::{Request, Shared};
use crate::files::{create_dir_durable, io_error};
use crate::head::Head;
use crate::index::Index;
use crate::lock::DirLock;
use crate::record::{DeleteBefore, Record};
use crate::retention::RetentionStore;

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
        Self {
            data_dir: data_dir.into(),
            sync: SyncPolicy::Always,
            wal_segment_bytes: 64 << 20,
            limits: CardinalityLimits::default(),
        }
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

/// Memory held by the engine's in-memory structures (heap capacities, not RSS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Series defined, over every tenant (live or not).
    pub series: u64,
    /// Bytes of the series index: interned strings, series table, lookup table, postings, counters.
    pub index_bytes: u64,
    /// Points buffered in the head.
    pub head_points: u64,
    /// Bytes of the head's columns.
    pub head_bytes: u64,
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
            EngineError::Poisoned { .. } | EngineError::Locked { .. } => StoreError::Unavailable {
                reason: e.to_string(),
            },
            other => StoreError::Internal {
                message: other.to_string(),
            },
        }
    }
}

/// The embedded engine. `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    data_dir: PathBuf,
    shared: Arc<Shared>,
    requests: SyncSender<Request>,
    // Taken by `Drop`, which stops the writer and waits for it.
    writer: Option<JoinHandle<()>>,
    retention: RetentionStore,
    report: RecoveryReport,
    /// Scans of one query run on it in parallel; bounded, so queries cannot take every core.
    query_pool: rayon::ThreadPool,
    // Declared last: dropped after `Drop::drop` has stopped the writer, so the lock outlives every
    // handle on the directory's files.
    _lock: DirLock,
}

impl Engine {
    /// Locks the data directory, replays the WAL and starts the writer thread.
    pub fn open(config: EngineConfig) -> Result<Self, EngineError> {
        let data_dir = config.data_dir;
        create_dir_durable(&data_dir)?;
        let lock = DirLock::acquire(&data_dir)?;
        let retention = RetentionStore::load(&data_dir)?;
        let (mut index, mut head) = (Index::default(), Head::default());
        let (wal, replayed) = wal::Wal::open(
            &data_dir,
            config.wal_segment_bytes,
            |path, offset, payload| replay_record(&mut index, &mut head, path, offset, payload),
        )?;
        let report = RecoveryReport {
            records_replayed: replayed.records,
            dropped: replayed.dropped,
        };
        tracing::info!(
            data_dir = %data_dir.display(), records = report.records_replayed, dropped_tails = report.dropped.len(),
            "embedded engine recovered its WAL"
        );
        let shared = Arc::new(Shared::new(index, head));
        let query_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(query_threads())
            .thread_name(|i| format!("luminate-query-{i}"))
            .build()
            .map_err(|e| EngineError::Io {
                op: "start the query threads for",
                path: data_dir.clone(),
                source: std::io::Error::other(e),
            })?;
        let (requests, receiver) = mpsc::sync_channel(commit::QUEUE_DEPTH);
        let writer = commit::spawn(
            wal,
            Arc::clone(&shared),
            config.sync,
            config.limits,
            receiver,
        )
        .map_err(io_error("start the WAL writer thread for", &data_dir))?;
        Ok(Self {
            data_dir,
            shared,
            requests,
            writer: Some(writer),
            retention,
            report,
            query_pool,
            _lock: lock,
        })
    }

    /// What recovery found when the engine was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Appends to the WAL (waiting for fsync under `SyncPolicy::Always`), then applies to the head.
    ///
    /// Points that would pass a [`CardinalityLimits`] limit are rejected (by index) and the others
    /// stored. All accepted points of one call are one WAL record: after a crash, all or none are there.
    pub fn write(&self, tenant: &Tenant, points: Vec<Point>) -> Result<WriteOutcome, EngineError> {
        self.request(|reply| Request::Write {
            tenant: tenant.clone(),
            points,
            reply,
        })
    }

    /// Runs a query over the index and the head.
    ///
    /// The index lock is held while the plan's series and groups are resolved, the head lock only while
    /// its rows are scanned (taken before the index lock is released, so the query sees whole batches),
    /// and the index lock again to build the strings of the answer.
    pub fn query(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, EngineError> {
        let max = exec::MAX_QUERY_VALUES;
        let index = self.shared.read_index();
        let prepared = exec::prepare(index.tenant(tenant), plan, ctx)?;
        let partial = {
            let head = self.shared.read_head();
            drop(index);
            let sources = prepared
                .metric()
                .map(|m| head.rows(tenant, m))
                .unwrap_or_default();
            exec::scan(&prepared, &sources, ctx, max, &self.query_pool)?
        };
        let index = self.shared.read_index();
        Ok(exec::finish(
            &prepared,
            partial,
            index.tenant(tenant),
            ctx,
            max,
        )?)
    }

    /// Sorted metric names with stored points.
    pub fn metric_names(&self, tenant: &Tenant) -> Vec<String> {
        self.shared.read_index().metric_names(tenant)
    }

    /// Sorted dimension keys; `None` for an unknown metric.
    pub fn dimension_keys(&self, tenant: &Tenant, metric: &str) -> Option<Vec<String>> {
        self.shared.read_index().dimension_keys(tenant, metric)
    }

    /// Values by stored points descending, ties by value.
    pub fn dimension_values(
        &self,
        tenant: &Tenant,
        metric: &str,
        key: &str,
        prefix: &str,
        limit: usize,
    ) -> Option<Vec<ValueCount>> {
        self.shared
            .read_index()
            .dimension_values(tenant, metric, key, prefix, limit)
    }

    /// Series per metric and distinct values per key, largest first.
    pub fn cardinality(&self, tenant: &Tenant, metric: Option<&str>) -> Vec<MetricCardinality> {
        self.shared.read_index().cardinality(tenant, metric)
    }

    /// Deletes points `< before` (logged in the WAL, so it survives restart).
    pub fn delete_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> Result<u64, EngineError> {
        let delete = DeleteBefore {
            tenant: tenant.clone(),
            metric: metric.to_owned(),
            before,
        };
        self.request(|reply| Request::Delete { delete, reply })
    }

    /// Persists a retention override.
    pub fn set_retention(
        &self,
        tenant: &Tenant,
        metric: &str,
        retention: Duration,
    ) -> Result<(), EngineError> {
        self.retention.set(tenant, metric, retention)
    }

    /// The tenant's retention overrides, by metric name.
    pub fn retention_overrides(&self, tenant: &Tenant) -> Vec<RetentionOverride> {
        self.retention.of(tenant)
    }

    /// Tenants with data or overrides.
    pub fn tenants(&self) -> Vec<Tenant> {
        let mut tenants: Vec<Tenant> = self.shared.read_index().live_tenants().cloned().collect();
        tenants.extend(self.retention.tenants());
        tenants.sort();
        tenants.dedup();
        tenants
    }

    /// What the index and the head hold in memory (walks every tenant and metric: not for hot paths).
    pub fn memory(&self) -> MemoryUsage {
        let (index_bytes, series) = self.shared.read_index().usage();
        let head = self.shared.read_head();
        MemoryUsage {
            series,
            index_bytes: index_bytes as u64,
            head_points: head.points(),
            head_bytes: head.heap_bytes() as u64,
        }
    }

    /// Healthy unless poisoned; disk use of the data directory.
    pub fn health(&self) -> StorageHealth {
        let disk_used_bytes = files::disk_used_bytes(&self.data_dir);
        match self.shared.poisoned() {
            None => StorageHealth {
                status: HealthStatus::Healthy,
                disk_used_bytes,
                error: None,
            },
            Some(reason) => StorageHealth {
                status: HealthStatus::Unavailable,
                disk_used_bytes,
                error: Some(format!(
                    "engine is poisoned after a failed write or fsync: {reason}"
                )),
            },
        }
    }

    /// Forces everything written to stable storage (shutdown under `Interval`/`None` policies).
    pub fn sync(&self) -> Result<(), EngineError> {
        self.request(|reply| Request::Sync { reply })
    }

    /// Hands a request to the writer thread and waits for its answer.
    fn request<T>(
        &self,
        make: impl FnOnce(SyncSender<Result<T, EngineError>>) -> Request,
    ) -> Result<T, EngineError> {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.requests.send(make(reply)).is_err() {
            return Err(self.shared.poisoned_error());
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(self.shared.poisoned_error()))
    }
}

/// Applies one replayed WAL record to the index and head; a record that does not decode or fit is
/// corruption.
fn replay_record(
    index: &mut Index,
    head: &mut Head,
    path: &std::path::Path,
    offset: u64,
    payload: &[u8],
) -> Result<(), EngineError> {
    let corruption = |reason: String| EngineError::Corruption {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    match Record::decode(payload) {
        Err(e) => Err(corruption(format!(
            "undecodable record (payload byte {}): {}",
            e.offset, e.reason
        ))),
        Ok(Record::Write(batch)) => apply::apply_batch(index, head, &batch).map_err(corruption),
        Ok(Record::DeleteBefore(d)) => {
            apply::apply_delete(index, head, &d);
            Ok(())
        }
    }
}

/// Threads of the query pool: one per core (the machine's cores are the budget), at least one.
fn query_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The writer commits what is staged, fsyncs and exits; wait so the WAL is closed before the lock
        // is released.
        let _ = self.requests.send(Request::Shutdown);
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(data_dir = %self.data_dir.display(), "the WAL writer thread panicked");
        }
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.data_dir)
            .field("poisoned", &self.shared.poisoned())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn engine_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<super::Engine>();
    }
}
