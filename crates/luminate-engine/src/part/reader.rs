//! Reading a part: [`Part::open`] verifies the file and keeps its section (meta, page index, series
//! directory) in memory; [`SeriesScan`] reads the rows of chosen series in a time range, decoding each
//! needed page once, lazily, with positioned reads on the shared file handle.

use std::fs::{File, OpenOptions};
use std::ops::{Bound, Range, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use luminate_model::TimestampMs;

use super::section::{self, Footer};
use super::summary::{ChunkEntry, Summaries, SummaryColumns, SummarySource};
use super::{
    BlobRef, FOOTER_LEN, FORMAT_V1, FORMAT_V2, HEADER_LEN, MAGIC, PageEntry, PartMeta, corruption,
};
use crate::EngineError;
use crate::files::{io_error, open_waiting};
use crate::record::SeriesId;

/// An open part. Immutable and `Send + Sync`: share it across query threads; each thread scans with
/// its own [`SeriesScan`].
#[derive(Debug)]
pub(crate) struct Part {
    path: PathBuf,
    /// Read with `read_at` only, so concurrent scans need no lock and no seek position.
    file: File,
    meta: PartMeta,
    pages: Box<[PageEntry]>,
    /// Series ids, strictly ascending.
    ids: Box<[SeriesId]>,
    /// `starts[i]..starts[i + 1]` are series `i`'s rows; one more entry than `ids`. With `ids`, 8 bytes
    /// per series: a part may hold millions.
    starts: Box<[u32]>,
    /// Format 2: the width of the summary blocks and the chunks of summaries (read on demand, never
    /// kept); `None` for a format 1 part.
    summaries: Option<(i64, Box<[ChunkEntry]>)>,
}

/// Which series a scan reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Selection<'a> {
    /// Every series of the part.
    All,
    /// These ids, strictly ascending; ids the part does not hold are skipped.
    Only(&'a [SeriesId]),
}

/// The rows of one series within a scan's time range, sorted by (timestamp, value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Run<'a> {
    /// The series.
    pub series: SeriesId,
    /// Timestamps, ascending.
    pub timestamps: &'a [TimestampMs],
    /// Values, one per timestamp.
    pub values: &'a [f64],
}

