//! Per-series block summaries (format 2): for each series and each time block of `block_ms`
//! milliseconds (epoch-aligned) holding at least one of its rows, the rows' count, sum, min and max.
//! The writer computes them from the rows it is given ([`SummaryBuilder`]) and writes them in chunks
//! of whole series ([`ChunkEntry`]) between the page blobs; a reader decodes a chunk when a query
//! asks for one of its series ([`Summaries`]), and only the columns the query needs.
//!
//! A block summary answers `count`, `sum`, `min`, `max` and `avg` for the block's rows exactly as a
//! scan of those rows would: the sum adds the rows in row order starting from `0.0`, like the scan's
//! running moments; a query adds block sums in block order (the answer may differ from a row-by-row
//! sum in the last bits, as the merge of partials from parallel scans already does).

use std::os::unix::fs::FileExt;
use std::path::Path;

use luminate_model::TimestampMs;

use super::{BlobRef, Delta, FORMAT_V4, compress, corruption};
use crate::EngineError;
use crate::files::io_error;
use crate::record::SeriesId;

/// Width of a summary block unless the writer is told otherwise: one hour. It divides a day (a
/// part's partition), so blocks tile a part exactly, and it divides every interval that is a whole
/// number of hours, so such buckets hold whole blocks. Measured on the benchmark's shape (docs/engine.md,
/// "Parts").
pub(crate) const DEFAULT_BLOCK_MS: i64 = 3_600_000;
/// A chunk of summaries is closed after the series that brings it to this many entries: a chunk
/// decodes in about the time of a page.
pub(crate) const CHUNK_ENTRIES: usize = 16_384;
/// Bytes of one chunk entry in the section.
pub(crate) const CHUNK_ENTRY_LEN: usize = 28;
/// Columns of a chunk blob, in order.
const COLUMNS: usize = 6;

/// The summary of one series' rows in one block.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct BlockSummary {
    /// The block's number: its first millisecond is `block * block_ms`.
    pub block: i64,
    /// Rows (>= 1).
    pub count: u32,
    /// `0.0` plus each row's value, in row order.
    pub sum: f64,
    /// Smallest value (`f64::min` over the rows in row order).
    pub min: f64,
    /// Largest value (`f64::max` likewise).
    pub max: f64,
}

/// Which value columns a reader decodes; counts and blocks are always decoded. Fields not decoded
/// read as `0.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SummaryColumns {
    pub sum: bool,
    pub min: bool,
    pub max: bool,
}

/// One chunk of summaries: the entries of a run of consecutive series of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkEntry {
    /// Directory index of the chunk's first series.
    pub first_series: u32,
    /// Series in the chunk (>= 1).
    pub series: u32,
    /// Block summaries in the chunk (>= series).
    pub entries: u32,
    /// The chunk's blob.
    pub blob: BlobRef,
}

/// The first and last millisecond of block `block`, clamped to the timestamps that exist (the
/// blocks at the ends of time are cut short).
pub(crate) fn block_span(block: i64, block_ms: i64) -> (TimestampMs, TimestampMs) {
    let first = i128::from(block) * i128::from(block_ms);
    let last = first + i128::from(block_ms) - 1;
    let clamp = |t: i128| t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    (clamp(first), clamp(last))
}

/// Collects the summaries of the series a writer is given and cuts them into chunks.
#[derive(Debug)]
pub(super) struct SummaryBuilder {
    block_ms: i64,
    /// A chunk is closed once it holds this many entries ([`CHUNK_ENTRIES`] unless a test says).
    chunk_entries: usize,
    /// Directory index of the chunk's first series.
    first_series: u32,
    /// Entries of each series of the open chunk.
    per_series: Vec<u32>,
    blocks: Vec<i64>,
    counts: Vec<u32>,
    mins: Vec<f64>,
    /// Only for entries of 2 rows or more: a single row's max is its min, its sum `0.0 + min`.
    maxs: Vec<f64>,
    /// Likewise; [`SummaryBuilder::take_chunk`] writes those the format keeps ([`sums_kept_from`]).
    sums: Vec<f64>,
    /// The sums a chunk of format 4 keeps.
    kept_sums: Vec<f64>,
}

