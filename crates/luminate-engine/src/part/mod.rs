//! part: the on-disk format of one immutable, columnar part — the points of one partition for a set
//! of series, sorted by (series id, timestamp, value) — with its writer ([`PartWriter`]) and reader
//! ([`Part`]). It owns the bytes of a part file and nothing else: which points form a partition
//! (tenant, metric, UTC day), when the head is flushed, how parts are named, listed, merged or dropped
//! belong to the flush and compaction code; series dimensions belong to the series index (a part only
//! knows series ids).
//!
//! # Layout (format version 4, all integers little-endian)
//! ```text
//! part       := header blobs section footer
//! header     := MAGIC "LPRT" | FORMAT_V4 u32                                        HEADER_LEN = 8
//! blobs      := (timestamps_blob values_blob)* one pair per page, adjacent, in page order, with a
//!               summary chunk_blob after the page that completed it
//!               timestamps_blob: paged i64 (first-order deltas; mode chosen by pco)
//!               values_blob:     paged f64 (delta and mode chosen by pco per page)
//!               paged: one pco chunk in sub-pages of 1 024 rows, each decodable alone
//!               (`paged::SUBPAGE_ROWS`; the layout is in the `paged` module)
//! section    := meta page_entry{page_count} directory summaries
//! meta       := tenant str | metric str | day i64 | rows u64 | series_count u32 | page_count u32
//!               | page_rows u32 | min_t i64 | max_t i64
//! page_entry := first_row u32 | rows u32 | min_t i64 | max_t i64
//!               | ts_offset u64 | ts_len u32 | ts_crc u32
//!               | values_offset u64 | values_len u32 | values_crc u32                 PAGE_ENTRY_LEN = 56
//! directory  := ids_len u32 | ids blob | counts_len u32 | counts blob
//!               ids:    pco standalone u32 (first-order deltas), the series ids, strictly ascending
//!               counts: pco standalone u32, each series' row count (>= 1), same order
//! summaries  := block_ms i64 | chunk_count u32 | chunk_entry{chunk_count}
//!               block_ms 0 with chunk_count 0: a part written without summaries
//! chunk_entry:= first_series u32 | series u32 | entries u32
//!               | offset u64 | len u32 | crc u32                                  CHUNK_ENTRY_LEN = 28
//! chunk_blob := column{6}, column := len u32 | pco standalone blob (len 0: no numbers)
//!               per_series u32 × series:   block summaries of each of the chunk's series (>= 1)
//!               block      i64 × entries:  block number (first ms = block × block_ms), ascending per series
//!               count      u32 × entries:  rows of the series in the block (>= 1); empty when
//!                                          entries = series (each count is the directory's)
//!               min        f64 × entries
//!               max        f64 × entries of count >= 2 (a single row's max is its min)
//!               sum        f64 × entries of count >= 3 (a single row's sum is 0.0 + its min, two
//!                                          rows' (0.0 + min) + max)
//! footer     := section_offset u64 | section_len u64 | section_crc u32 | MAGIC "LPRT"  FOOTER_LEN = 24
//! str        := u32 byte length | UTF-8 bytes
//! ```
//! `day` is days since 1970-01-01 UTC, `min_t`/`max_t` are inclusive, `page_rows` is the maximum rows
//! of a page as written (every page but the last is full). `crc` fields are CRC-32C of the blob's
//! bytes; `section_crc` covers the whole section. Format 3 (earlier builds) is format 4 with every
//! count and the sum of every entry of 2 rows or more in its chunks. Format 2 is format 3 with each
//! page column one pco standalone blob, decoded from its first row up to the last row a scan needs.
//! Format 1 is format 2 without the `summaries` of the section and without chunk blobs; its parts
//! are scanned row by row. All three are still read. Blocks are epoch-aligned, `block_ms` wide (an hour,
//! `summary::DEFAULT_BLOCK_MS`, or a day, [`MAX_BLOCK_MS`]: the writer's choice per part);
//! a block summary's sum adds its rows in row order from `0.0`, as a scan does; min and max fold
//! with `f64::min`/`f64::max` from the first row. Chunks hold whole series, in directory order, and
//! close after the series that brings them to `summary::CHUNK_ENTRIES` (16 384) entries.