impl Part {
    /// Opens a part, verifying header, footer and the section's checksum and invariants. Page blobs are
    /// not read until a scan needs them.
    pub(crate) fn open(path: &Path) -> Result<Self, EngineError> {
        let file = open_waiting(path, OpenOptions::new().read(true))
            .map_err(io_error("open part", path))?;
        let len = file
            .metadata()
            .map_err(io_error("read metadata of part", path))?
            .len();
        let min_len = (HEADER_LEN + FOOTER_LEN) as u64;
        if len < min_len {
            return Err(corruption(
                path,
                0,
                format!("truncated part: {len} bytes, a part has at least {min_len}"),
            ));
        }
        let mut header = [0u8; HEADER_LEN];
        read_exact_at(&file, path, &mut header, 0)?;
        if header[..4] != MAGIC {
            return Err(corruption(
                path,
                0,
                format!("bad magic {:02x?}, expected {MAGIC:02x?}", &header[..4]),
            ));
        }
        let version = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if version != FORMAT_V1 && version != FORMAT_V2 {
            return Err(corruption(
                path,
                4,
                format!(
                    "unsupported part format version {version} (this build reads {FORMAT_V1} and {FORMAT_V2})"
                ),
            ));
        }
        let mut footer = [0u8; FOOTER_LEN];
        read_exact_at(&file, path, &mut footer, len - FOOTER_LEN as u64)?;
        let footer = Footer::decode(path, len, &footer)?;
        // The footer check bounds the section by the file's length.
        let mut bytes = vec![0u8; footer.section_len as usize];
        read_exact_at(&file, path, &mut bytes, footer.section_offset)?;
        let crc = crc32c::crc32c(&bytes);
        if crc != footer.section_crc {
            return Err(corruption(
                path,
                footer.section_offset,
                format!(
                    "section checksum mismatch: stored {:#010x}, computed {crc:#010x}",
                    footer.section_crc
                ),
            ));
        }
        let section = section::decode(path, version, footer.section_offset, &bytes)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            meta: section.meta,
            pages: section.pages,
            ids: section.ids,
            starts: section.starts,
            summaries: section.summaries,
        })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What the part holds.
    pub(crate) fn meta(&self) -> &PartMeta {
        &self.meta
    }

    /// The part's series, ascending.
    pub(crate) fn series_ids(&self) -> &[SeriesId] {
        &self.ids
    }

    /// The rows of series `id`, `None` if the part does not hold it.
    pub(crate) fn series_rows(&self, id: SeriesId) -> Option<Range<u32>> {
        let i = self.ids.binary_search(&id).ok()?;
        Some(self.starts[i]..self.starts[i + 1])
    }

    /// Every series with its number of points, ascending by id, without reading a page: `count` over a
    /// part inside the query range, per-value point counts at start-up.
    pub(crate) fn row_counts(&self) -> impl ExactSizeIterator<Item = (SeriesId, u32)> + '_ {
        self.ids
            .iter()
            .zip(self.starts.windows(2))
            .map(|(&id, w)| (id, w[1] - w[0]))
    }

    /// The width of the part's summary blocks in milliseconds; `None` when the part has no summaries
    /// (format 1).
    pub(crate) fn block_ms(&self) -> Option<i64> {
        self.summaries.as_ref().map(|(block_ms, _)| *block_ms)
    }

    /// Starts reading block summaries, decoding the given value columns; `None` when the part has no
    /// summaries (format 1: its rows must be scanned).
    pub(crate) fn summaries(&self, columns: SummaryColumns) -> Option<Summaries<'_>> {
        let (_, chunks) = self.summaries.as_ref()?;
        Some(Summaries::new(
            SummarySource {
                path: &self.path,
                file: &self.file,
                ids: &self.ids,
                starts: &self.starts,
                chunks,
            },
            columns,
        ))
    }

    /// An empty set of pages, to be marked with the rows a scan needs ([`SeriesScan::only_pages`]).
    pub(crate) fn page_mask(&self) -> PageMask<'_> {
        PageMask {
            pages: &self.pages,
            wanted: vec![false; self.pages.len()],
            next: 0,
        }
    }

    /// Pages in the part.
    #[cfg(test)]
    pub(crate) fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// The page index, in row order: each page's rows and time range.
    #[cfg(test)]
    pub(crate) fn pages(&self) -> &[PageEntry] {
        &self.pages
    }

    /// Starts reading the selected series' rows whose timestamp is in `time` (e.g. `start..end`, or
    /// `..` for all).
    pub(crate) fn scan<'a>(
        &'a self,
        selection: Selection<'a>,
        time: impl RangeBounds<TimestampMs>,
    ) -> SeriesScan<'a> {
        let lo = match time.start_bound() {
            Bound::Included(&t) => Some(t),
            Bound::Excluded(&t) => t.checked_add(1),
            Bound::Unbounded => Some(TimestampMs::MIN),
        };
        let hi = match time.end_bound() {
            Bound::Included(&t) => Some(t),
            Bound::Excluded(&t) => t.checked_sub(1),
            Bound::Unbounded => Some(TimestampMs::MAX),
        };
        let time = match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
            _ => None,
        };
        SeriesScan {
            part: self,
            selection,
            time,
            with_values: true,
            with_timestamps: true,
            next_wanted: 0,
            next_series: 0,
            page_hint: 0,
            decoded: None,
            pages_decoded: 0,
            rows_decoded: 0,
            only_pages: None,
            raw: Vec::new(),
            page_timestamps: Vec::new(),
            page_values: Vec::new(),
            stitch_timestamps: Vec::new(),
            stitch_values: Vec::new(),
        }
    }
}

