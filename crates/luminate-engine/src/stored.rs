//! stored: what queries read besides the active head — the frozen head being flushed and the live parts
//! with their tombstones — as one immutable snapshot ([`Stored`]) that is replaced whole (flush,
//! compaction, delete) and never changed in place. A query clones the `Arc` once and reads a consistent
//! set of sources however long it runs; a replaced part's file stays readable through its open handle
//! until the last snapshot holding it is dropped (it is unlinked after the swap; Linux keeps the inode).
//!
//! Also the parts' share of start-up (`crate::recovery`): opening the manifest's parts, finding the
//! files a crash left behind (removed only once start-up has passed every check), and counting the
//! parts' points into the index.
//!
//! # Tombstones
//! `delete_before` hides rows rather than rewriting files: each part carries `deleted_before` (rows
//! below it are invisible), and the frozen head carries the same per (tenant, metric) as an overlay
//! (it is shared with the flusher, so it is not filtered in place; its parts inherit the overlay at the
//! swap). Compaction removes hidden rows physically later.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use luminate_model::{Tenant, TimestampMs};

use crate::error::EngineError;
use crate::files::{io_error, sync_dir};
use crate::head::Head;
use crate::index::{Index, MetricId};
use crate::manifest::{Manifest, PartEntry, parse_part_file_name};
use crate::part::{Part, Selection};
use crate::record::SeriesId;

/// Rows each series lost to a delete.
pub(crate) type Hidden = Vec<(SeriesId, u64)>;

/// Name of the parts directory inside the data directory.
pub(crate) const PARTS_DIR: &str = "parts";

/// One live part: the open file and its tombstone.
#[derive(Debug, Clone)]
pub(crate) struct LivePart {
    /// The open part (its handle keeps the file readable after it is unlinked).
    pub part: Arc<Part>,
    /// File name in the parts directory.
    pub file: String,
    /// Rows with a timestamp below this are deleted.
    pub deleted_before: Option<TimestampMs>,
}

/// The head being flushed, with the deletes that happened since it was frozen.
#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    /// The rows (shared with the flusher).
    pub head: Arc<Head>,
    /// Rows of (tenant, metric) with a timestamp below the value are deleted.
    pub tombstones: HashMap<(Tenant, MetricId), TimestampMs>,
}

/// Everything a query reads besides the active head.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stored {
    /// The frozen head, while a flush runs.
    pub frozen: Option<Frozen>,
    /// The live parts.
    pub parts: Vec<LivePart>,
}

impl LivePart {
    /// The tenant's name and metric of the part.
    pub(crate) fn is_of(&self, tenant: &Tenant, metric: &str) -> bool {
        let meta = self.part.meta();
        meta.tenant == *tenant && meta.metric == metric
    }

    /// The manifest entry of the part.
    pub(crate) fn entry(&self) -> PartEntry {
        let meta = self.part.meta();
        PartEntry {
            file: self.file.clone(),
            tenant: meta.tenant.as_str().to_owned(),
            metric: meta.metric.clone(),
            day: meta.day,
            rows: meta.rows,
            min_t: meta.min_t,
            max_t: meta.max_t,
            deleted_before: self.deleted_before,
        }
    }
}

impl Stored {
    /// The manifest describing these parts.
    pub(crate) fn manifest(&self, wal_start: u64, next_part: u64) -> Manifest {
        Manifest {
            wal_start,
            next_part,
            parts: self.parts.iter().map(LivePart::entry).collect(),
            ..Manifest::default()
        }
    }

    /// Points buffered in the frozen head.
    pub(crate) fn frozen_points(&self) -> u64 {
        self.frozen.as_ref().map_or(0, |f| f.head.points())
    }
}

/// The paths of the files in `<data_dir>/parts`, sorted; none when the directory does not exist yet.
pub(crate) fn part_dir_files(data_dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let dir = data_dir.join(PARTS_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list parts directory", &dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        files.push(
            entry
                .map_err(io_error("list parts directory", &dir))?
                .path(),
        );
    }
    files.sort();
    Ok(files)
}

/// Opens every part the manifest lists, reading only; returns them and the other `files` of the parts
/// directory (temp files and parts of a flush or compaction that crashed before its manifest swap:
/// garbage, which [`remove_unlisted`] deletes once start-up has passed every check). A part that cannot
/// be opened or does not match its entry is corruption: the engine refuses to serve data with a hole
/// in it.
pub(crate) fn open_parts(
    data_dir: &Path,
    manifest: &Manifest,
    files: Vec<PathBuf>,
) -> Result<(Vec<LivePart>, Vec<PathBuf>), EngineError> {
    let dir = data_dir.join(PARTS_DIR);
    let listed: std::collections::HashSet<&str> =
        manifest.parts.iter().map(|p| p.file.as_str()).collect();
    let unlisted = files
        .into_iter()
        .filter(|path| {
            !path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| listed.contains(n))
        })
        .collect();
    let mut parts = Vec::with_capacity(manifest.parts.len());
    for entry in &manifest.parts {
        let path = dir.join(&entry.file);
        // Checked before anything is opened: the name comes from the manifest's bytes, and one such
        // as `/dev/stdin` or `../x` would open a file outside the parts (a FIFO would block start-up).
        if parse_part_file_name(&entry.file).is_none() {
            return Err(EngineError::Corruption {
                path,
                offset: 0,
                reason: format!("manifest entry names {:?}, not a part file", entry.file),
            });
        }
        let part = Part::open(&path)?;
        let meta = part.meta();
        let matches = meta.tenant.as_str() == entry.tenant
            && meta.metric == entry.metric
            && meta.day == entry.day
            && meta.rows == entry.rows
            && (meta.min_t, meta.max_t) == (entry.min_t, entry.max_t);
        if !matches {
            return Err(EngineError::Corruption {
                path,
                offset: 0,
                reason: format!("part does not match its manifest entry {entry:?}"),
            });
        }
        parts.push(LivePart {
            part: Arc::new(part),
            file: entry.file.clone(),
            deleted_before: entry.deleted_before,
        });
    }
    Ok((parts, unlisted))
}

