//! Luminate's embedded storage engine: a durable head of recent data behind a write-ahead log, flushed
//! to immutable columnar parts on disk.
//!
//! A synchronous API with its own threads; no tokio, no HTTP. The server wraps it in a `MetricsStore`.
//! Modules by layer: none imports from a layer above its own, and within a layer imports go one way
//! (docs/engine.md, "Modules"):
//! - this file: the [`Engine`] facade — opens the directory, starts the threads, answers the API — and
//!   the re-exports of `config` (how the engine is opened) and `error` (what can fail); `query`, the
//!   facade's query calls: the locks a query takes, the snapshot it reads, its retry without a damaged
//!   part;
//! - the threads, which do not import each other: `commit`, the writer thread — orders writes,
//!   assigns series ids, group-commits the WAL, applies each record (through `apply`, as replay does)
//!   to the index and the head, freezes a full head and hands it over as a `flush::FlushJob` (its one
//!   import of a thread module); `flush`, the flusher thread — series log, one part per (tenant,
//!   metric, day), manifest swap, WAL truncation; `compact`, the compactor thread — drops, rewrites
//!   and merges parts;
//! - `shared`: the state they all share — the locks and their order, the catalog, the poison flag;
//!   `contain`: a damaged part set aside under those locks (for a query or a compaction job);
//! - `recovery`: start-up — reads the whole directory before it changes anything in it; `exec`: query
//!   execution over head rows and parts, in parallel on the engine's pool; `export`: every point of
//!   a selection, streamed in batches with bounded memory; `apply`, `newest`: what
//!   the writer thread and replay do to the index and the head; `keys`: the window of idempotency keys
//!   they rebuild; `check`, `repair`: the offline verification and repair of a data directory
//!   (`luminate check`, `luminate repair`);
//! - the data: `stored`, the immutable snapshot of frozen head and parts that queries read, and
//!   tombstones; `index`, the long-lived series index — interned strings, series ids, postings,
//!   discovery counters; `head`, the flushable buffer of recent points, in columns per metric;
//!   `part`, the part file format, and `part::sink`, which writes a partition's parts for flush and
//!   compaction; `series_log`, the series definitions parts refer to; `manifest`, the live parts and
//!   where replay starts; `quarantine`, damaged parts set aside and their records; `wal`, the segmented log of opaque checksummed records (the WAL and the
//!   series log); `record`, their typed payloads; `config`, the settings the engine is opened with
//!   (the index applies its limits; its defaults come from `part` and `observe`);
//! - `backup`: the snapshots of [`Engine::snapshot`], whose logs the writer thread pins while it
//!   pauses (`Request::Pause`, handed over by this file);
//! - leaves: `files` (durable file operations), `lock` (the directory lock), `retention`,
//!   `dashboards`, `observe`, and `error`, which imports no other module.
//!
//! Owns the data directory's layout: `LOCK`, `MANIFEST`, `wal/`, `series/`, `parts/`,
//! `retention.json`, `quarantine/`, `backups/` (docs/engine.md). Does not own validation, quotas or tenants' identity (the
//! server's).

#![deny(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod apply;
mod backup;
mod buffer;
pub mod check;
mod commit;
mod compact;
mod config;
mod contain;
pub mod dashboards;
mod error;
mod exec;
mod export;
mod files;
mod flush;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod head;
mod index;
mod keys;
mod lock;
mod manifest;
mod newest;
pub mod observe;
mod part;
pub mod quarantine;
mod query;

/// The column codec of parts (pco, with the engine's settings), public for the codec
/// micro-benchmark (`examples/codec_bench.rs`): what it measures is what parts store.
pub mod codec {
    pub use crate::part::{Delta, PagedColumn, SUBPAGE_ROWS, compress, compress_paged, decompress};
}
mod record;
mod recovery;
pub mod repair;
mod retention;
#[cfg(test)]
mod seeded;
mod series_log;
mod shared;
mod space;
mod stored;
mod wal;
mod windows;

use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use luminate_model::keyed::{KeyedOutcome, KeyedWrite};
use luminate_model::result::{MetricCardinality, ValueCount};
use luminate_model::store::{HealthStatus, RetentionOverride, StorageHealth, WriteOutcome};
use luminate_model::{ExportBatch, ExportPlan, Point, PointBatch, Tenant, TimestampMs};

