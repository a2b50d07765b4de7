//! fuzzing: the smallest public entry points to the engine's decoders of bytes that a damaged disk or
//! an attacker with access to the data directory can alter — WAL records and segments, parts, the
//! manifest, the series log — for the fuzz targets in `fuzz/` (docs/fuzzing.md). Built only with the
//! `fuzzing` feature: the decoders stay private to the engine otherwise. Each function runs the code
//! start-up runs on those bytes, not a copy of it.

use std::path::Path;

use luminate_model::TimestampMs;

use crate::error::EngineError;
use crate::head::Head;
use crate::index::Index;
use crate::manifest::Manifest;
use crate::part::{Part, Selection, SummaryColumns};
use crate::record;
use crate::wal;

/// A decoded WAL or series-log payload (opaque: only re-encoding and its kind are offered).
#[derive(Debug, Clone, PartialEq)]
pub struct Record(record::Record);

impl Record {
    /// Decodes a whole payload as replay does; `Err` is the payload offset and the reason.
    pub fn decode(payload: &[u8]) -> Result<Self, (usize, String)> {
        record::Record::decode(payload)
            .map(Self)
            .map_err(|e| (e.offset, e.reason))
    }

    /// The bytes the engine writes for this record.
    pub fn encode(&self) -> Vec<u8> {
        match &self.0 {
            record::Record::Write(batch) => batch.encode(),
            record::Record::DeleteBefore(delete) => delete.encode(),
            record::Record::Series(defs) => defs.encode(),
            // pco does not fail on u32s (`SeriesBatch::encode`); a failure would be a finding.
            record::Record::SeriesBatch(batch) => batch
                .encode()
                .unwrap_or_else(|e| panic!("pco failed to encode u32s: {e}")),
            record::Record::KeyedWrite(key, batch) => batch.encode_keyed(key),
            record::Record::KeyWindow(keys) => {
                record::encode_key_window(&keys.iter().collect::<Vec<_>>())
            }
        }
    }

    /// `write`, `delete`, `series`, `series_batch`, `keyed_write` or `key_window`.
    pub fn kind(&self) -> &'static str {
        match &self.0 {
            record::Record::Write(_) => "write",
            record::Record::DeleteBefore(_) => "delete",
            record::Record::Series(_) => "series",
            record::Record::SeriesBatch(_) => "series_batch",
            record::Record::KeyedWrite(..) => "keyed_write",
            record::Record::KeyWindow(_) => "key_window",
        }
    }
}

/// What replaying one WAL segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReplay {
    /// Offsets of the records replayed, in order.
    pub records: Vec<u64>,
    /// Where the torn tail starts (what start-up cuts off), if the segment has one.
    pub torn_at: Option<u64>,
    /// Points in the head after the replay.
    pub head_points: u64,
}

/// Replays `bytes` as the last segment of the WAL into an empty index and head, as start-up does
/// (`Wal::recover` with `recovery::replay_record`): every complete record is decoded and applied; a
/// torn tail is allowed, damage before a complete record is corruption.
pub fn replay_wal_segment(bytes: &[u8]) -> Result<SegmentReplay, EngineError> {
    let path = Path::new("00000001.wal");
    let (mut index, mut head) = (Index::default(), Head::default());
    let mut parts = Vec::new();
    let mut records = Vec::new();
    let mut keys = crate::keys::Window::new(crate::config::KeyWindow::default());
    let now = luminate_model::time::now_ms();
    let damage = wal::scan_segment(path, bytes, |offset, payload| {
        records.push(offset);
        let state = crate::recovery::Replay {
            index: &mut index,
            head: &mut head,
            parts: &mut parts,
            keys: &mut keys,
            now,
        };
        crate::recovery::replay_record(state, path, offset, payload)
    })?;
    let torn_at = match damage {
        None => None,
        Some(d) => Some(wal::torn_tail(path, bytes, d)?.offset),
    };
    Ok(SegmentReplay {
        records,
        torn_at,
        head_points: head.points(),
    })
}