impl Part {
    /// Calls `visit(series, values)` for the rows of every series whose id lies in `ids`, page by page
    /// in directory order (a series spanning pages comes once per page); `between_pages` runs before
    /// each page. Values are decoded, timestamps only checksummed: for scans that need every row of a
    /// part inside their time range and no time, when most series are selected — walking the pages
    /// costs nothing per series, where [`SeriesScan`] searches the directory and gathers each one.
    pub(crate) fn visit_values<E: From<EngineError>>(
        &self,
        ids: std::ops::RangeInclusive<SeriesId>,
        mut between_pages: impl FnMut() -> Result<(), E>,
        mut visit: impl FnMut(SeriesId, &[f64]) -> Result<(), E>,
    ) -> Result<(), E> {
        let first = self.ids.partition_point(|&id| id < *ids.start());
        let end = self.ids.partition_point(|&id| id <= *ids.end());
        if first >= end {
            return Ok(());
        }
        let (row_lo, row_hi) = (self.starts[first], self.starts[end]);
        let mut raw = Vec::new();
        let mut values: Vec<f64> = Vec::new();
        let mut series = first;
        let first_page = self.pages.partition_point(|p| p.end_row() <= row_lo);
        for (p, page) in self.pages.iter().enumerate().skip(first_page) {
            if page.first_row >= row_hi {
                break;
            }
            between_pages()?;
            let ts_len = page.timestamps.len as usize;
            raw.resize(ts_len + page.values.len as usize, 0);
            read_exact_at(&self.file, &self.path, &mut raw, page.timestamps.offset)?;
            let (ts_raw, values_raw) = raw.split_at(ts_len);
            verify_blob(&self.path, p, "timestamps", page.timestamps, ts_raw)?;
            decode_blob(
                &self.path,
                p,
                "values",
                page.values,
                values_raw,
                page.rows as usize,
                page.rows as usize,
                &mut values,
            )?;
            // The series with rows in this page, from the first not yet finished.
            while series < end && self.starts[series] < page.end_row() {
                let a = self.starts[series].max(page.first_row) - page.first_row;
                let b = self.starts[series + 1].min(page.end_row()) - page.first_row;
                visit(self.ids[series], &values[a as usize..b as usize])?;
                if self.starts[series + 1] > page.end_row() {
                    // It goes on in the next page.
                    break;
                }
                series += 1;
            }
        }
        Ok(())
    }
}

/// The pages of a part holding chosen rows.
#[derive(Debug)]
pub(crate) struct PageMask<'a> {
    pages: &'a [PageEntry],
    wanted: Vec<bool>,
    /// No page before it holds a row at or after the last marked rows: marks ascend.
    next: usize,
}

impl PageMask<'_> {
    /// Marks the pages holding `rows`. Row ranges must be marked in ascending order.
    pub(crate) fn mark_rows(&mut self, rows: Range<u32>) {
        if rows.is_empty() {
            return;
        }
        while self.pages[self.next].end_row() <= rows.start {
            self.next += 1;
        }
        let mut p = self.next;
        while p < self.pages.len() && self.pages[p].first_row < rows.end {
            self.wanted[p] = true;
            p += 1;
        }
    }
}

/// Reads runs of selected series in ascending id order, one [`Run`] per series with rows in the time
/// range (series without are skipped). Pages are decoded lazily and at most once per scan: a page
/// outside the time range or holding no selected row is never read, and a page holding one selected
/// series only up to that series' last row (on average half of it for a sparse selection). A run lies in one page's buffers
/// when it can and is stitched into a separate buffer when it spans pages.
#[derive(Debug)]
pub(crate) struct SeriesScan<'a> {
    part: &'a Part,
    selection: Selection<'a>,
    /// Inclusive bounds; `None` when the range is empty.
    time: Option<(TimestampMs, TimestampMs)>,
    /// Whether values blobs are read; `count` and the like need timestamps only.
    with_values: bool,
    /// Whether timestamps blobs are read; aggregations without buckets over a part inside their range
    /// need values only (see [`SeriesScan::values_only`]).
    with_timestamps: bool,
    /// Next index into `Selection::Only`.
    next_wanted: usize,
    /// Directory index from which to look for the next series: selections ascend.
    next_series: usize,
    /// A page at or before the one holding the next series' first row: rows ascend, so pages are
    /// walked forward only.
    page_hint: usize,
    /// The page whose columns are in `page_timestamps`/`page_values`, and how many of its first rows
    /// are decoded there (a page is decoded only as far as the rows asked of it so far).
    decoded: Option<(usize, usize)>,
    pages_decoded: usize,
    /// Rows decoded so far, over all pages (a page decoded twice counts twice).
    rows_decoded: usize,
    /// When set, pages not marked are skipped as if they held no row in the range.
    only_pages: Option<&'a [bool]>,
    /// A page's compressed bytes.
    raw: Vec<u8>,
    page_timestamps: Vec<TimestampMs>,
    page_values: Vec<f64>,
    stitch_timestamps: Vec<TimestampMs>,
    stitch_values: Vec<f64>,
}

/// Where `gather` left a series' rows.
enum Gathered {
    /// No rows in the time range.
    Nothing,
    /// `page_timestamps[a..b]` and `page_values[a..b]`.
    InPage(usize, usize),
    /// The stitch buffers.
    Stitched,
}

impl<'a> SeriesScan<'a> {
    /// Reads timestamps only: runs have empty `values`, and values blobs are neither read nor decoded.
    pub(crate) fn timestamps_only(mut self) -> Self {
        self.with_values = false;
        self
    }

