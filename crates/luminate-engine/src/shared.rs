//! shared: the state every engine thread shares — the writer, the flusher, the compactor and the
//! callers' threads (queries, discovery, the lookups of writes). It owns the locks and what they guard,
//! the catalog, and the poison flag; what each thread does with them lives in that thread's module
//! (`commit`, `flush`, `compact`), which each depend on this one and not on each other.
//!
//! # Locks
//! Separate locks, so that a query scanning the head does not stop discovery or the next query's index
//! phase:
//! - `catalog` ([`Catalog`]): the manifest's counters, and the right to replace the snapshot and write
//!   the manifest. `stored` is an immutable snapshot replaced whole; only holders of `catalog` replace
//!   it, so flush, compaction, freeze and delete never lose each other's changes;
//! - `index`, `head`: read by queries and writers' lookups, written only by the writer thread;
//! - `stored`: the snapshot of frozen head and parts (`crate::stored`), an `Arc` cloned out under it;
//! - `compaction`: held by the one compaction running, for the whole of it.
//!
//! Lock order: `compaction`, then `catalog`, then `index`, then `head`, then `stored` (a holder of one
//! never waits for an earlier one). A lock whose holder panicked is taken anyway: the snapshot is
//! replaced whole, the compaction lock guards nothing, and the index and the head are written only by
//! the writer thread, after checking that a batch fits (see [`Shared::read_index`]).
//!
//! # Poisoning
//! A failure that leaves unknown what is durable or applied — a failed fsync, a write(2) that failed
//! otherwise than for want of space, a failed flush, a logged record that could not be applied, a
//! writer or fsync thread that stopped — poisons the engine (`commit` and `flush` decide when): writes
//! fail with its reason from then on, reads go on. The flag is set once; later failures are its
//! consequences. A write that found no room and was rolled back poisons nothing: its job is stalled
//! (`space`) until its next success.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

use crate::error::EngineError;
use crate::head::Head;
use crate::index::Index;
use crate::observe::EngineObserver;
use crate::part::PartFiles;
use crate::quarantine::QuarantinedPart;
use crate::stored::{PARTS_DIR, Stored};
use crate::wal::LogEnd;

/// State shared by the writer, flusher and compactor threads and the engine's readers (see the module
/// doc for the locks and their order).
#[derive(Debug)]
pub(crate) struct Shared {
    data_dir: PathBuf,
    /// `EngineConfig::summary_min_rows`, for the parts flush and compaction write.
    pub(crate) summary_min_rows: u64,
    catalog: Mutex<Catalog>,
    index: RwLock<Index>,
    head: RwLock<Head>,
    stored: RwLock<Arc<Stored>>,
    /// Held by the one compaction running.
    compaction: Mutex<()>,
    poison: OnceLock<String>,
    /// Which jobs are stalled for want of space now.
    pub(crate) space: crate::space::Stalls,
    /// Set when the engine is dropped: jobs waiting for space give up.
    stopping: AtomicBool,
    /// Told of WAL appends and fsyncs here, of flushes and compactions by their threads.
    pub(crate) observer: Arc<dyn EngineObserver>,
    /// Deletes applied so far: changed only under the index write lock, so a reader holding the read
    /// lock sees the count that matches the index (see `crate::commit::Found::look_up`).
    deletes: AtomicU64,
    /// Heap bytes of the writer thread's `crate::newest::Newest`, as of its last commit group (memory
    /// accounting).
    newest_bytes: AtomicU64,
    /// The parts in `quarantine/` (loaded at start, added as queries set damaged parts aside): reported
    /// by health, the self-metrics and the warnings of the queries they would have answered.
    quarantined: Mutex<Vec<QuarantinedPart>>,
    /// Where the series log ended after its last persist (fsynced): a backup copies it up to there,
    /// since the flusher may be appending past it (`crate::backup`). Set by the flusher before the
    /// manifest swap that needs those definitions, so a holder of `catalog` reads an end covering
    /// every part the manifest lists.
    series_log_end: Mutex<LogEnd>,
}

/// What the manifest records besides the parts; guarded with the right to replace the snapshot.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// First WAL segment replayed at start-up.
    pub wal_start: u64,
    /// Number of the next part file.
    pub next_part: u64,
}

impl Shared {
    /// An index, head and parts rebuilt by start-up.
    pub(crate) fn new(
        data_dir: PathBuf,
        summary_min_rows: u64,
        observer: Arc<dyn EngineObserver>,
        catalog: Catalog,
        index: Index,
        head: Head,
        stored: Stored,
    ) -> Self {
        Self {
            data_dir,
            summary_min_rows,
            observer,
            catalog: Mutex::new(catalog),
            index: RwLock::new(index),
            head: RwLock::new(head),
            stored: RwLock::new(Arc::new(stored)),
            compaction: Mutex::new(()),
            poison: OnceLock::new(),
            space: crate::space::Stalls::default(),
            stopping: AtomicBool::new(false),
            deletes: AtomicU64::new(0),
            newest_bytes: AtomicU64::new(0),
            quarantined: Mutex::default(),
            series_log_end: Mutex::new(LogEnd::default()),
        }
    }

