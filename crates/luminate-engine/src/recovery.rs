//! recovery: start-up — the engine's state rebuilt from the data directory, in two phases, so that a
//! start it refuses leaves the directory exactly as it found it.
//!
//! 1. **Read** ([`Recovery::read`]), which writes, creates and removes nothing: loads the manifest,
//!    opens and verifies every part it lists, replays the series log into the index, counts the parts'
//!    points, replays the WAL from `wal_start` into the index, the head and the parts' tombstones, and
//!    notes what is garbage. Any check that fails refuses the start (`Corruption`, `Missing`, `Io`).
//! 2. **Commit** ([`Recovery::commit`]), only once everything was read: creates the directories of a
//!    new data directory, cuts the torn tails off the logs' last segments (creating their first
//!    segments when new), writes the first manifest of a directory that had none, and removes what the
//!    valid manifest proves is garbage — part files it does not list (a flush or compaction that
//!    crashed before its manifest swap) and WAL segments below `wal_start` (a crash after the swap,
//!    before their deletion).
//!
//! A data directory without a manifest starts empty only when it holds no data: no file in `parts/`,
//! and WAL segments (if any) from segment 1 — a new directory, or one from a build that wrote no
//! manifest before its first flush. Anything else lost its manifest, which alone says which parts are
//! live and where replay starts: the start is refused (`Missing`) rather than guessed. Since the first
//! manifest is written at the first start, after the logs' first segments exist, every later state of
//! a directory has a manifest, and the manifest's `wal_start` segment always exists.

use std::path::{Path, PathBuf};

use crate::apply;
use crate::error::{DroppedTail, EngineError};
use crate::head::Head;
use crate::index::Index;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::record::Record;
use crate::series_log::{self, SeriesLog};
use crate::stored::{self, LivePart, PARTS_DIR};
use crate::wal::{self, Start, Wal};

/// What opening the engine found in its logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Complete WAL records replayed.
    pub records_replayed: u64,
    /// Torn tails cut off the last segment of the WAL and of the series log (at most one each).
    pub dropped: Vec<DroppedTail>,
}

/// Everything start-up read, before it changed anything.
pub(crate) struct Recovery {
    data_dir: PathBuf,
    manifest: Manifest,
    /// The directory had no manifest (and no data): the commit writes the first one.
    first_manifest: bool,
    parts: Vec<LivePart>,
    /// Files of the parts directory the manifest does not list.
    unlisted: Vec<PathBuf>,
    index: Index,
    head: Head,
    series_log: series_log::Recovered,
    wal: wal::Recovered,
}

/// The engine's state after start-up, and its logs open for appends.
pub(crate) struct Recovered {
    /// The manifest now on disk.
    pub manifest: Manifest,
    /// The manifest's parts, with the tombstones the WAL's deletes added.
    pub parts: Vec<LivePart>,
    /// The series log's definitions and the WAL's points.
    pub index: Index,
    /// The WAL's points since the last flush.
    pub head: Head,
    /// The series log, positioned for appends.
    pub series_log: SeriesLog,
    /// The WAL, positioned for appends.
    pub wal: Wal,
    /// Records replayed and torn tails cut off.
    pub report: RecoveryReport,
}