    /// Reads values only: runs have empty `timestamps`, and timestamps blobs are read and their
    /// checksums verified, but not decoded. Only for a time range holding every row of the part (no row can then be cut by time);
    /// otherwise the scan reads timestamps as usual.
    pub(crate) fn values_only(mut self) -> Self {
        let meta = self.part.meta();
        if self
            .time
            .is_some_and(|(lo, hi)| lo <= meta.min_t && meta.max_t <= hi)
        {
            self.with_timestamps = false;
            self.with_values = true;
        }
        self
    }

    /// Reads only the pages marked in `mask` (from [`Part::page_mask`]): rows in other pages are left
    /// out of the runs, for a caller that has them from elsewhere (block summaries).
    pub(crate) fn only_pages(mut self, mask: &'a PageMask<'_>) -> Self {
        self.only_pages = Some(&mask.wanted);
        self
    }

    /// The next selected series with rows in the time range; `None` when the scan is done. A page whose
    /// bytes do not match their checksum or do not decode is `Corruption` naming the file and offset.
    pub(crate) fn next_run(&mut self) -> Result<Option<Run<'_>>, EngineError> {
        if self.time.is_none() {
            return Ok(None);
        }
        loop {
            let Some(index) = self.next_series_index() else {
                return Ok(None);
            };
            let series = self.part.ids[index];
            return Ok(Some(match self.gather(index)? {
                Gathered::Nothing => continue,
                Gathered::InPage(a, b) => Run {
                    series,
                    timestamps: self.page_timestamps.get(a..b).unwrap_or_default(),
                    values: self.page_values.get(a..b).unwrap_or_default(),
                },
                Gathered::Stitched => Run {
                    series,
                    timestamps: &self.stitch_timestamps,
                    values: &self.stitch_values,
                },
            }));
        }
    }

    /// Pages decoded so far: how much work the scan did.
    #[cfg(test)]
    pub(crate) fn pages_decoded(&self) -> usize {
        self.pages_decoded
    }

    /// Rows decoded so far (a page decoded twice counts twice).
    #[cfg(test)]
    pub(crate) fn rows_decoded(&self) -> usize {
        self.rows_decoded
    }

    /// The directory index of the next selected series the part holds.
    fn next_series_index(&mut self) -> Option<usize> {
        let ids = &self.part.ids;
        match self.selection {
            Selection::All => {
                let index = self.next_series;
                self.next_series += 1;
                (index < ids.len()).then_some(index)
            }
            Selection::Only(wanted) => loop {
                let &id = wanted.get(self.next_wanted)?;
                self.next_wanted += 1;
                debug_assert!(
                    self.next_wanted < 2 || wanted[self.next_wanted - 2] < id,
                    "selection not strictly ascending"
                );
                self.next_series += lower_bound_galloping(&ids[self.next_series..], id);
                if ids.get(self.next_series) == Some(&id) {
                    self.next_series += 1;
                    return Some(self.next_series - 1);
                }
            },
        }
    }

    /// True when the series selected after the current one may have rows before `row` (conservatively:
    /// the first series of the directory at or after its id), so a page decoded for the current one
    /// is decoded whole at once, not a prefix now and again for the next.
    fn next_selected_starts_before(&self, row: u32) -> bool {
        let Selection::Only(wanted) = self.selection else {
            return true;
        };
        let Some(&next) = wanted.get(self.next_wanted) else {
            return false;
        };
        let ids = &self.part.ids;
        let at = self.next_series + lower_bound_galloping(&ids[self.next_series..], next);
        at < ids.len() && self.part.starts[at] < row
    }

    /// Finds the rows of directory entry `index` in the time range, decoding the pages they lie in.
    fn gather(&mut self, index: usize) -> Result<Gathered, EngineError> {
        let part = self.part;
        let Some((lo, hi)) = self.time else {
            return Ok(Gathered::Nothing);
        };
        let (first, end) = (part.starts[index], part.starts[index + 1]);
        let mut p = self.page_hint;
        // Pages tile the rows, so this stops at the page holding `first`.
        while part.pages[p].end_row() <= first {
            p += 1;
        }
        let mut in_page = None;
        let mut stitched = false;
        loop {
            let page = part.pages[p];
            let skipped = self.only_pages.is_some_and(|mask| !mask[p]);
            if page.max_t >= lo && page.min_t <= hi && !skipped {
                let from = (first.max(page.first_row) - page.first_row) as usize;
                let to = (end.min(page.end_row()) - page.first_row) as usize;
                let ready = matches!(self.decoded, Some((d, rows)) if d == p && rows >= to);
                if !ready {
                    if let Some((a, b)) = in_page.take() {
                        // The rows found in the previous page are about to be overwritten.
                        self.stitch_timestamps.clear();
                        self.stitch_values.clear();
                        self.stitch_timestamps
                            .extend_from_slice(self.page_timestamps.get(a..b).unwrap_or_default());
                        self.stitch_values
                            .extend_from_slice(self.page_values.get(a..b).unwrap_or_default());
                        stitched = true;
                    }
                    let rows = if self.decoded.is_some_and(|(d, _)| d == p)
                        || self.next_selected_starts_before(page.end_row())
                    {
                        page.rows as usize
                    } else {
                        // The only selected series in this page: its rows end at `to`.
                        to
                    };
                    self.decode_page(p, rows)?;
                }
                // A series' timestamps ascend, so its rows in range are one slice (all of them
                // without timestamps: the range then holds the whole part).
                let (a, b) = if self.with_timestamps {
                    let ts = &self.page_timestamps[from..to];
                    (
                        from + ts.partition_point(|&t| t < lo),
                        from + ts.partition_point(|&t| t <= hi),
                    )
                } else {
                    (from, to)
                };
                if a < b {
                    if stitched {
                        self.stitch_timestamps
                            .extend_from_slice(self.page_timestamps.get(a..b).unwrap_or_default());
                        self.stitch_values
                            .extend_from_slice(self.page_values.get(a..b).unwrap_or_default());
                    } else {
                        in_page = Some((a, b));
                    }
                }
                if b < to {
                    // Later rows of this series are past the range.
                    break;
                }
            } else if page.min_t > hi {
                // So are this series' rows here and in later pages.
                break;
            }
            if page.end_row() >= end {
                break;
            }
            p += 1;
        }
        self.page_hint = p;
        Ok(match (stitched, in_page) {
            (true, _) => Gathered::Stitched,
            (false, Some((a, b))) => Gathered::InPage(a, b),
            (false, None) => Gathered::Nothing,
        })
    }

    /// Reads page `p`'s blobs with one positioned read, verifies their checksums and decodes their first
    /// `rows` rows (at most the page's): the rows after the last one a scan needs are never decoded,
    /// which halves the decoding of a page holding one selected series, on average.
    fn decode_page(&mut self, p: usize, rows: usize) -> Result<(), EngineError> {
        let part = self.part;
        let page = part.pages[p];
        self.decoded = None;
        let ts_len = page.timestamps.len as usize;
        let values_len = if self.with_values {
            page.values.len as usize
        } else {
            0
        };
        self.raw.resize(ts_len + values_len, 0);
        // `open` checked that the values blob follows the timestamps blob.
        read_exact_at(
            &part.file,
            &part.path,
            &mut self.raw,
            page.timestamps.offset,
        )?;
        let (ts_raw, values_raw) = self.raw.split_at(ts_len);
        let rows = rows.min(page.rows as usize);
        if self.with_timestamps {
            decode_blob(
                &part.path,
                p,
                "timestamps",
                page.timestamps,
                ts_raw,
                rows,
                page.rows as usize,
                &mut self.page_timestamps,
            )?;
        } else {
            // Not decoded, but still verified: a damaged page fails whichever query reads it.
            verify_blob(&part.path, p, "timestamps", page.timestamps, ts_raw)?;
        }
        if self.with_values {
            decode_blob(
                &part.path,
                p,
                "values",
                page.values,
                values_raw,
                rows,
                page.rows as usize,
                &mut self.page_values,
            )?;
        }
        self.decoded = Some((p, rows));
        self.pages_decoded += 1;
        self.rows_decoded += rows;
        Ok(())
    }
}