pub use backup::Snapshot;
pub use config::{CardinalityLimits, EngineConfig, KeyWindow, SyncPolicy};
pub use error::{DroppedTail, EngineError};
pub use observe::EngineObserver;
pub use quarantine::QuarantinedPart;
pub use recovery::RecoveryReport;

use crate::commit::{Found, Request, WriteRule};
use crate::files::{create_dir_durable, io_error};
use crate::lock::DirLock;
use crate::record::DeleteBefore;
use crate::retention::RetentionStore;
use crate::shared::{Catalog, Shared};

/// Memory held by the engine's in-memory structures (heap capacities, not RSS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Series defined, over every tenant (live or not).
    pub series: u64,
    /// Bytes of the series index: interned strings, series table, lookup table, postings, counters,
    /// and the newest sample per series the protocol ingest rule compares with.
    pub index_bytes: u64,
    /// Points buffered in the head (the active one and the one being flushed).
    pub head_points: u64,
    /// Bytes of the head's columns.
    pub head_bytes: u64,
}

/// The engine's gauges at one moment ([`Engine::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// The index and the head.
    pub memory: MemoryUsage,
    /// Live part files.
    pub parts: u64,
    /// WAL segment files (the series log not included).
    pub wal_segments: u64,
    /// Bytes of those segments.
    pub wal_bytes: u64,
    /// Bytes of every file under the data directory.
    pub disk_bytes: u64,
    /// Damaged parts set aside in `quarantine/` (`luminate_quarantined_parts`).
    pub quarantined_parts: u64,
}

/// The embedded engine. `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    data_dir: PathBuf,
    shared: Arc<Shared>,
    requests: SyncSender<Request>,
    // Taken by `Drop`, which stops the writer, then the flusher, then the compactor, and waits for each.
    writer: Option<JoinHandle<()>>,
    flusher: Option<JoinHandle<()>>,
    compactor: Option<JoinHandle<()>>,
    compaction_min_parts: usize,
    retention: RetentionStore,
    report: RecoveryReport,
    /// Scans of one query run on it in parallel; bounded, so queries cannot take every core.
    query_pool: rayon::ThreadPool,
    /// Held by a WAL probe: concurrent health checks share the probe file's name.
    wal_probe: Mutex<()>,
    // Declared last: dropped after `Drop::drop` has stopped the writer, so the lock outlives every
    // handle on the directory's files.
    _lock: DirLock,
}

