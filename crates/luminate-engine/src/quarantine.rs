//! quarantine: damaged parts set aside — moved to `<data_dir>/quarantine/`, never deleted — with a record
//! of what they held, so that queries answer from everything else and say what is missing. Owns the
//! quarantine directory and its records; what makes a part damaged is `part::verify`'s business, setting
//! one aside while the engine runs is `crate::contain`'s, and what the offline tools do with a data
//! directory is `crate::check`'s and `crate::repair`'s.
//!
//! # Layout
//! ```text
//! <data_dir>/quarantine/NNNNNNNNNN.part        the damaged part's bytes, as they were (a hard link first)
//! <data_dir>/quarantine/NNNNNNNNNN.part.json   its record (QuarantinedPart, JSON, written atomically)
//! ```
//!
//! # Setting a part aside while the engine runs (`crate::contain`)
//! A query whose scan met a checksum mismatch or an undecodable blob verifies every part of the metric
//! it read (reads only, no lock), then, under the catalog: hard-links each damaged part into
//! `quarantine/` and writes its record, writes the manifest without it, subtracts its rows from the
//! index's counters and swaps the snapshot (so the next scan does not see it), and only then unlinks
//! it from `parts/`. A crash before the manifest swap leaves the part listed (the next query that meets
//! the damage sets it aside again; the link is already there); a crash after it leaves an unlisted file
//! in `parts/` that start-up removes — the bytes stay in `quarantine/`. Parts are never renamed into
//! quarantine before the swap: a listed part that is missing refuses the start.
//!
//! # Reporting
//! Every record in `quarantine/` — loaded at start, added as parts are set aside — is reported until an
//! operator removes it (docs/operations.md): the `parts_intact` health check warns naming the files,
//! `luminate_quarantined_parts` counts them, and every query whose range overlaps a quarantined part of
//! its metric is answered flagged partial, with one warning per part saying what it held and why it was
//! set aside. The flag is from the record's time range, not from the rows: a query over a quarantined
//! part's day whose series were not in it is flagged too — the engine cannot tell which series the
//! damaged pages held.

use std::fs;
use std::path::{Path, PathBuf};

use luminate_model::time::format_rfc3339;
use luminate_model::{Tenant, TimestampMs};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::files::{create_dir_durable, io_error, sync_dir, write_atomic};
use crate::manifest::PartEntry;
use crate::stored::PARTS_DIR;

/// Name of the quarantine directory inside the data directory.
pub const QUARANTINE_DIR: &str = "quarantine";
/// Suffix of a record beside its part.
const RECORD_SUFFIX: &str = ".json";

/// A part set aside, and what it held: the points it held are missing from every answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedPart {
    /// The part's file name (in `parts/` before, in `quarantine/` now).
    pub file: String,
    /// The tenant whose points it held.
    pub tenant: String,
    /// The metric.
    pub metric: String,
    /// Its partition day (days since 1970-01-01 UTC).
    pub day: i64,
    /// Rows it held (tombstoned ones included).
    pub rows: u64,
    /// Series it held, when its directory could be read.
    pub series: Option<u64>,
    /// Its first timestamp (ms).
    pub min_t: TimestampMs,
    /// Its last timestamp (ms, inclusive).
    pub max_t: TimestampMs,
    /// Its tombstone: rows below it were deleted anyway.
    pub deleted_before: Option<TimestampMs>,
    /// Why it was set aside: the damage, naming the file and offset.
    pub reason: String,
    /// When (ms).
    pub quarantined_at: TimestampMs,
}

impl QuarantinedPart {
    /// The record of the part `entry` describes, set aside because of `reason`.
    pub(crate) fn new(entry: &PartEntry, series: Option<u64>, reason: String) -> Self {
        Self {
            file: entry.file.clone(),
            tenant: entry.tenant.clone(),
            metric: entry.metric.clone(),
            day: entry.day,
            rows: entry.rows,
            series,
            min_t: entry.min_t,
            max_t: entry.max_t,
            deleted_before: entry.deleted_before,
            reason,
            quarantined_at: luminate_model::time::now_ms(),
        }
    }

    /// What the part held, in one line: `tenant T, metric M: N rows of S series from A to B`.
    pub fn held(&self) -> String {
        let series = self
            .series
            .map_or_else(String::new, |s| format!(" of {s} series"));
        format!(
            "tenant {}, metric {}: {} rows{series} from {} to {}",
            self.tenant,
            self.metric,
            self.rows,
            format_rfc3339(self.min_t),
            format_rfc3339(self.max_t)
        )
    }

    /// The warning of a query that this part's points are missing from.
    pub fn warning(&self) -> String {
        format!(
            "part {} quarantined ({}): {}; its points are missing from this answer",
            self.file,
            self.held(),
            self.reason
        )
    }