/// The fewest rows of an entry whose sum a chunk of part format `version` stores: from format 4,
/// 3, since a two-row entry's sum, `(0.0 + first) + second`, is `(0.0 + min) + max` bit for bit
/// (addition commutes exactly; rows are finite, and where both are zeros either way gives `+0.0`);
/// 2 before.
pub(super) fn sums_kept_from(version: u32) -> u32 {
    if version >= FORMAT_V4 { 3 } else { 2 }
}

impl SummaryBuilder {
    pub(super) fn new(block_ms: i64) -> Self {
        Self {
            block_ms,
            chunk_entries: CHUNK_ENTRIES,
            first_series: 0,
            per_series: Vec::new(),
            blocks: Vec::new(),
            counts: Vec::new(),
            mins: Vec::new(),
            maxs: Vec::new(),
            sums: Vec::new(),
            kept_sums: Vec::new(),
        }
    }

    pub(super) fn block_ms(&self) -> i64 {
        self.block_ms
    }

    /// Closes chunks at `entries` entries instead of [`CHUNK_ENTRIES`].
    #[cfg(test)]
    pub(super) fn with_chunk_entries(mut self, entries: usize) -> Self {
        self.chunk_entries = entries.max(1);
        self
    }

    /// Adds one series' rows (timestamps non-decreasing); true when the chunk is full and should be
    /// written with [`SummaryBuilder::take_chunk`].
    pub(super) fn push_series(&mut self, timestamps: &[TimestampMs], values: &[f64]) -> bool {
        let mut entries = 0u32;
        let mut i = 0;
        while i < timestamps.len() {
            let block = timestamps[i].div_euclid(self.block_ms);
            let (_, last) = block_span(block, self.block_ms);
            let n = timestamps[i..].partition_point(|&t| t <= last);
            let rows = &values[i..i + n];
            let (mut min, mut max, mut sum) = (rows[0], rows[0], 0.0);
            for &v in rows {
                min = min.min(v);
                max = max.max(v);
                sum += v;
            }
            self.blocks.push(block);
            // A series' rows fit a u32 (the writer checks the part's rows).
            self.counts.push(n as u32);
            self.mins.push(min);
            if n >= 2 {
                self.maxs.push(max);
                self.sums.push(sum);
            }
            entries += 1;
            i += n;
        }
        self.per_series.push(entries);
        self.blocks.len() >= self.chunk_entries
    }

    /// True when no series waits to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.per_series.is_empty()
    }

    /// Encodes the open chunk into `out` (cleared first) as part format `version` lays it out and
    /// starts the next; returns the chunk's first series, series and entries.
    pub(super) fn take_chunk(
        &mut self,
        out: &mut Vec<u8>,
        version: u32,
    ) -> Result<(u32, u32, u32), pco::errors::PcoError> {
        out.clear();
        // From format 4 a chunk of one entry per series leaves its counts to the directory, which
        // holds every series' rows: 0.03 bytes a point on the benchmark's day-wide summaries.
        let counts_in_directory =
            version >= FORMAT_V4 && self.blocks.len() == self.per_series.len();
        let counts = if counts_in_directory {
            &[][..]
        } else {
            &self.counts[..]
        };
        let from = sums_kept_from(version);
        let sums = if from > 2 {
            let multis = self.counts.iter().filter(|&&k| k >= 2);
            self.kept_sums.clear();
            self.kept_sums.extend(
                multis
                    .zip(&self.sums)
                    .filter(|&(&k, _)| k >= from)
                    .map(|(_, &sum)| sum),
            );
            &self.kept_sums[..]
        } else {
            &self.sums[..]
        };
        put_column(out, &self.per_series, Delta::Auto)?;
        put_column(out, &self.blocks, Delta::Auto)?;
        put_column(out, counts, Delta::Auto)?;
        put_column(out, &self.mins, Delta::Auto)?;
        put_column(out, &self.maxs, Delta::Auto)?;
        put_column(out, sums, Delta::Auto)?;
        let taken = (
            self.first_series,
            self.per_series.len() as u32,
            self.blocks.len() as u32,
        );
        self.first_series += self.per_series.len() as u32;
        self.per_series.clear();
        self.blocks.clear();
        self.counts.clear();
        self.mins.clear();
        self.maxs.clear();
        self.sums.clear();
        Ok(taken)
    }
}