/// Verifies a blob of `page_rows` numbers against its checksum and decodes its first `rows` into
/// `out` (all of them when `rows == page_rows`, checking that there are exactly as many).
#[allow(
    clippy::too_many_arguments,
    reason = "the blob, where it is, and how much of it"
)]
fn decode_blob<T: pco::data_types::Number + Default>(
    path: &Path,
    page: usize,
    column: &str,
    blob: BlobRef,
    raw: &[u8],
    rows: usize,
    page_rows: usize,
    out: &mut Vec<T>,
) -> Result<(), EngineError> {
    verify_blob(path, page, column, blob, raw)?;
    let decoded = if rows >= page_rows {
        super::decompress(raw, page_rows, out)
    } else {
        // A prefix: pco decodes exactly as many numbers as the destination holds.
        out.clear();
        out.resize(rows, T::default());
        match pco::standalone::simple_decompress_into(raw, out) {
            Ok(progress) if progress.n_processed == rows => Ok(()),
            Ok(progress) => Err(format!(
                "{} numbers where at least {rows} were expected",
                progress.n_processed
            )),
            Err(e) => Err(e.to_string()),
        }
    };
    decoded.map_err(|reason| {
        corruption(
            path,
            blob.offset,
            format!("page {page} {column} do not decode ({rows} of {page_rows} rows): {reason}"),
        )
    })
}