/// Replays `bytes` as the last segment of the series log into an empty index, as start-up does
/// (`SeriesLog::recover`); the number of series defined.
pub fn replay_series_log(bytes: &[u8]) -> Result<usize, EngineError> {
    let path = Path::new("00000001.wal");
    let mut index = Index::default();
    let mut strings = Default::default();
    let damage = wal::scan_segment(path, bytes, |offset, payload| {
        crate::series_log::replay(&mut index, &mut strings, payload).map_err(|reason| {
            EngineError::Corruption {
                path: path.to_path_buf(),
                offset,
                reason,
            }
        })
    })?;
    if let Some(d) = damage {
        wal::torn_tail(path, bytes, d)?;
    }
    Ok(index.tenants().map(|(_, ti)| ti.series_count()).sum())
}

/// Decodes a manifest as start-up does, and returns the bytes the engine would write for it.
pub fn manifest_round_trip(bytes: &[u8]) -> Result<Vec<u8>, EngineError> {
    let manifest = Manifest::decode(Path::new("MANIFEST"), bytes)?;
    manifest
        .encode()
        .map_err(|e| crate::files::io_error("encode manifest", Path::new("MANIFEST"))(e.into()))
}

/// What reading a whole part found.
#[derive(Debug, Clone, PartialEq)]
pub struct PartRead {
    /// Rows the section says the part holds.
    pub rows: u64,
    /// Smallest and largest timestamp the section records.
    pub time: (TimestampMs, TimestampMs),
    /// Series in the directory, ascending.
    pub series: Vec<u32>,
    /// The runs of a full scan, in scan order.
    pub runs: Vec<RunRead>,
    /// Values visited by a value-only pass over every page (`Part::visit_values`).
    pub visited: u64,
    /// Block summaries read, over every series (format 2).
    pub summaries: u64,
}

/// One series' run of a scan, summarised (a run may hold millions of rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRead {
    /// The series.
    pub series: u32,
    /// Its rows.
    pub rows: usize,
    /// One value per timestamp.
    pub values_match: bool,
    /// Timestamps ascending (equal ones allowed: a series may hold two values at one time).
    pub ascending: bool,
    /// Every timestamp within the part's recorded range.
    pub within: bool,
}

/// Opens the part file at `path` as start-up does (header, footer, section checksum and invariants),
/// then reads everything a query can: every series' rows, every page's values, every block summary.
pub fn read_part(path: &Path) -> Result<PartRead, EngineError> {
    let part = Part::open(path)?;
    let (min_t, max_t) = (part.meta().min_t, part.meta().max_t);
    let mut runs = Vec::new();
    let mut scan = part.scan(Selection::All, ..);
    while let Some(run) = scan.next_run()? {
        runs.push(RunRead {
            series: run.series,
            rows: run.timestamps.len(),
            values_match: run.values.len() == run.timestamps.len(),
            ascending: run.timestamps.windows(2).all(|w| w[0] <= w[1]),
            within: run.timestamps.iter().all(|t| (min_t..=max_t).contains(t)),
        });
    }
    let mut visited = 0u64;
    let values_only = crate::part::PageColumns {
        timestamps: false,
        values: true,
    };
    part.visit_rows::<EngineError>(
        0..=u32::MAX,
        values_only,
        || Ok(()),
        |_, _, values| {
            visited += values.len() as u64;
            Ok(())
        },
    )?;
    let mut summaries = 0u64;
    let all = SummaryColumns {
        sum: true,
        min: true,
        max: true,
    };
    if let Some(mut reader) = part.summaries(all) {
        for &id in part.series_ids() {
            if let Some((_, blocks)) = reader.series(id)? {
                summaries += blocks.len() as u64;
            }
        }
    }
    let meta = part.meta();
    Ok(PartRead {
        rows: meta.rows,
        time: (meta.min_t, meta.max_t),
        series: part.series_ids().to_vec(),
        runs,
        visited,
        summaries,
    })
}
