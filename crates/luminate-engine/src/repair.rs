//! repair: a damaged data directory made startable again (`luminate repair`), keeping every damaged
//! byte in `<data_dir>/quarantine/` and saying exactly what the engine will no longer serve. Holds the
//! directory's lock (refuses a directory a live server holds). Finds the damage with `crate::check`,
//! then, pass after pass until a check is clean or nothing more can be done:
//!
//! - a damaged part (missing, unreadable, failing a checksum, not matching its entry) or one holding
//!   series the series log lost: set aside like a part a query met (`crate::quarantine`), with its
//!   record — tenant, metric, rows, series, time range — and dropped from the manifest;
//! - an unusable `MANIFEST`: the old file is kept in quarantine, a new one is written from the part
//!   files (each describes itself; tombstones are unknown, so deleted points may come back until
//!   retention deletes them again) with WAL replay from the lowest segment there;
//! - a damaged WAL or series-log segment: a copy kept in quarantine, the segment cut at the damage
//!   (its records before it are kept), the segments after it moved to quarantine (their records may
//!   depend on what was lost). A series log cut this way loses series definitions: the parts holding
//!   those series are then set aside on the next pass;
//! - WAL segments the manifest names that are gone (a deleted `wal/`): the segments after the hole
//!   moved to quarantine, an empty segment created where replay starts; the points written since
//!   the last flush are lost, and the report says so;
//! - an unreadable `retention.json`: moved to quarantine (the overrides are lost: defaults apply).
//!
//! The index has no file of its own (it is rebuilt from the series log and the parts at every start),
//! so there is nothing to rebuild there. A quarantine record that does not parse is left for an
//! operator (it is reported as remaining).

use std::fs;
use std::path::{Path, PathBuf};

use luminate_model::time::{format_rfc3339, now_ms};

use crate::check::{self, CheckReport, ProblemKind};
use crate::error::EngineError;
use crate::files::{create_dir_durable, io_error, sync_dir, write_atomic};
use crate::manifest::MANIFEST_FILE;
use crate::quarantine::{self, QUARANTINE_DIR, QuarantinedPart};
use crate::record::Record;
use crate::retention::RETENTION_FILE;
use crate::stored::PARTS_DIR;
use crate::wal;

/// Passes at most: each fixes what the previous check found (a cut series log shows, on the next
/// pass, the parts that held its lost series).
const MAX_PASSES: usize = 4;

/// What `repair` did and what is lost.
#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// Each change made, in order, naming the files.
    pub actions: Vec<String>,
    /// What the engine no longer serves, one line each (series, points, time range where known).
    pub lost: Vec<String>,
    /// The parts set aside.
    pub quarantined: Vec<QuarantinedPart>,
    /// The check after the repair: clean unless something could not be repaired.
    pub after: CheckReport,
}

/// Repairs `data_dir` (the module doc); `Locked` when a server holds it.
pub fn repair(data_dir: &Path) -> Result<RepairReport, EngineError> {
    let _lock = check::lock_existing(data_dir)?;
    let mut out = RepairReport::default();
    for _ in 0..MAX_PASSES {
        let found = check::inspect(data_dir);
        if found.is_clean() || !fix(data_dir, found, &mut out)? {
            break;
        }
    }
    out.after = check::inspect(data_dir);
    Ok(out)
}

