//! check: a data directory verified offline (`luminate check`), every file the engine reads —
//! `MANIFEST`, each part with every checksum it carries (header, footer, section, each page's two blobs,
//! each chunk of block summaries), the series log, the WAL from the manifest's `wal_start`, the
//! quarantine records, `retention.json` — each problem reported with its file and offset, instead of
//! start-up's first refusal. Reads only; holds the directory's lock while it runs, so it refuses a
//! directory a live server holds. What is done about the problems is `crate::repair`'s.
//!
//! The checks are start-up's read phase (`crate::recovery`), made to go on after a failure: a part
//! that fails is left out of what follows (the WAL's deletes and the series check), a broken manifest
//! is replaced by what the part files say of themselves, so that one damage does not hide another.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::EngineError;
use crate::head::Head;
use crate::index::Index;
use crate::lock::DirLock;
use crate::manifest::{MANIFEST_FILE, Manifest, PartEntry, parse_part_file_name};
use crate::part::Part;
use crate::quarantine::{self, QUARANTINE_DIR};
use crate::recovery;
use crate::retention::RetentionStore;
use crate::series_log::SeriesLog;
use crate::stored::{self, LivePart, PARTS_DIR};
use crate::wal::{self, Start, Wal};

/// What is wrong, and with what — the handle `crate::repair` acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// `MANIFEST` is unreadable, or missing from a directory that holds data.
    Manifest,
    /// A part the manifest lists is missing, does not open, does not match its entry, or fails a
    /// checksum; `series` when its directory could be read.
    Part {
        /// The manifest's entry (or, without a usable manifest, what the file says of itself).
        entry: PartEntry,
        /// Series in its directory, when readable.
        series: Option<u64>,
    },
    /// A part holds series the series log does not define (the log lost them).
    UndefinedSeries {
        /// The part's entry.
        entry: PartEntry,
        /// Series in its directory.
        series: u64,
    },
    /// The series log is damaged.
    SeriesLog,
    /// WAL segments the manifest names are missing.
    WalMissing,
    /// A WAL segment is damaged.
    Wal,
    /// A record in `quarantine/` does not parse.
    Quarantine,
    /// `retention.json` is unreadable.
    Retention,
    /// Anything else (a directory that cannot be listed, a part's rows that cannot be counted):
    /// reported, left for an operator — repair changes nothing it does not understand.
    Other,
}

/// One problem: the file, the offset when there is one, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What it is about (for repair).
    pub kind: ProblemKind,
    /// The file.
    pub path: PathBuf,
    /// Where in it, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(
                f,
                "{} at offset {offset}: {}",
                self.path.display(),
                self.reason
            ),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

impl Problem {
    fn of(kind: ProblemKind, error: EngineError, fallback: &Path) -> Self {
        let (path, offset, reason) = match error {
            EngineError::Corruption {
                path,
                offset,
                reason,
            } => (path, Some(offset), reason),
            EngineError::Missing { path, reason } => (path, None, format!("missing: {reason}")),
            EngineError::Io { op, path, source } => (path, None, format!("{op}: {source}")),
            other => (fallback.to_path_buf(), None, other.to_string()),
        };
        Self {
            kind,
            path,
            offset,
            reason,
        }
    }
}

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Damage, each with its file and offset: the directory is clean when there is none.
    pub problems: Vec<Problem>,
    /// What is not damage but worth saying: torn tails start-up cuts off, files start-up removes,
    /// parts in quarantine.
    pub notes: Vec<String>,
    /// Parts verified (whole).
    pub parts: usize,
    /// Series the series log defines, over every tenant.
    pub series: u64,
    /// Complete WAL records replayed.
    pub wal_records: u64,
    /// The manifest read (or rebuilt from the part files when it is unusable), for repair.
    pub(crate) manifest: Option<Manifest>,
}