/// Appends `len u32 | pco blob` (length 0 and no blob for an empty column).
fn put_column<T: pco::data_types::Number>(
    out: &mut Vec<u8>,
    numbers: &[T],
    delta: Delta,
) -> Result<(), pco::errors::PcoError> {
    let at = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    if !numbers.is_empty() {
        compress(numbers, out, delta)?;
    }
    // A chunk's column is far below 4 GiB (CHUNK_ENTRIES plus one series' blocks).
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// What [`Summaries`] reads from its part.
pub(super) struct SummarySource<'a> {
    pub path: &'a Path,
    pub file: &'a std::fs::File,
    pub ids: &'a [SeriesId],
    pub starts: &'a [u32],
    pub chunks: &'a [ChunkEntry],
    /// The part's format: which counts and sums its chunks store.
    pub version: u32,
}

/// Reads the block summaries of chosen series of a part, in ascending id order, decoding each chunk
/// holding one of them once and only the columns asked for.
pub(crate) struct Summaries<'a> {
    source: SummarySource<'a>,
    columns: SummaryColumns,
    /// Directory index from which to look for the next id: ids ascend.
    next_series: usize,
    /// The chunk in `entries`, and whether without block numbers ([`Summaries::decode`]'s `whole`).
    decoded: Option<(usize, bool)>,
    raw: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` are the entries of the chunk's `i`-th series.
    offsets: Vec<u32>,
    entries: Vec<BlockSummary>,
    counts: Vec<u32>,
    blocks: Vec<i64>,
    column: Vec<f64>,
    per_series: Vec<u32>,
    chunks_decoded: usize,
}

impl<'a> Summaries<'a> {
    pub(super) fn new(source: SummarySource<'a>, columns: SummaryColumns) -> Self {
        Self {
            source,
            columns,
            next_series: 0,
            decoded: None,
            raw: Vec::new(),
            offsets: Vec::new(),
            entries: Vec::new(),
            counts: Vec::new(),
            blocks: Vec::new(),
            column: Vec::new(),
            per_series: Vec::new(),
            chunks_decoded: 0,
        }
    }

    /// Series `id`'s first row and its block summaries in block order; `None` when the part does not
    /// hold it. Ids must ascend across calls. A chunk whose bytes do not match their checksum or do
    /// not decode to summaries of the directory's rows is `Corruption` naming the file and offset.
    pub(crate) fn series(
        &mut self,
        id: SeriesId,
    ) -> Result<Option<(u32, &[BlockSummary])>, EngineError> {
        let ids = self.source.ids;
        self.next_series += super::scan::lower_bound_galloping(&ids[self.next_series..], id);
        if ids.get(self.next_series) != Some(&id) {
            return Ok(None);
        }
        let index = self.next_series;
        self.next_series += 1;
        let chunks = self.source.chunks;
        let c = match self.decoded {
            Some((c, false)) if (index as u32) < chunks[c].first_series + chunks[c].series => c,
            _ => {
                let c = chunks.partition_point(|ch| ch.first_series <= index as u32) - 1;
                self.decode(c, false)?;
                c
            }
        };
        let i = index - chunks[c].first_series as usize;
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        Ok(Some((self.source.starts[index], &self.entries[a..b])))
    }

    /// Calls `f(id, entries)` for the series at directory indexes `indexes`, in directory order,
    /// decoding each chunk that holds one of them once: a scan that takes every series of a span
    /// whole from its summaries, without [`Summaries::series`]' search per series. In a chunk of one
    /// entry per series the block numbers are not read (they are 0); callers must not use them.
    pub(crate) fn for_each_series<E>(
        &mut self,
        indexes: std::ops::Range<usize>,
        mut f: impl FnMut(SeriesId, &[BlockSummary]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<EngineError>,
    {
        let chunks = self.source.chunks;
        let first_chunk = chunks.partition_point(|ch| (ch.first_series as usize) <= indexes.start);
        for (c, chunk) in chunks
            .iter()
            .enumerate()
            .skip(first_chunk.saturating_sub(1))
        {
            let (from, to) = (
                chunk.first_series as usize,
                (chunk.first_series + chunk.series) as usize,
            );
            if from >= indexes.end {
                break;
            }
            let (lo, hi) = (from.max(indexes.start), to.min(indexes.end));
            if lo >= hi {
                continue;
            }
            if self.decoded.is_none_or(|(d, _)| d != c) {
                self.decode(c, true)?;
            }
            let ids = &self.source.ids[lo..hi];
            let offsets = &self.offsets[lo - from..=hi - from];
            for (&id, span) in ids.iter().zip(offsets.windows(2)) {
                f(id, &self.entries[span[0] as usize..span[1] as usize])?;
            }
        }
        self.next_series = self.next_series.max(indexes.end);
        Ok(())
    }

    /// Chunks decoded so far: how much work the reads did.
    #[cfg(test)]
    pub(crate) fn chunks_decoded(&self) -> usize {
        self.chunks_decoded
    }

    /// Reads, verifies and decodes chunk `c`. When the caller takes each series' entries `whole` and
    /// the chunk has one entry per series (a day's block, or a part inside one hour), the block
    /// numbers and entries per series are not decoded (each entry's block is 0) and each count is
    /// checked against the series' rows in the directory.
    fn decode(&mut self, c: usize, whole: bool) -> Result<(), EngineError> {
        let source = &self.source;
        let chunk = source.chunks[c];
        let path = source.path;
        self.decoded = None;
        self.raw.resize(chunk.blob.len as usize, 0);
        source
            .file
            .read_exact_at(&mut self.raw, chunk.blob.offset)
            .map_err(io_error("read part", path))?;
        let crc = crc32c::crc32c(&self.raw);
        if crc != chunk.blob.crc {
            return Err(corruption(
                path,
                chunk.blob.offset,
                format!(
                    "summary chunk {c} checksum mismatch: stored {:#010x}, computed {crc:#010x}",
                    chunk.blob.crc
                ),
            ));
        }
        let bad = |reason: String| {
            corruption(
                path,
                chunk.blob.offset,
                format!("summary chunk {c} {reason}"),
            )
        };
        let mut columns = [&[][..]; COLUMNS];
        let mut rest = &self.raw[..];
        for (k, column) in columns.iter_mut().enumerate() {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return Err(bad(format!("ends before column {k}")));
            };
            let len = u32::from_le_bytes(*len) as usize;
            if len > tail.len() {
                return Err(bad(format!("column {k} of {len} bytes overruns the chunk")));
            }
            (*column, rest) = tail.split_at(len);
        }
        if !rest.is_empty() {
            return Err(bad(format!("{} bytes after the columns", rest.len())));
        }
        let series = chunk.series as usize;
        let entries = chunk.entries as usize;
        let first = chunk.first_series as usize;
        let rows_of = |i: usize| source.starts[first + i + 1] - source.starts[first + i];
        self.offsets.clear();
        let counts_of_directory = source.version >= FORMAT_V4 && entries == series;
        if counts_of_directory {
            if !columns[2].is_empty() {
                return Err(bad(
                    "counts column: present where the directory holds the counts".to_owned(),
                ));
            }
            self.counts.clear();
            self.counts.extend((0..series).map(rows_of));
        } else {
            decode_column(columns[2], entries, &mut self.counts)
                .map_err(|e| bad(format!("counts column: {e}")))?;
        }
        if whole && entries == series {
            // Stored counts must be the directory's; the directory's own need no check.
            if !counts_of_directory
                && let Some(i) = (0..series).find(|&i| self.counts[i] != rows_of(i))
            {
                return Err(bad(format!(
                    "entries of series index {} do not summarise its {} rows",
                    first + i,
                    rows_of(i)
                )));
            }
            self.blocks.clear();
            self.blocks.resize(entries, 0);
            self.offsets.extend(0..=entries as u32);
        } else {
            decode_column(columns[0], series, &mut self.per_series)
                .map_err(|e| bad(format!("series column: {e}")))?;
            decode_column(columns[1], entries, &mut self.blocks)
                .map_err(|e| bad(format!("blocks column: {e}")))?;
            // Every series' entries: at least one, blocks ascending, counts adding up to its rows.
            self.offsets.push(0);
            let mut at = 0usize;
            for (i, &n) in self.per_series.iter().enumerate() {
                let end = at + n as usize;
                let rows = rows_of(i);
                let ok = n >= 1
                    && end <= entries
                    && self.blocks[at..end].windows(2).all(|w| w[0] < w[1])
                    && self.counts[at..end].iter().all(|&k| k >= 1)
                    && self.counts[at..end]
                        .iter()
                        .map(|&k| u64::from(k))
                        .sum::<u64>()
                        == u64::from(rows);
                if !ok {
                    return Err(bad(format!(
                        "entries of series index {} do not summarise its {rows} rows",
                        first + i
                    )));
                }
                at = end;
                self.offsets.push(end as u32);
            }
            if at != entries {
                return Err(bad(format!(
                    "series hold {at} entries, the chunk {entries}"
                )));
            }
        }
        self.entries.clear();
        self.entries.extend(
            self.blocks
                .iter()
                .zip(&self.counts)
                .map(|(&block, &count)| BlockSummary {
                    block,
                    count,
                    ..BlockSummary::default()
                }),
        );
        let multi = self.counts.iter().filter(|&&k| k >= 2).count();
        let sums_from = sums_kept_from(source.version);
        let summed = self.counts.iter().filter(|&&k| k >= sums_from).count();
        let want = self.columns;
        // Entries of two rows whose sum is not stored: `(0.0 + min) + max`.
        let pairs = want.sum && summed < multi;
        let need_min = want.min || (want.sum || want.max) && multi < entries || pairs;
        if need_min {
            decode_column(columns[3], entries, &mut self.column)
                .map_err(|e| bad(format!("min column: {e}")))?;
            for (e, &v) in self.entries.iter_mut().zip(&self.column) {
                (e.min, e.max, e.sum) = (v, v, 0.0 + v);
            }
        }
        if want.max || pairs {
            decode_column(columns[4], multi, &mut self.column)
                .map_err(|e| bad(format!("max column: {e}")))?;
            let multis = self.entries.iter_mut().filter(|e| e.count >= 2);
            for (e, &v) in multis.zip(&self.column) {
                e.max = v;
                e.sum = (0.0 + e.min) + v;
            }
        }
        if want.sum {
            decode_column(columns[5], summed, &mut self.column)
                .map_err(|e| bad(format!("sum column: {e}")))?;
            let summed = self.entries.iter_mut().filter(|e| e.count >= sums_from);
            for (e, &v) in summed.zip(&self.column) {
                e.sum = v;
            }
        }
        if !want.min {
            self.entries.iter_mut().for_each(|e| e.min = 0.0);
        }
        if !want.max {
            self.entries.iter_mut().for_each(|e| e.max = 0.0);
        }
        if !want.sum {
            self.entries.iter_mut().for_each(|e| e.sum = 0.0);
        }
        self.decoded = Some((c, whole && entries == series));
        self.chunks_decoded += 1;
        Ok(())
    }
}

/// Decodes a column of exactly `n` numbers (an empty column is `n == 0`).
fn decode_column<T: pco::data_types::Number + Default>(
    raw: &[u8],
    n: usize,
    out: &mut Vec<T>,
) -> Result<(), String> {
    if raw.is_empty() {
        out.clear();
        return if n == 0 {
            Ok(())
        } else {
            Err(format!("empty where {n} numbers were expected"))
        };
    }
    super::decompress(raw, n, out)
}