    /// Whether a query of `metric` over `[start, end)` would have read this part.
    pub(crate) fn overlaps(
        &self,
        tenant: &Tenant,
        metric: &str,
        start: TimestampMs,
        end: TimestampMs,
    ) -> bool {
        self.tenant == tenant.as_str()
            && self.metric == metric
            && self.min_t < end
            && self.max_t >= start
            && self.deleted_before.is_none_or(|d| self.max_t >= d)
    }
}

/// The records in `<data_dir>/quarantine`, by file name; none when there is no such directory. A
/// record that does not parse is `Corruption` naming it.
pub fn load(data_dir: &Path) -> Result<Vec<QuarantinedPart>, EngineError> {
    let dir = data_dir.join(QUARANTINE_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list quarantine directory", &dir)(e)),
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(io_error("list quarantine directory", &dir))?
            .path();
        if !path.to_string_lossy().ends_with(RECORD_SUFFIX) {
            continue;
        }
        let bytes = fs::read(&path).map_err(io_error("read quarantine record", &path))?;
        let record: QuarantinedPart =
            serde_json::from_slice(&bytes).map_err(|e| EngineError::Corruption {
                path: path.clone(),
                offset: e.column() as u64,
                reason: format!("quarantine record is not valid JSON: {e}"),
            })?;
        records.push(record);
    }
    records.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(records)
}

/// Puts `record`'s part into quarantine beside its record, leaving `parts/` as it is: a hard link of
/// `parts/<file>` (when the file is there; a part already linked is fine), then the record, both
/// durable. The caller then drops the part from the manifest and unlinks it ([`remove_from_parts`]).
pub(crate) fn set_aside(data_dir: &Path, record: &QuarantinedPart) -> Result<PathBuf, EngineError> {
    let dir = data_dir.join(QUARANTINE_DIR);
    create_dir_durable(&dir)?;
    let from = data_dir.join(PARTS_DIR).join(&record.file);
    let to = dir.join(&record.file);
    match fs::hard_link(&from, &to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("link part into quarantine", &to)(e)),
    }
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| io_error("encode quarantine record", &to)(std::io::Error::other(e)))?;
    write_atomic(&dir.join(format!("{}{RECORD_SUFFIX}", record.file)), &bytes)?;
    sync_dir(&dir)?;
    Ok(to)
}

/// Unlinks `parts/<file>` once the manifest no longer lists it (its bytes live on in quarantine).
pub(crate) fn remove_from_parts(data_dir: &Path, file: &str) -> Result<(), EngineError> {
    let path = data_dir.join(PARTS_DIR).join(file);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(&data_dir.join(PARTS_DIR)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove quarantined part from parts", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(file: &str) -> QuarantinedPart {
        QuarantinedPart {
            file: file.into(),
            tenant: "t".into(),
            metric: "m".into(),
            day: 20_000,
            rows: 3,
            series: Some(2),
            min_t: 1_728_000_000_000,
            max_t: 1_728_000_060_000,
            deleted_before: None,
            reason: "corruption in parts/x at offset 8: checksum mismatch".into(),
            quarantined_at: 1,
        }
    }

    #[test]
    fn a_record_set_aside_is_loaded_back_beside_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(PARTS_DIR)).unwrap();
        fs::write(dir.path().join(PARTS_DIR).join("0000000002.part"), b"bytes").unwrap();
        let r = record("0000000002.part");
        let to = set_aside(dir.path(), &r).unwrap();
        // Set aside twice (a crash before the manifest swap): the same state.
        set_aside(dir.path(), &r).unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"bytes");
        remove_from_parts(dir.path(), &r.file).unwrap();
        assert!(!dir.path().join(PARTS_DIR).join(&r.file).exists());
        assert_eq!(load(dir.path()).unwrap(), vec![r.clone()]);
        assert_eq!(
            r.warning(),
            "part 0000000002.part quarantined (tenant t, metric m: 3 rows of 2 series from \
             2024-10-04T00:00:00Z to 2024-10-04T00:01:00Z): corruption in parts/x at offset 8: \
             checksum mismatch; its points are missing from this answer"
        );
    }

    #[test]
    fn a_query_is_flagged_only_when_its_range_meets_the_part() {
        let r = record("0000000002.part");
        let t = Tenant::new("t");
        assert!(r.overlaps(&t, "m", r.max_t, r.max_t + 1));
        assert!(r.overlaps(&t, "m", 0, r.min_t + 1));
        assert!(!r.overlaps(&t, "m", r.max_t + 1, i64::MAX));
        assert!(!r.overlaps(&t, "m", 0, r.min_t));
        assert!(!r.overlaps(&t, "other", 0, i64::MAX));
    }
}