/// Fixes what `found` lists; whether anything changed.
fn fix(data_dir: &Path, found: CheckReport, out: &mut RepairReport) -> Result<bool, EngineError> {
    let mut manifest = found.manifest.clone().unwrap_or_default();
    let mut store_manifest = false;
    let mut changed = false;
    let mut set_aside = Vec::new();
    for problem in &found.problems {
        match &problem.kind {
            ProblemKind::Manifest => {
                let path = data_dir.join(MANIFEST_FILE);
                if path.exists() {
                    let kept = keep_copy(data_dir, &path, "")?;
                    out.actions.push(format!(
                        "kept the unusable {} as {}",
                        path.display(),
                        kept.display()
                    ));
                }
                out.actions.push(format!(
                    "{problem}; writing a new one from the {} part files, WAL replay from segment {}",
                    manifest.parts.len(),
                    manifest.wal_start
                ));
                out.lost.push(
                    "the parts' tombstones (MANIFEST held them): points deleted before may be \
                     answered again until retention deletes them again"
                        .to_owned(),
                );
                store_manifest = true;
            }
            ProblemKind::Part { entry, series } => {
                let record = QuarantinedPart::new(entry, *series, problem.to_string());
                set_aside.push(part_aside(data_dir, record, out)?);
                manifest.parts.retain(|e| e.file != entry.file);
                store_manifest = true;
            }
            ProblemKind::UndefinedSeries { entry, series } => {
                let record = QuarantinedPart::new(entry, Some(*series), problem.to_string());
                set_aside.push(part_aside(data_dir, record, out)?);
                manifest.parts.retain(|e| e.file != entry.file);
                store_manifest = true;
            }
            ProblemKind::SeriesLog | ProblemKind::Wal => {
                if let Some(offset) = problem.offset
                    && is_log_segment(data_dir, &problem.path)
                {
                    cut_log(data_dir, &problem.path, offset, out)?;
                    changed = true;
                }
            }
            ProblemKind::WalMissing => {
                reseat_wal(data_dir, manifest.wal_start, out)?;
                changed = true;
            }
            ProblemKind::Retention => {
                let path = data_dir.join(RETENTION_FILE);
                if path.exists() {
                    let kept = keep_copy(data_dir, &path, "")?;
                    fs::remove_file(&path).map_err(io_error("remove", &path))?;
                    sync_dir(data_dir)?;
                    out.actions
                        .push(format!("{problem}; moved it to {}", kept.display()));
                    out.lost.push(
                        "the retention overrides set through the admin API (the configured \
                         retention applies)"
                            .to_owned(),
                    );
                    changed = true;
                }
            }
            ProblemKind::Quarantine | ProblemKind::Other => {}
        }
    }
    if store_manifest {
        manifest.store(data_dir)?;
        let n = manifest.parts.len();
        out.actions.push(format!(
            "wrote {} listing {n} part{}",
            data_dir.join(MANIFEST_FILE).display(),
            if n == 1 { "" } else { "s" }
        ));
        for file in set_aside {
            quarantine::remove_from_parts(data_dir, &file)?;
        }
        changed = true;
    }
    Ok(changed)
}

/// Links a damaged part into quarantine with its record (the manifest is rewritten afterwards);
/// returns its file name.
fn part_aside(
    data_dir: &Path,
    record: QuarantinedPart,
    out: &mut RepairReport,
) -> Result<String, EngineError> {
    let to = quarantine::set_aside(data_dir, &record)?;
    out.actions.push(format!(
        "moved {} to {}: {}",
        data_dir.join(PARTS_DIR).join(&record.file).display(),
        to.display(),
        record.reason
    ));
    let held = if record.metric.is_empty() {
        "what it held is unknown (its section does not read)".to_owned()
    } else {
        record.held()
    };
    out.lost.push(format!("part {}: {held}", record.file));
    let file = record.file.clone();
    out.quarantined.push(record);
    Ok(file)
}

/// Keeps a copy of `path` in quarantine (under `sub`), named after it and the time; returns the copy.
fn keep_copy(data_dir: &Path, path: &Path, sub: &str) -> Result<PathBuf, EngineError> {
    let dir = data_dir.join(QUARANTINE_DIR).join(sub);
    create_dir_durable(&data_dir.join(QUARANTINE_DIR))?;
    create_dir_durable(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = dir.join(format!("{name}.{}", now_ms()));
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    write_atomic(&to, &bytes)?;
    Ok(to)
}

/// Whether `path` is a segment of the WAL or of the series log of `data_dir` (the only files repair
/// cuts).
fn is_log_segment(data_dir: &Path, path: &Path) -> bool {
    let in_log = [wal::WAL_DIR, wal::SERIES_DIR]
        .iter()
        .any(|dir| crate::files::parent_dir(path) == data_dir.join(dir));
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".wal"))
        .is_some_and(|n| n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()));
    in_log && named && path.is_file()
}