impl Engine {
    /// Locks the data directory and recovers its state (`recovery`): reads the manifest, its parts,
    /// the series log and the WAL from the manifest's segment without changing anything, then — only
    /// if every check passed — cuts torn log tails, removes the files the manifest proves are garbage,
    /// and starts the writer, flusher and compactor threads. A corrupt part, log or manifest is
    /// `Corruption`, a lost manifest or WAL segment `Missing`: the engine refuses to open rather than
    /// serve wrong data, and leaves the directory as it was.
    pub fn open(config: EngineConfig) -> Result<Self, EngineError> {
        let data_dir = config.data_dir;
        create_dir_durable(&data_dir)?;
        let lock = DirLock::acquire(&data_dir)?;
        let retention = RetentionStore::load(&data_dir)?;
        let quarantined = quarantine::load(&data_dir)?;
        let recovery::Recovered {
            manifest,
            parts,
            index,
            head,
            series_log,
            wal,
            keys,
            report,
        } = recovery::Recovery::read(&data_dir, config.keys)?.commit(config.wal_segment_bytes)?;
        tracing::info!(
            data_dir = %data_dir.display(), parts = parts.len(), records = report.records_replayed,
            dropped_tails = report.dropped.len(), "embedded engine recovered its parts and WAL"
        );
        let wal_dir = wal.dir().to_path_buf();
        let catalog = Catalog {
            wal_start: manifest.wal_start,
            next_part: manifest.next_part,
        };
        // A record whose part the manifest still lists is a set-aside a crash interrupted: the part
        // is live, and is set aside again when a query meets its damage.
        let quarantined: Vec<QuarantinedPart> = quarantined
            .into_iter()
            .filter(|r| !parts.iter().any(|lp| lp.file == r.file))
            .collect();
        for r in &quarantined {
            tracing::warn!(
                file = %r.file, reason = %r.reason, held = %r.held(),
                "a quarantined part's points are missing: queries over them are flagged partial"
            );
        }
        // Snapshots of an earlier run pinned files for backups that can no longer be downloaded.
        backup::remove_leftovers(&data_dir);
        let head_has_points = head.points() > 0;
        let shared = Arc::new(Shared::new(
            data_dir.clone(),
            config.summary_min_rows,
            config.observer,
            catalog,
            index,
            head,
            stored::Stored {
                frozen: None,
                parts,
            },
        ));
        for r in quarantined {
            shared.add_quarantined(r);
        }
        shared.set_series_log_end(series_log.end());
        let query_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(query_threads())
            .thread_name(|i| format!("luminate-query-{i}"))
            .build()
            .map_err(|e| EngineError::Io {
                op: "start the query threads for",
                path: data_dir.clone(),
                source: std::io::Error::other(e),
            })?;
        let (compact_tx, compact_rx) = mpsc::sync_channel(1);
        let compactor = compact::spawn(
            Arc::clone(&shared),
            compact::Policy::Tiered {
                min_parts: config.compaction_min_parts,
            },
            compact_rx,
        )
        .map_err(io_error("start the compactor thread for", &data_dir))?;
        let _ = compact_tx.try_send(());
        let (jobs_tx, jobs_rx) = mpsc::sync_channel(1);
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let flusher = flush::Flusher {
            shared: Arc::clone(&shared),
            series_log,
            wal_dir,
            compact: compact_tx.clone(),
        }
        .spawn(jobs_rx, done_tx)
        .map_err(io_error("start the flusher thread for", &data_dir))?;
        let (requests, receiver) = mpsc::sync_channel(commit::QUEUE_DEPTH);
        let flush_control = commit::FlushControl {
            max_points: config.head_max_points.max(1),
            max_age: config.head_max_age,
            jobs: jobs_tx,
            done: done_rx,
            compact: compact_tx,
            flushing: false,
            head_since: head_has_points.then(std::time::Instant::now),
            retry_at: None,
        };
        let writer = commit::spawn(
            commit::Logged { wal, keys },
            Arc::clone(&shared),
            config.sync,
            config.limits,
            flush_control,
            receiver,
            requests.clone(),
        )
        .map_err(io_error("start the WAL writer thread for", &data_dir))?;
        Ok(Self {
            data_dir,
            shared,
            requests,
            writer: Some(writer),
            flusher: Some(flusher),
            compactor: Some(compactor),
            compaction_min_parts: config.compaction_min_parts,
            retention,
            report,
            query_pool,
            wal_probe: Mutex::new(()),
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
    /// A batch holding a value that is not finite is refused whole (`Io` with `InvalidInput`, naming
    /// the point), before anything is logged.
    pub fn write(&self, tenant: &Tenant, points: Vec<Point>) -> Result<WriteOutcome, EngineError> {
        self.write_batch(tenant, Arc::new(PointBatch::from_points(points)))
    }

    /// [`Engine::write`] of a batch. The points of series that already hold points are resolved here,
    /// on the caller's thread, so that concurrent writers share that work; the writer thread resolves
    /// only the rest (new series, and those a delete emptied meanwhile).
    pub fn write_batch(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, EngineError> {
        self.write_as(tenant, batch, WriteRule::All, None)
            .map(|written| written.outcome)
    }

    /// [`Engine::write_batch`] of a batch sent with an idempotency key. When the window remembers
    /// `(tenant, keyed.key)` — a write with it was logged within [`KeyWindow::ttl`], before a restart
    /// or not — nothing is stored and the first write's answer is returned
    /// ([`KeyedOutcome::Replayed`]). Otherwise the batch is stored as by `write_batch`, its answer built
    /// by `keyed.respond` from the outcome on the writer thread, and the key and the answer logged in the
    /// batch's WAL record: a batch is never replayed without its key, nor a key without its batch. A
    /// write that stores no point logs nothing, and its key is not remembered. Keys survive flushes
    /// (carried over into the segment replay starts from) for the rest of their TTL.
    pub fn write_keyed(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, EngineError> {
        let written = self.write_as(tenant, batch, WriteRule::All, Some(keyed))?;
        let response = written.response.ok_or_else(|| {
            EngineError::Query(luminate_model::StoreError::Internal {
                message: "the writer thread answered a keyed write without its answer".to_owned(),
            })
        })?;
        Ok(if written.replayed {
            KeyedOutcome::Replayed(response)
        } else {
            KeyedOutcome::Stored {
                outcome: written.outcome,
                response,
            }
        })
    }

    /// [`Engine::write_batch`] of samples received through an ingestion protocol: per series, a sample
    /// is stored only when its timestamp is after the newest sample the series holds (whichever write
    /// stored it), so a retried or resent batch stores nothing twice. The others are counted in
    /// [`WriteOutcome::duplicates`] (equal to the newest) and [`WriteOutcome::out_of_order`]. Exact
    /// between concurrent writes (the writer thread orders them) and across restarts: the newest is
    /// rebuilt from the WAL at start and read from parts the first time a series is written so.
    pub fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, EngineError> {
        self.write_as(tenant, batch, WriteRule::NewerOnly, None)
            .map(|written| written.outcome)
    }

    fn write_as(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        rule: WriteRule,
        keyed: Option<KeyedWrite>,
    ) -> Result<commit::Written, EngineError> {
        // The model's points hold finite values (every API checks before it writes); a NaN or an
        // infinity let in here would be logged and then refused by the part writer at every flush.
        if let Some((i, p)) = batch.iter().enumerate().find(|(_, p)| !p.value.is_finite()) {
            return Err(EngineError::Io {
                op: "write",
                path: self.data_dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "point {i} of the batch ({} at {}) has the value {}: a stored value must be finite; nothing of the batch was stored",
                        p.name, p.timestamp, p.value
                    ),
                ),
            });
        }
        let found = Found::look_up(&self.shared, tenant, &batch);
        let mut written = self.request(|reply| Request::Write {
            tenant: tenant.clone(),
            batch,
            found,
            rule,
            keyed,
            reply,
        })?;
        // Freed here, on the caller's thread, rather than on the writer thread.
        drop(std::mem::take(&mut written.spent));
        Ok(written)
    }

    /// Hands every point `plan` selects to `sink`, in batches, with bounded memory: metric by metric,
    /// day by day, series by series, each run of a series ordered by (timestamp, value) (the `export`
    /// module says what is held at once and which writes an export sees). Runs on the calling thread
    /// until done or until `sink` returns false (its consumer went away); a slow sink slows the export,
    /// nothing piles up. No deadline applies.
    pub fn export(
        &self,
        tenant: &Tenant,
        plan: &ExportPlan,
        mut sink: impl FnMut(ExportBatch) -> bool,
    ) -> Result<(), EngineError> {
        export::run(&self.shared, tenant, plan, &mut sink)
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
        let stored = self.shared.read_stored();
        let frozen_bytes = stored.frozen.as_ref().map_or(0, |f| f.head.heap_bytes());
        MemoryUsage {
            series,
            index_bytes: index_bytes as u64 + self.shared.newest_bytes(),
            head_points: head.points() + stored.frozen_points(),
            head_bytes: (head.heap_bytes() + frozen_bytes) as u64,
        }
    }

    /// Healthy unless poisoned, or stalled for want of space (writes refused, or the flush of the head
    /// retrying: the reason names the disk and the space left now); disk use of the data directory.
    pub fn health(&self) -> StorageHealth {
        let disk_used_bytes = files::disk_used_bytes(&self.data_dir);
        let error = match self.shared.poisoned() {
            Some(reason) => Some(format!(
                "engine is poisoned after a failed write or fsync: {reason}"
            )),
            None => self
                .shared
                .space
                .report()
                .map(|stalls| format!("disk full: {stalls}")),
        };
        StorageHealth {
            status: match error {
                None => HealthStatus::Healthy,
                Some(_) => HealthStatus::Unavailable,
            },
            disk_used_bytes,
            error,
        }
    }

    /// Why the engine refuses writes until a restart, if it does (a failed fsync, ...: see
    /// docs/engine.md, "Failure classes").
    pub fn poisoned(&self) -> Option<String> {
        self.shared.poisoned().map(str::to_owned)
    }

    /// Proves that the WAL directory accepts a new file now — what the writer needs to roll to its next
    /// segment: creates a probe file there, writes and fsyncs a few bytes, removes it. `Poisoned` when a
    /// write or fsync already failed (the engine accepts no writes whatever the directory says), else
    /// the step that failed, naming the file. Returns the directory probed. For health checks: it
    /// costs two fsyncs, and probes wait for each other.
    pub fn probe_wal(&self) -> Result<PathBuf, EngineError> {
        if self.shared.poisoned().is_some() {
            return Err(self.shared.poisoned_error());
        }
        let dir = self.data_dir.join(wal::WAL_DIR);
        let _one_at_a_time = self
            .wal_probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        wal::probe_dir(&dir)?;
        Ok(dir)
    }

    /// Forces everything written to stable storage (shutdown under `Interval`/`None` policies).
    pub fn sync(&self) -> Result<(), EngineError> {
        self.request(|reply| Request::Sync { reply })
    }

    /// Flushes the head to parts now and waits until it is there (and the WAL segments it came from are
    /// deleted). Flushes also happen on their own, past `head_max_points` or `head_max_age`.
    pub fn flush(&self) -> Result<(), EngineError> {
        self.request(|reply| Request::Flush { reply })
    }

    /// Runs compaction on the calling thread until no partition needs it (it also runs in the
    /// background after flushes and deletes; one at a time).
    pub fn compact(&self) -> Result<(), EngineError> {
        compact::compact_all(
            &self.shared,
            compact::Policy::Tiered {
                min_parts: self.compaction_min_parts,
            },
        )
    }

    /// Brings the data to its settled form now: flushes the head, then merges every partition of two
    /// or more parts into one (whatever `compaction_min_parts` says) and drops or rewrites what
    /// tombstones hide. Answers do not change.
    pub fn settle(&self) -> Result<(), EngineError> {
        self.flush()?;
        compact::compact_all(&self.shared, compact::Policy::All)
    }

    /// An online, consistent snapshot of the data directory for a backup (`crate::backup`): every file
    /// a new engine needs to answer as this one does for everything acknowledged before the call,
    /// pinned (hard links under `<data_dir>/backups/<id>/`) until the [`Snapshot`] is dropped, with
    /// each file's size and CRC-32C. Writes wait while the files are linked (one link per part and
    /// segment); the checksums are computed afterwards, reading every pinned byte once.
    pub fn snapshot(&self) -> Result<Snapshot, EngineError> {
        backup::take(&self.shared, &self.data_dir, |pin| self.paused(pin))
    }

    /// Runs `job` on the writer thread once everything staged is committed, with the WAL's end, while
    /// no other write is taken (`Request::Pause`). Fails when the writer thread is gone.
    fn paused<T: Send + 'static>(
        &self,
        job: impl FnOnce(wal::LogEnd) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Box::new(move |end| {
            let _ = reply.send(job(end));
        });
        if self.requests.send(Request::Pause { job }).is_err() {
            return Err(self.shared.poisoned_error());
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(self.shared.poisoned_error()))
    }

    /// The engine's gauges: memory, parts, WAL and disk use. Walks every tenant and lists the data
    /// directory: for a background collector, not for hot paths.
    pub fn stats(&self) -> EngineStats {
        let (wal_segments, wal_bytes) = wal::segment_usage(&self.data_dir.join(wal::WAL_DIR));
        EngineStats {
            memory: self.memory(),
            parts: self.part_count() as u64,
            wal_segments,
            wal_bytes,
            disk_bytes: files::disk_used_bytes(&self.data_dir).unwrap_or(0),
            quarantined_parts: self.shared.quarantined().len() as u64,
        }
    }

    /// Live part files.
    pub fn part_count(&self) -> usize {
        self.shared.read_stored().parts.len()
    }

    /// The width in ms of each live part's block summaries (`None`: a part without them), by metric
    /// name, sorted: which parts can answer moments without reading their pages.
    pub fn part_summary_blocks(&self) -> Vec<(String, Option<i64>)> {
        let mut widths: Vec<(String, Option<i64>)> = (self.shared.read_stored().parts.iter())
            .map(|lp| (lp.part.meta().metric.clone(), lp.part.block_ms()))
            .collect();
        widths.sort();
        widths
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

/// Threads of the query pool: one per core (the machine's cores are the budget), at least one.
fn query_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A flush or compaction waiting for space stops waiting: what it held is in the WAL.
        let stalled = self.shared.space.stalled();
        if !stalled.is_empty() {
            tracing::warn!(
                data_dir = %self.data_dir.display(), ?stalled,
                "stopping while stalled for want of space: the head not flushed is in the WAL, \
                 replayed at the next start"
            );
        }
        self.shared.stop();
        // The writer commits what is staged, fsyncs and exits; wait so the WAL is closed before the lock
        // is released.
        let _ = self.requests.send(Request::Shutdown);
        // The writer's exit closes the flusher's queue (it finishes the flush running, if any), whose
        // exit closes the compactor's (it finishes its job).
        for (name, handle) in [
            ("WAL writer", self.writer.take()),
            ("flusher", self.flusher.take()),
            ("compactor", self.compactor.take()),
        ] {
            if let Some(h) = handle
                && h.join().is_err()
            {
                tracing::error!(data_dir = %self.data_dir.display(), "the {name} thread panicked");
            }
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