//! # Invariants
//! - Rows are numbered from 0 in (series id, timestamp, value) order; series `i` owns rows
//!   `[sum of counts before i, + count_i)`. Pages cut that sequence every `page_rows` rows regardless of
//!   series boundaries, so a series may span pages and a page may hold many series.
//! - Values are never NaN (the write path admits finite values; the writer refuses NaN), so a
//!   two-row block's sum is `(0.0 + min) + max` bit for bit.
//! - A part holds at least one series and at most `u32::MAX` rows, so a row number fits a `u32` and the
//!   reader keeps 8 bytes per series in memory (id and first row).
//! - The file is written to a temp file beside its final path, fsynced, renamed into place and the
//!   directory fsynced: a part that exists under its name is complete.
//! - The reader verifies the footer, header and section checksum at open and each blob's checksum
//!   before decoding it; any mismatch is `EngineError::Corruption` naming the file and offset.
//!
//! # Why this shape
//! pco was measured against zstd (levels 3 to 19) over delta-encoded, byte-shuffled columns
//! (docs/engine.md, "Parts"): it stores 20-30% fewer bytes per point on every dataset tried (3.3 vs
//! 4.2 bytes on 2M latency series of 5 points, 1.7 vs 2.1 on counters) at a useful write speed. Pages
//! bound the work of reading one series to a page's decode (`DEFAULT_PAGE_ROWS` is the measured
//! compromise between that, the ratio and the write speed); sub-pages bound it further, to the
//! 1 024-row slices holding the series (the `paged` module says what they cost). Timestamps are not rebased per series:
//! measured, per-series deltas gain 1% on short series and lose on long ones — pco's own delta encoding
//! already spends its bits on the jitter and on one jump per series boundary.
//! Everything the reader keeps in memory (directory, page index, meta, summary chunk index) is in one
//! checksummed section read with one positioned read; page and summary blobs are read on demand,
//! never mapped, so summaries cost no memory between queries.
//!
//! Block summaries let `count`, `sum`, `avg`, `min` and `max` over a part take every block that
//! lies inside the query's range (and inside one bucket) from a chunk of a few numbers per series
//! instead of decoding pages; the rows of blocks the range or a bucket edge cuts are scanned, from
//! the pages holding them only. A block is an hour when a series has enough rows in one, because an
//! hour divides the day (blocks tile a part) and every whole-hour interval (such buckets hold whole
//! blocks); otherwise it is the partition's day, one summary per series of the part, which still
//! serves any range that holds the part's rows.
//!
//! A part carries summaries only where they pay ([`summary_block_ms`]): a summary costs about three
//! numbers, so where a block holds few rows of a series it adds a large share of the part's bytes
//! (+13 % on the benchmark's 5 rows per series, a day's block each) and saves decoding those rows'
//! values; where series are dense (a scrape every 15 s puts 240 rows in an hour) it costs a few
//! percent and saves decoding nearly every page.

mod paged;
mod reader;
mod scan;
mod section;
mod sink;
mod summary;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;

use luminate_model::{Tenant, TimestampMs};

use crate::EngineError;
use crate::record::SeriesId;

pub use paged::{PagedColumn, SUBPAGE_ROWS, compress as compress_paged};
pub(crate) use reader::{PageColumns, Part, Run, Selection};
pub(crate) use scan::SeriesScan;
pub(crate) use sink::{PartFiles, PartSink};
pub(crate) use summary::{BlockSummary, SummaryColumns, block_span};
pub(crate) use writer::PartWriter;
#[cfg(test)]
pub(crate) use writer::write_part;