impl CheckReport {
    /// No problem found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the data directory `data_dir` without changing it (the module doc), holding its lock:
/// `Locked` when a server (or another check) holds it; an I/O error when it cannot be listed.
pub fn check(data_dir: &Path) -> Result<CheckReport, EngineError> {
    let _lock = lock_existing(data_dir)?;
    Ok(inspect(data_dir))
}

/// The lock of an existing data directory (`luminate check` and `repair` create none).
pub(crate) fn lock_existing(data_dir: &Path) -> Result<DirLock, EngineError> {
    if !data_dir.is_dir() {
        return Err(EngineError::Io {
            op: "open data directory",
            path: data_dir.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    DirLock::acquire(data_dir)
}

/// [`check`] of a directory the caller has locked.
pub(crate) fn inspect(data_dir: &Path) -> CheckReport {
    let mut report = CheckReport::default();
    let manifest_path = data_dir.join(MANIFEST_FILE);
    let wal_dir = data_dir.join(wal::WAL_DIR);
    let files = match stored::part_dir_files(data_dir) {
        Ok(files) => files,
        Err(e) => {
            let parts_dir = data_dir.join(PARTS_DIR);
            report
                .problems
                .push(Problem::of(ProblemKind::Other, e, &parts_dir));
            Vec::new()
        }
    };
    // The manifest, or what stands in for it so that the rest can still be checked.
    // `first`: a new directory (no manifest, no data), whose WAL replays from its first segment.
    let mut first = false;
    let (manifest, trusted) = match Manifest::load(data_dir) {
        Ok(Some(m)) => (m, true),
        Ok(None) => match recovery::refuse_data_without_manifest(data_dir, &files, &wal_dir) {
            Ok(()) => {
                first = true;
                (Manifest::default(), true)
            }
            Err(e) => {
                report
                    .problems
                    .push(Problem::of(ProblemKind::Manifest, e, &manifest_path));
                (from_part_files(&files, &wal_dir), false)
            }
        },
        Err(e) => {
            report
                .problems
                .push(Problem::of(ProblemKind::Manifest, e, &manifest_path));
            (from_part_files(&files, &wal_dir), false)
        }
    };
    let mut live = check_parts(data_dir, &manifest, trusted, &mut report);
    if trusted {
        for path in &files {
            let listed = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| manifest.parts.iter().any(|p| p.file == n));
            if !listed {
                report.notes.push(format!(
                    "{}: not in the manifest (left by a flush or compaction that stopped); start-up removes it",
                    path.display()
                ));
            }
        }
    }

    let mut index = Index::default();
    match SeriesLog::recover(&data_dir.join(wal::SERIES_DIR), &mut index) {
        Ok(log) => report
            .notes
            .extend(log.dropped().iter().map(torn_tail_note)),
        Err(e) => report.problems.push(Problem::of(
            ProblemKind::SeriesLog,
            e,
            &data_dir.join(wal::SERIES_DIR),
        )),
    }
    report.series = index
        .tenants()
        .map(|(_, ti)| ti.series_count() as u64)
        .sum();
    live.retain(|lp| {
        let meta = lp.part.meta();
        let defined = index.tenant(&meta.tenant).map_or(0, |ti| ti.series_count());
        match lp.part.series_ids().last() {
            Some(&last) if last as usize >= defined => {
                report.problems.push(Problem {
                    kind: ProblemKind::UndefinedSeries {
                        entry: lp.entry(),
                        series: lp.part.series_ids().len() as u64,
                    },
                    path: lp.part.path().to_path_buf(),
                    offset: None,
                    reason: format!(
                        "holds series up to id {last}; the series log defines {defined} series of \
                         tenant {}",
                        meta.tenant
                    ),
                });
                false
            }
            _ => true,
        }
    });
    if let Err(e) = stored::count_parts(&mut index, &live) {
        report
            .problems
            .push(Problem::of(ProblemKind::Other, e, data_dir));
    }

    let start = if first {
        Start::First
    } else {
        Start::At(manifest.wal_start)
    };
    let mut head = Head::default();
    // Keyed records replay their keys too (kinds 5 and 6 are checked like the rest); the window itself
    // is not kept.
    let mut keys = crate::keys::Window::new(crate::config::KeyWindow::default());
    let now = luminate_model::time::now_ms();
    let replayed = Wal::recover(&wal_dir, start, |path, offset, payload| {
        let state = recovery::Replay {
            index: &mut index,
            head: &mut head,
            parts: &mut live,
            keys: &mut keys,
            now,
        };
        recovery::replay_record(state, path, offset, payload)
    });
    match replayed {
        Ok(wal) => {
            report.wal_records = wal.records();
            report
                .notes
                .extend(wal.dropped().iter().map(torn_tail_note));
        }
        Err(e @ EngineError::Missing { .. }) => {
            report
                .problems
                .push(Problem::of(ProblemKind::WalMissing, e, &wal_dir))
        }
        Err(e) => report
            .problems
            .push(Problem::of(ProblemKind::Wal, e, &wal_dir)),
    }

    match quarantine::load(data_dir) {
        Ok(records) => report.notes.extend(records.iter().map(|r| {
            format!(
                "{}: quarantined ({}): {}",
                data_dir.join(QUARANTINE_DIR).join(&r.file).display(),
                r.held(),
                r.reason
            )
        })),
        Err(e) => report.problems.push(Problem::of(
            ProblemKind::Quarantine,
            e,
            &data_dir.join(QUARANTINE_DIR),
        )),
    }
    if let Err(e) = RetentionStore::load(data_dir) {
        report
            .problems
            .push(Problem::of(ProblemKind::Retention, e, data_dir));
    }
    report.manifest = Some(manifest);
    report
}

/// Opens and verifies every part of `manifest` (matched against its entry when the manifest is
/// `trusted`); returns the intact ones and reports the others.
fn check_parts(
    data_dir: &Path,
    manifest: &Manifest,
    trusted: bool,
    report: &mut CheckReport,
) -> Vec<LivePart> {
    let mut live = Vec::with_capacity(manifest.parts.len());
    for entry in &manifest.parts {
        let path = data_dir.join(PARTS_DIR).join(&entry.file);
        let damaged = |series: Option<u64>, error: EngineError| {
            Problem::of(
                ProblemKind::Part {
                    entry: entry.clone(),
                    series,
                },
                error,
                &path,
            )
        };
        let part = match Part::open(&path) {
            Ok(part) => part,
            Err(e) => {
                report.problems.push(damaged(None, e));
                continue;
            }
        };
        let series = Some(part.series_ids().len() as u64);
        let meta = part.meta();
        let matches = meta.tenant.as_str() == entry.tenant
            && meta.metric == entry.metric
            && meta.day == entry.day
            && meta.rows == entry.rows
            && (meta.min_t, meta.max_t) == (entry.min_t, entry.max_t);
        if trusted && !matches {
            let e = EngineError::Corruption {
                path: path.clone(),
                offset: 0,
                reason: format!("part does not match its manifest entry {entry:?}"),
            };
            report.problems.push(damaged(series, e));
            continue;
        }
        if let Err(e) = part.verify() {
            report.problems.push(damaged(series, e));
            continue;
        }
        report.parts += 1;
        live.push(LivePart {
            part: Arc::new(part),
            file: entry.file.clone(),
            deleted_before: entry.deleted_before,
        });
    }
    live
}

/// A manifest standing in for an unusable one: every part file whose section reads, as it describes
/// itself (tombstones unknown), replay from the first WAL segment there (the lowest one a flush left),
/// part numbers after the highest.
pub(crate) fn from_part_files(files: &[PathBuf], wal_dir: &Path) -> Manifest {
    let mut parts = Vec::new();
    let mut next_part = 1;
    for path in files {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(n) = parse_part_file_name(name) else {
            continue;
        };
        next_part = next_part.max(n + 1);
        // A file whose section does not read is listed all the same, as it claims nothing: check
        // reports it when it fails to open, and repair sets it aside.
        let entry = match Part::open(path) {
            Ok(part) => {
                let meta = part.meta();
                PartEntry {
                    file: name.to_owned(),
                    tenant: meta.tenant.as_str().to_owned(),
                    metric: meta.metric.clone(),
                    day: meta.day,
                    rows: meta.rows,
                    min_t: meta.min_t,
                    max_t: meta.max_t,
                    deleted_before: None,
                }
            }
            Err(_) => PartEntry {
                file: name.to_owned(),
                tenant: String::new(),
                metric: String::new(),
                day: 0,
                rows: 0,
                min_t: 0,
                max_t: 0,
                deleted_before: None,
            },
        };
        parts.push(entry);
    }
    let wal_start = wal::segment_numbers(wal_dir)
        .ok()
        .and_then(|s| s.first().copied())
        .unwrap_or(1);
    Manifest {
        wal_start,
        next_part,
        parts,
        ..Manifest::default()
    }
}

fn torn_tail_note(tail: &crate::error::DroppedTail) -> String {
    format!(
        "{} at offset {}: torn tail of {} bytes ({}); start-up cuts it off (an incomplete last \
         write, never acknowledged under sync: always)",
        tail.path.display(),
        tail.offset,
        tail.bytes,
        tail.reason
    )
}