impl Recovery {
    /// Reads the data directory (locked by the caller) without changing it.
    pub(crate) fn read(data_dir: &Path) -> Result<Self, EngineError> {
        let loaded = Manifest::load(data_dir)?;
        let files = stored::part_dir_files(data_dir)?;
        let wal_dir = data_dir.join(wal::WAL_DIR);
        let first_manifest = loaded.is_none();
        let (manifest, wal_start) = match loaded {
            Some(m) => {
                let start = Start::At(m.wal_start);
                (m, start)
            }
            None => {
                refuse_data_without_manifest(data_dir, &files, &wal_dir)?;
                (Manifest::default(), Start::First)
            }
        };
        let (mut parts, unlisted) = stored::open_parts(data_dir, &manifest, files)?;
        let (mut index, mut head) = (Index::default(), Head::default());
        let series_log = SeriesLog::recover(&data_dir.join(wal::SERIES_DIR), &mut index)?;
        stored::count_parts(&mut index, &parts)?;
        let wal = Wal::recover(&wal_dir, wal_start, |path, offset, payload| {
            replay_record(&mut index, &mut head, &mut parts, path, offset, payload)
        })?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            manifest,
            first_manifest,
            parts,
            unlisted,
            index,
            head,
            series_log,
            wal,
        })
    }

    /// Makes the changes start-up decided on, now that every check has passed, and opens the logs.
    pub(crate) fn commit(self, segment_bytes: u64) -> Result<Recovered, EngineError> {
        crate::files::create_dir_durable(&self.data_dir.join(PARTS_DIR))?;
        let (series_log, series_replayed) = self.series_log.open(segment_bytes)?;
        let (wal, replayed) = self.wal.open(segment_bytes)?;
        if self.first_manifest {
            // Written after the logs' first segments exist: from now on a manifest names a segment
            // that is there, and a directory without one is new.
            self.manifest.store(&self.data_dir)?;
        }
        stored::remove_unlisted(&self.data_dir, &self.unlisted)?;
        let dropped: Vec<DroppedTail> = replayed
            .dropped
            .into_iter()
            .chain(series_replayed.dropped)
            .collect();
        Ok(Recovered {
            manifest: self.manifest,
            parts: self.parts,
            index: self.index,
            head: self.head,
            series_log,
            wal,
            report: RecoveryReport {
                records_replayed: replayed.records,
                dropped,
            },
        })
    }
}

/// Refuses a directory that holds data but no manifest: part files, or WAL segments that do not start
/// at 1 (the WAL below `wal_start` was deleted by a flush, whose manifest is gone).
fn refuse_data_without_manifest(
    data_dir: &Path,
    part_files: &[PathBuf],
    wal_dir: &Path,
) -> Result<(), EngineError> {
    let mut found = Vec::new();
    if !part_files.is_empty() {
        let n = part_files.len();
        found.push(format!(
            "{n} file{} in {}",
            if n == 1 { "" } else { "s" },
            data_dir.join(PARTS_DIR).display()
        ));
    }
    if let Some(&first) = wal::segment_numbers(wal_dir)?.first()
        && first > 1
    {
        found.push(format!(
            "WAL segments from {} on (a flush deleted the earlier ones)",
            wal_dir.join(wal::segment_file_name(first)).display()
        ));
    }
    if found.is_empty() {
        return Ok(());
    }
    let tmp = data_dir.join(format!("{MANIFEST_FILE}.tmp"));
    let leftover = if tmp.exists() {
        format!(
            " ({} is there: a manifest being written when the process stopped)",
            tmp.display()
        )
    } else {
        String::new()
    };
    Err(EngineError::Missing {
        path: data_dir.join(MANIFEST_FILE),
        reason: format!(
            "the data directory holds data without it: {}{leftover}. The manifest alone says which \
             parts are live and where WAL replay starts; restore it (from a backup), or move the data \
             directory aside to start empty. Nothing was changed.",
            found.join(", ")
        ),
    })
}

/// Applies one replayed WAL record to the index, the head and the manifest's parts; a record that does
/// not decode or fit is corruption.
pub(crate) fn replay_record(
    index: &mut Index,
    head: &mut Head,
    parts: &mut Vec<LivePart>,
    path: &Path,
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
            // Every part of the manifest predates the delete (its rows come from earlier segments);
            // a tombstone already at or past `before` (persisted since) makes this a no-op.
            let (next, hidden) = stored::delete_in_parts(parts, &d.tenant, &d.metric, d.before)?;
            *parts = next;
            if let Some(ti) = index.existing_tenant_mut(&d.tenant) {
                for (series, n) in hidden {
                    ti.add_points(series, -(n as i64));
                }
            }
            Ok(())
        }
        Ok(Record::Series(_) | Record::SeriesBatch(_)) => {
            Err(corruption("a series-log record in the WAL".to_owned()))
        }
    }
}