/// Removes the part files [`open_parts`] found unlisted, then fsyncs the parts directory.
pub(crate) fn remove_unlisted(data_dir: &Path, unlisted: &[PathBuf]) -> Result<(), EngineError> {
    for path in unlisted {
        tracing::info!(path = %path.display(), "removing a part file the manifest does not list");
        fs::remove_file(path).map_err(io_error("remove unlisted part file", path))?;
    }
    if !unlisted.is_empty() {
        sync_dir(&data_dir.join(PARTS_DIR))?;
    }
    Ok(())
}

/// Adds the visible points of `parts` to the index's counters (row counts from the directories, minus
/// tombstoned rows read from timestamps only). Every series must be defined (by the series log).
pub(crate) fn count_parts(index: &mut Index, parts: &[LivePart]) -> Result<(), EngineError> {
    for lp in parts {
        let meta = lp.part.meta();
        let ti = index.tenant_mut(&meta.tenant);
        let defined = ti.series_count();
        if let Some(&last) = lp.part.series_ids().last()
            && last as usize >= defined
        {
            return Err(EngineError::Corruption {
                path: lp.part.path().to_path_buf(),
                offset: 0,
                reason: format!(
                    "part holds series {last}, the series log defines {defined} series of tenant {}",
                    meta.tenant
                ),
            });
        }
        for (id, n) in lp.part.row_counts() {
            ti.add_points(id, i64::from(n));
        }
        if let Some(before) = lp.deleted_before {
            for (id, n) in hidden_rows(&lp.part, TimestampMs::MIN, before)? {
                ti.add_points(id, -(n as i64));
            }
        }
    }
    Ok(())
}

/// Rows per series of `lp` a query sees: its directory's counts minus the rows under its tombstone
/// (read from timestamps only). What the index counts for it (`count_parts`), to take back when the
/// part is set aside (`crate::quarantine`).
pub(crate) fn visible_rows(lp: &LivePart) -> Result<Hidden, EngineError> {
    let mut rows: Hidden = lp
        .part
        .row_counts()
        .map(|(id, n)| (id, u64::from(n)))
        .collect();
    if let Some(before) = lp.deleted_before {
        // Both lists ascend by series id.
        let hidden = hidden_rows(&lp.part, TimestampMs::MIN, before)?;
        let mut i = 0;
        for (id, n) in hidden {
            while rows[i].0 != id {
                i += 1;
            }
            rows[i].1 -= n;
        }
    }
    Ok(rows)
}

/// Rows per series of `part` with a timestamp in `[from, before)` (timestamps only, no values).
fn hidden_rows(part: &Part, from: TimestampMs, before: TimestampMs) -> Result<Hidden, EngineError> {
    let mut out = Vec::new();
    let mut scan = part.scan(Selection::All, from..before).timestamps_only();
    while let Some(run) = scan.next_run()? {
        out.push((run.series, run.timestamps.len() as u64));
    }
    Ok(out)
}

/// Raises the tombstone of every part of (`tenant`, `metric`) holding rows below `before`; returns the
/// new part list and the rows each series newly lost (exact: only rows not hidden before count).
pub(crate) fn delete_in_parts(
    parts: &[LivePart],
    tenant: &Tenant,
    metric: &str,
    before: TimestampMs,
) -> Result<(Vec<LivePart>, Hidden), EngineError> {
    let mut hidden = Vec::new();
    let mut out = Vec::with_capacity(parts.len());
    for lp in parts {
        let old = lp.deleted_before.unwrap_or(TimestampMs::MIN);
        if !lp.is_of(tenant, metric) || lp.part.meta().min_t >= before || old >= before {
            out.push(lp.clone());
            continue;
        }
        hidden.extend(hidden_rows(&lp.part, old, before)?);
        out.push(LivePart {
            deleted_before: Some(before),
            ..lp.clone()
        });
    }
    Ok((out, hidden))
}

/// Raises the frozen head's tombstone of (`tenant`, `metric`) to `before`; returns it and the series of
/// each row newly hidden.
pub(crate) fn delete_in_frozen(
    frozen: &Frozen,
    tenant: &Tenant,
    metric: MetricId,
    before: TimestampMs,
) -> (Frozen, Vec<SeriesId>) {
    let key = (tenant.clone(), metric);
    let old = frozen
        .tombstones
        .get(&key)
        .copied()
        .unwrap_or(TimestampMs::MIN);
    let mut hidden = Vec::new();
    if before <= old {
        return (frozen.clone(), hidden);
    }
    for rows in frozen.head.rows(tenant, metric) {
        if rows.min_t >= before || rows.max_t < old {
            continue;
        }
        for (i, &t) in rows.timestamps.iter().enumerate() {
            if t >= old && t < before {
                hidden.push(rows.series[i]);
            }
        }
    }
    let mut next = frozen.clone();
    next.tombstones.insert(key, before);
    (next, hidden)
}