    /// The data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The right to replace the snapshot and write the manifest.
    pub(crate) fn catalog(&self) -> MutexGuard<'_, Catalog> {
        // A holder that panicked left the snapshot as it was (it is replaced whole): go on.
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current snapshot of frozen head and parts.
    pub(crate) fn read_stored(&self) -> Arc<Stored> {
        Arc::clone(&self.stored.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the snapshot (the caller holds the catalog).
    pub(crate) fn set_stored(&self, _catalog: &MutexGuard<'_, Catalog>, stored: Stored) {
        *self.stored.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(stored);
    }

    /// Writes the manifest describing `stored`.
    pub(crate) fn write_manifest(
        &self,
        wal_start: u64,
        next_part: u64,
        stored: &Stored,
    ) -> Result<(), EngineError> {
        stored.manifest(wal_start, next_part).store(&self.data_dir)
    }

    /// Held by the one compaction running.
    pub(crate) fn compaction_lock(&self) -> MutexGuard<'_, ()> {
        self.compaction
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Read access to the index, for queries, discovery and series resolution.
    pub(crate) fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        // Only the writer thread writes, and it applies a batch after checking it fits: a panic there
        // would be a bug that already stopped the writer (later writes fail), so reads may go on.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read access to the head, for scans. Take it after `read_index` when holding both.
    pub(crate) fn read_head(&self) -> RwLockReadGuard<'_, Head> {
        self.head.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access to the head alone (the writer thread freezing it).
    pub(crate) fn write_head(&self) -> RwLockWriteGuard<'_, Head> {
        self.head.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access to both, in lock order (the writer thread applying a group or a delete).
    pub(crate) fn write_both(&self) -> (RwLockWriteGuard<'_, Index>, RwLockWriteGuard<'_, Head>) {
        let index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let head = self.head.write().unwrap_or_else(PoisonError::into_inner);
        (index, head)
    }

    /// Deletes applied so far. Read under the index read lock, it matches the index that lock shows.
    pub(crate) fn deletes(&self) -> u64 {
        self.deletes.load(Ordering::Relaxed)
    }

    /// Counts one more delete; the caller holds the index write lock and applies the delete under it.
    pub(crate) fn count_delete(&self, _index: &RwLockWriteGuard<'_, Index>) {
        self.deletes.fetch_add(1, Ordering::Relaxed);
    }

    /// Heap bytes of the newest sample per series the writer thread keeps (`crate::newest`).
    pub(crate) fn newest_bytes(&self) -> u64 {
        self.newest_bytes.load(Ordering::Relaxed)
    }

    /// Records the heap bytes of the writer thread's newest samples (after each commit group).
    pub(crate) fn set_newest_bytes(&self, bytes: u64) {
        self.newest_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The engine is being dropped: a job retrying for want of space gives up.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Whether the engine is being dropped.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The parts set aside so far (`crate::quarantine`).
    pub(crate) fn quarantined(&self) -> Vec<QuarantinedPart> {
        self.quarantined
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a part set aside.
    pub(crate) fn add_quarantined(&self, record: QuarantinedPart) {
        let mut all = self
            .quarantined
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !all.iter().any(|r| r.file == record.file) {
            all.push(record);
        }
    }

    /// Where the series log ended after its last persist.
    pub(crate) fn series_log_end(&self) -> LogEnd {
        *self
            .series_log_end
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records where the series log ends, once what was appended up to there is fsynced.
    pub(crate) fn set_series_log_end(&self, end: LogEnd) {
        *self
            .series_log_end
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = end;
    }

    /// Why the engine is poisoned, if it is.
    pub(crate) fn poisoned(&self) -> Option<&str> {
        self.poison.get().map(String::as_str)
    }

    /// Poisons the engine: every later write fails with `reason` (the first one given).
    pub(crate) fn poison(&self, reason: String) {
        tracing::error!(%reason, "engine poisoned: refusing further writes");
        // The first failure is the one worth reporting; later ones are its consequences.
        let _ = self.poison.set(reason);
    }

    /// The error a write gets from a poisoned engine (or one whose writer thread is gone).
    pub(crate) fn poisoned_error(&self) -> EngineError {
        EngineError::Poisoned {
            reason: self
                .poisoned()
                .unwrap_or("the commit thread stopped")
                .to_owned(),
        }
    }
}

impl Shared {
    /// Unlinks part files that no manifest lists (written by a flush or compaction that failed, or
    /// replaced by one that succeeded). Best effort: a file left behind is garbage that start-up
    /// removes, so a failure is only logged.
    pub(crate) fn remove_unlisted_parts(&self, files: &[&str]) {
        for file in files {
            let path = self.data_dir().join(PARTS_DIR).join(file);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an unlisted part file");
            }
        }
    }
}

/// New parts are numbered by the catalog, in the data directory's `parts/`.
impl PartFiles for Shared {
    fn parts_dir(&self) -> PathBuf {
        self.data_dir.join(PARTS_DIR)
    }

    fn next_part_file(&self) -> String {
        let mut catalog = self.catalog();
        let n = catalog.next_part;
        catalog.next_part += 1;
        crate::manifest::part_file_name(n)
    }
}