/// Cuts the log segment `path` at `offset` (a copy kept in quarantine) and moves the segments after
/// it into quarantine.
fn cut_log(
    data_dir: &Path,
    path: &Path,
    offset: u64,
    out: &mut RepairReport,
) -> Result<(), EngineError> {
    let dir = crate::files::parent_dir(path);
    let sub = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    let kept = keep_copy(data_dir, path, &sub)?;
    let cut = (offset as usize).max(wal::HEADER_LEN).min(bytes.len());
    let mut valid = bytes[..cut].to_vec();
    if offset < wal::HEADER_LEN as u64 {
        valid = wal::segment_header().to_vec();
    }
    let lost = describe_records(path, &bytes[cut..]);
    write_atomic(path, &valid)?;
    out.actions.push(format!(
        "cut {} at offset {} (its damaged bytes kept in {})",
        path.display(),
        valid.len(),
        kept.display()
    ));
    out.lost.push(format!(
        "{} from offset {}: {} bytes{lost}",
        path.display(),
        valid.len(),
        bytes.len() - valid.len()
    ));
    let this = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".wal"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    for seq in wal::segment_numbers(&dir)? {
        if seq > this {
            move_segment(data_dir, &dir, &sub, seq, out)?;
        }
    }
    Ok(())
}

/// Makes the WAL continue at `wal_start`: keeps the consecutive segments from it, moves the ones after
/// a hole into quarantine, and creates an empty segment `wal_start` when it is gone.
fn reseat_wal(data_dir: &Path, wal_start: u64, out: &mut RepairReport) -> Result<(), EngineError> {
    let dir = data_dir.join(wal::WAL_DIR);
    let present = wal::segment_numbers(&dir)?;
    let mut end = wal_start;
    while present.contains(&end) {
        end += 1;
    }
    for &seq in present.iter().filter(|&&s| s >= end) {
        move_segment(data_dir, &dir, wal::WAL_DIR, seq, out)?;
    }
    let path = dir.join(wal::segment_file_name(end));
    out.lost.push(format!(
        "WAL segment {} and what followed it: the points written after the last flush, up to the \
         loss (how many is not known: they were only there)",
        path.display()
    ));
    if end == wal_start {
        create_dir_durable(&dir)?;
        write_atomic(&path, &wal::segment_header())?;
        out.actions
            .push(format!("created an empty WAL segment {}", path.display()));
    }
    Ok(())
}

/// Moves segment `seq` of the log in `dir` into `quarantine/<sub>/`.
fn move_segment(
    data_dir: &Path,
    dir: &Path,
    sub: &str,
    seq: u64,
    out: &mut RepairReport,
) -> Result<(), EngineError> {
    let from = dir.join(wal::segment_file_name(seq));
    let to_dir = data_dir.join(QUARANTINE_DIR).join(sub);
    create_dir_durable(&data_dir.join(QUARANTINE_DIR))?;
    create_dir_durable(&to_dir)?;
    let to = to_dir.join(wal::segment_file_name(seq));
    let bytes = fs::read(&from).map_err(io_error("read", &from))?;
    fs::rename(&from, &to).map_err(io_error("move into quarantine", &from))?;
    sync_dir(&to_dir)?;
    sync_dir(dir)?;
    out.actions.push(format!(
        "moved {} to {} (it followed the damage)",
        from.display(),
        to.display()
    ));
    let lost = describe_records(&from, bytes.get(wal::HEADER_LEN..).unwrap_or(&[]));
    out.lost
        .push(format!("{}: {} bytes{lost}", from.display(), bytes.len()));
    Ok(())
}

/// `, N records (P points from A to B)` for the complete write records at the start of `records`
/// (segment bytes past a header or a cut); empty when none decode.
fn describe_records(path: &Path, records: &[u8]) -> String {
    let mut framed = wal::segment_header().to_vec();
    framed.extend_from_slice(records);
    let (mut n, mut points, mut min_t, mut max_t) = (0u64, 0u64, i64::MAX, i64::MIN);
    let _ = wal::scan_segment(path, &framed, |_, payload| {
        n += 1;
        if let Ok(Record::Write(batch)) = Record::decode(payload) {
            points += batch.points.len() as u64;
            for p in &batch.points {
                min_t = min_t.min(p.timestamp);
                max_t = max_t.max(p.timestamp);
            }
        }
        Ok(())
    });
    match (n, points) {
        (0, _) => String::new(),
        (n, 0) => format!(", {n} complete records"),
        (n, p) => format!(
            ", {n} complete records ({p} points from {} to {})",
            format_rfc3339(min_t),
            format_rfc3339(max_t)
        ),
    }
}