/// First bytes of every part, and its last four.
pub(crate) const MAGIC: [u8; 4] = *b"LPRT";
/// The layout of earlier builds, without summaries: still read.
pub(crate) const FORMAT_V1: u32 = 1;
/// Format 1 plus per-series block summaries: still read (written by tests only).
#[cfg(test)]
pub(crate) const FORMAT_V2: u32 = 2;
/// Format 2 with each page column in independently decodable sub-pages: still read (written by
/// tests only).
pub(crate) const FORMAT_V3: u32 = 3;
/// The layout this build writes: format 3 with fewer numbers in a summary chunk — no counts where
/// the chunk has one entry per series (the directory holds them) and no sums of two-row entries
/// (`(0.0 + min) + max`).
pub(crate) const FORMAT_V4: u32 = 4;
/// Rows a block summary must stand for, on average, for a part to carry summaries
/// ([`summary_block_ms`]; `EngineConfig::summary_min_rows` sets it, `0` always summarises).
pub(crate) const DEFAULT_SUMMARY_MIN_ROWS: u64 = 4;

/// The block widths a writer chooses from, narrowest first: an hour (its summaries serve hourly and
/// wider buckets as well as ranges of whole hours), then the partition's day (one summary per series
/// of the part: it serves a range that holds the part's rows, without buckets or with daily ones).
const BLOCK_WIDTHS: [i64; 2] = [summary::DEFAULT_BLOCK_MS, MAX_BLOCK_MS];

/// The width of the block summaries a part of `rows` rows over `series` series, its timestamps within
/// `min_t..=max_t`, should carry: the narrowest of [`BLOCK_WIDTHS`] whose blocks hold, on average,
/// at least `min_rows` rows of a series (each series' rows spread over the blocks the part spans, at
/// most one block per row); `None` (no summaries) when even a day's block holds fewer.
pub(crate) fn summary_block_ms(
    rows: u64,
    series: u64,
    min_t: TimestampMs,
    max_t: TimestampMs,
    min_rows: u64,
) -> Option<i64> {
    if min_rows == 0 {
        return Some(summary::DEFAULT_BLOCK_MS);
    }
    let series = series.max(1);
    BLOCK_WIDTHS.into_iter().find(|&block_ms| {
        let span_blocks = (i128::from(max_t).div_euclid(i128::from(block_ms))
            - i128::from(min_t).div_euclid(i128::from(block_ms)))
            + 1;
        let blocks = u64::try_from(span_blocks)
            .unwrap_or(u64::MAX)
            .clamp(1, (rows / series).max(1));
        u128::from(rows) >= u128::from(series) * u128::from(blocks) * u128::from(min_rows)
    })
}

/// The distinct ids among `ids` (all at most `max_id`), for [`summary_block_ms`]'s `series`: one bit
/// per id.
pub(crate) fn distinct_series(ids: impl Iterator<Item = SeriesId>, max_id: SeriesId) -> u64 {
    let mut seen = vec![0u64; max_id as usize / 64 + 1];
    let mut series = 0u64;
    for id in ids {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        if seen[word] & bit == 0 {
            seen[word] |= bit;
            series += 1;
        }
    }
    series
}

/// Widest summary block a reader accepts: a day, a part's partition.
pub(crate) const MAX_BLOCK_MS: i64 = 86_400_000;
/// Bytes of the header: magic and version.
pub(crate) const HEADER_LEN: usize = 8;
/// Bytes of the footer: section offset, section length, section checksum, magic.
pub(crate) const FOOTER_LEN: usize = 24;
/// Bytes of one page index entry.
pub(crate) const PAGE_ENTRY_LEN: usize = 56;
/// Rows per page unless the writer is told otherwise. Measured on 2M series x 5 points (docs/engine.md,
/// "Parts"): 16k rows store 0.7% more bytes than 64k but read one series 4x faster (~150 us vs ~590 us,
/// one page decode); 4k reads one series in ~45 us but stores 2.5% more than 64k and writes 2.5x slower
/// (pco's fixed cost per page).
pub(crate) const DEFAULT_PAGE_ROWS: u32 = 16_384;
/// Largest page a reader accepts: pco's own page limit, so a part page is one pco page, and a bound on
/// the decode buffers a damaged or foreign section could ask for.
pub(crate) const MAX_PAGE_ROWS: u32 = 1 << 18;
/// Most rows a part may hold, so that row numbers fit a `u32`.
pub(crate) const MAX_ROWS: u64 = u32::MAX as u64;