/// Verifies a blob's checksum.
fn verify_blob(
    path: &Path,
    page: usize,
    column: &str,
    blob: BlobRef,
    raw: &[u8],
) -> Result<(), EngineError> {
    let crc = crc32c::crc32c(raw);
    if crc != blob.crc {
        return Err(corruption(
            path,
            blob.offset,
            format!(
                "page {page} {column} checksum mismatch: stored {:#010x}, computed {crc:#010x}",
                blob.crc
            ),
        ));
    }
    Ok(())
}

/// `read_exact_at`, with the file in the error.
fn read_exact_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<(), EngineError> {
    file.read_exact_at(buf, offset)
        .map_err(io_error("read part", path))
}

/// The index of the first element of ascending `s` that is `>= x`, searching outward from the start so
/// that finding a near element costs O(log distance): a dense selection then costs O(1) per id.
pub(super) fn lower_bound_galloping(s: &[SeriesId], x: SeriesId) -> usize {
    let mut hi = 1;
    while hi < s.len() && s[hi - 1] < x {
        hi *= 2;
    }
    // Everything before `hi / 2` is < x (checked by the previous step), the answer is at most `hi`.
    let lo = hi / 2;
    let hi = hi.min(s.len());
    lo + s[lo..hi].partition_point(|&v| v < x)
}

#[cfg(test)]
mod tests {
    use luminate_model::Tenant;

    use super::*;
    use crate::part::PartWriter;

    /// A part of one page holding 1 000 series of two rows each (series `id` at rows `2 id`, `2 id + 1`).
    fn one_page_of_small_series(path: &Path) -> Part {
        let mut writer = PartWriter::create(path, Tenant::new("acme"), "latency", 19_000).unwrap();
        for id in 0..1_000u32 {
            let t = i64::from(id);
            writer
                .push_series(id, &[t, t + 5_000], &[f64::from(id), -f64::from(id)])
                .unwrap();
        }
        writer.finish().unwrap();
        Part::open(path).unwrap()
    }

    fn runs(scan: &mut SeriesScan<'_>) -> Vec<(SeriesId, Vec<i64>, Vec<f64>)> {
        let mut out = Vec::new();
        while let Some(run) = scan.next_run().unwrap() {
            out.push((run.series, run.timestamps.to_vec(), run.values.to_vec()));
        }
        out
    }

    #[test]
    fn a_page_is_decoded_only_up_to_the_last_row_a_scan_needs() {
        let dir = tempfile::tempdir().unwrap();
        let part = one_page_of_small_series(&dir.path().join("p.part"));
        // Series 10 ends at row 22 of the page's 2 000: the rest is never decoded.
        let mut scan = part.scan(Selection::Only(&[10]), ..);
        assert_eq!(runs(&mut scan), [(10, vec![10, 5_010], vec![10.0, -10.0])]);
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 22));
        // With a second selected series in the page, the page is decoded whole, once.
        let mut scan = part.scan(Selection::Only(&[10, 900]), 0..5_500);
        assert_eq!(
            runs(&mut scan),
            [
                (10, vec![10, 5_010], vec![10.0, -10.0]),
                (900, vec![900], vec![900.0])
            ]
        );
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 2_000));
        // A selected id the part does not hold counts as the next series where it would be.
        let mut scan = part.scan(Selection::Only(&[10, 5_000]), ..);
        assert_eq!(runs(&mut scan), [(10, vec![10, 5_010], vec![10.0, -10.0])]);
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 22));
        // Values only: the same prefix, of the values column.
        let mut scan = part.scan(Selection::Only(&[10]), ..).values_only();
        assert_eq!(runs(&mut scan), [(10, vec![], vec![10.0, -10.0])]);
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 22));
    }
}