/// What a part holds, as recorded in its section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartMeta {
    /// Owner of every series in the part.
    pub tenant: Tenant,
    /// The metric of every series in the part.
    pub metric: String,
    /// The partition's day: days since 1970-01-01 UTC. Recorded, not checked against the timestamps
    /// (partitioning is the flush's decision).
    pub day: i64,
    /// Points in the part.
    pub rows: u64,
    /// Series in the part.
    pub series: u32,
    /// Pages in the part.
    pub pages: u32,
    /// Smallest timestamp.
    pub min_t: TimestampMs,
    /// Largest timestamp (inclusive).
    pub max_t: TimestampMs,
}

/// Where one compressed column of a page lives in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobRef {
    /// Offset of the first byte.
    pub offset: u64,
    /// Bytes.
    pub len: u32,
    /// CRC-32C of the bytes.
    pub crc: u32,
}

/// One entry of the page index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageEntry {
    /// Number of the page's first row in the part.
    pub first_row: u32,
    /// Rows in the page (>= 1).
    pub rows: u32,
    /// Smallest timestamp in the page.
    pub min_t: TimestampMs,
    /// Largest timestamp in the page (inclusive).
    pub max_t: TimestampMs,
    /// The timestamps column.
    pub timestamps: BlobRef,
    /// The values column; v1 writes it right after the timestamps so a page is one read.
    pub values: BlobRef,
}

impl PageEntry {
    /// One past the page's last row.
    pub(crate) fn end_row(&self) -> u32 {
        self.first_row + self.rows
    }
}

/// How a column's deltas are taken.
#[derive(Debug, Clone, Copy)]
pub enum Delta {
    /// pco chooses from the data (values: gauges want none, counters want first order).
    Auto,
    /// First-order deltas: timestamps and ids, ascending within each series. Saying so saves pco's
    /// trial compressions of every candidate encoding (a fifth of a flush's CPU time, measured).
    Consecutive,
}

/// Appends the pco standalone encoding of `numbers` to `out`, as every blob of a part is written:
/// pco's level 8, `delta` as given, the mode chosen from the data, the number type recorded in the
/// blob's header, and pco's page as large as ours so a part page is one pco chunk.
pub fn compress<T: pco::data_types::Number>(
    numbers: &[T],
    out: &mut Vec<u8>,
    delta: Delta,
) -> Result<(), pco::errors::PcoError> {
    let delta = match delta {
        Delta::Auto => pco::DeltaSpec::Auto,
        Delta::Consecutive => pco::DeltaSpec::TryConsecutive(1),
    };
    let config = pco::ChunkConfig::default()
        .with_delta_spec(delta)
        .with_paging_spec(pco::PagingSpec::EqualPagesUpTo(MAX_PAGE_ROWS as usize));
    pco::standalone::simple_compress_into(numbers, &config, out)?;
    Ok(())
}

/// Decodes a blob [`compress`] wrote into `out` (cleared first), which must hold exactly `rows`
/// numbers; `Err` says what is wrong with it.
pub fn decompress<T: pco::data_types::Number + Default>(
    raw: &[u8],
    rows: usize,
    out: &mut Vec<T>,
) -> Result<(), String> {
    out.clear();
    out.resize(rows, T::default());
    match pco::standalone::simple_decompress_into(raw, out) {
        Ok(progress) if progress.finished && progress.n_processed == rows => Ok(()),
        Ok(progress) => Err(format!(
            "{} numbers where {rows} were expected",
            progress.n_processed
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// A `Corruption` error for `path` at `offset`.
fn corruption(path: &Path, offset: u64, reason: String) -> EngineError {
    EngineError::Corruption {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}
