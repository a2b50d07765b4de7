//! Opening a part: [`Part::open`] verifies the file and keeps its section (meta, page index, series
//! directory) in memory; what it holds is read through a [`SeriesScan`] (`scan.rs`), its summaries,
//! or [`Part::visit_values`] for whole pages.

use std::fs::{File, OpenOptions};
use std::ops::{Range, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use luminate_model::TimestampMs;

use super::scan::SeriesScan;
use super::section::{self, Footer};
use super::summary::{ChunkEntry, Summaries, SummaryColumns, SummarySource};
use super::{
    BlobRef, FOOTER_LEN, FORMAT_V1, FORMAT_V3, FORMAT_V4, HEADER_LEN, MAGIC, PageEntry, PartMeta,
    corruption,
};
use crate::EngineError;
use crate::files::{io_error, open_waiting};
use crate::record::SeriesId;

/// An open part. Immutable and `Send + Sync`: share it across query threads; each thread scans with
/// its own [`SeriesScan`].
#[derive(Debug)]
pub(crate) struct Part {
    pub(super) path: PathBuf,
    /// Read with `read_at` only, so concurrent scans need no lock and no seek position.
    pub(super) file: File,
    pub(super) meta: PartMeta,
    pub(super) pages: Box<[PageEntry]>,
    /// Series ids, strictly ascending.
    pub(super) ids: Box<[SeriesId]>,
    /// `starts[i]..starts[i + 1]` are series `i`'s rows; one more entry than `ids`. With `ids`, 8 bytes
    /// per series: a part may hold millions.
    pub(super) starts: Box<[u32]>,
    /// Format 2: the width of the summary blocks and the chunks of summaries (read on demand, never
    /// kept); `None` for a format 1 part.
    summaries: Option<(i64, Box<[ChunkEntry]>)>,
    /// Format 3: page columns are paged blobs, read by sub-page.
    pub(super) paged: bool,
    /// The format version: what the summary chunks store.
    version: u32,
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
        if !(FORMAT_V1..=FORMAT_V4).contains(&version) {
            return Err(corruption(
                path,
                4,
                format!(
                    "unsupported part format version {version} (this build reads {FORMAT_V1} to {FORMAT_V4})"
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
            paged: version >= FORMAT_V3,
            version,
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
                version: self.version,
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
        SeriesScan::new(self, selection, time)
    }
}

impl Part {
    /// Calls `visit(series, timestamps, values)` for the rows of every series whose id lies in `ids`,
    /// page by page in directory order (a series spanning pages comes once per page, each piece in
    /// time order); `between_pages` runs before each page. Only the `columns` asked for are decoded
    /// (the other comes as an empty slice): timestamps not asked for are still checksummed, values not
    /// asked for are not read. For scans that read most series of
    /// a part: walking the pages costs nothing per series, where [`SeriesScan`] searches the
    /// directory and yields each one as a run — with a few rows per series (2 M series of 5 rows),
    /// the per-series work was most of a scan.
    pub(crate) fn visit_rows<E: From<EngineError>>(
        &self,
        ids: std::ops::RangeInclusive<SeriesId>,
        columns: PageColumns,
        mut between_pages: impl FnMut() -> Result<(), E>,
        mut visit: impl FnMut(SeriesId, &[TimestampMs], &[f64]) -> Result<(), E>,
    ) -> Result<(), E> {
        let first = self.ids.partition_point(|&id| id < *ids.start());
        let end = self.ids.partition_point(|&id| id <= *ids.end());
        if first >= end {
            return Ok(());
        }
        let (row_lo, row_hi) = (self.starts[first], self.starts[end]);
        let mut raw = Vec::new();
        let mut timestamps: Vec<TimestampMs> = Vec::new();
        let mut values: Vec<f64> = Vec::new();
        let mut series = first;
        let first_page = self.pages.partition_point(|p| p.end_row() <= row_lo);
        for (p, page) in self.pages.iter().enumerate().skip(first_page) {
            if page.first_row >= row_hi {
                break;
            }
            between_pages()?;
            let ts_len = page.timestamps.len as usize;
            // Values follow the timestamps; a timestamps-only visit (`count`) neither reads nor
            // checks them, as a timestamps-only `SeriesScan` does not.
            let values_len = if columns.values {
                page.values.len as usize
            } else {
                0
            };
            raw.resize(ts_len + values_len, 0);
            read_exact_at(&self.file, &self.path, &mut raw, page.timestamps.offset)?;
            let (ts_raw, values_raw) = raw.split_at(ts_len);
            let rows = page.rows as usize;
            if columns.timestamps {
                let (column, blob) = ("timestamps", page.timestamps);
                decode_blob(
                    &self.path,
                    self.paged,
                    p,
                    column,
                    blob,
                    ts_raw,
                    rows,
                    rows,
                    &mut timestamps,
                )?;
            } else {
                verify_blob(&self.path, p, "timestamps", page.timestamps, ts_raw)?;
            }
            if columns.values {
                let (column, blob) = ("values", page.values);
                decode_blob(
                    &self.path,
                    self.paged,
                    p,
                    column,
                    blob,
                    values_raw,
                    rows,
                    rows,
                    &mut values,
                )?;
            }
            // The series with rows in this page, from the first not yet finished.
            while series < end && self.starts[series] < page.end_row() {
                let a = (self.starts[series].max(page.first_row) - page.first_row) as usize;
                let b = (self.starts[series + 1].min(page.end_row()) - page.first_row) as usize;
                let ts: &[TimestampMs] = if columns.timestamps {
                    &timestamps[a..b]
                } else {
                    &[]
                };
                let vs: &[f64] = if columns.values { &values[a..b] } else { &[] };
                visit(self.ids[series], ts, vs)?;
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

/// The columns [`Part::visit_rows`] decodes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageColumns {
    pub timestamps: bool,
    pub values: bool,
}

/// The pages of a part holding chosen rows.
#[derive(Debug)]
pub(crate) struct PageMask<'a> {
    pages: &'a [PageEntry],
    pub(super) wanted: Vec<bool>,
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

/// Verifies a blob of `page_rows` numbers against its checksum and decodes its first `rows` into
/// `out` (all of them when `rows == page_rows`, checking that there are exactly as many); a paged
/// blob (format 3) is decoded whole.
#[allow(
    clippy::too_many_arguments,
    reason = "the blob, its encoding, where it is, and how much of it"
)]
pub(super) fn decode_blob<T: pco::data_types::Number + Default>(
    path: &Path,
    paged: bool,
    page: usize,
    column: &str,
    blob: BlobRef,
    raw: &[u8],
    rows: usize,
    page_rows: usize,
    out: &mut Vec<T>,
) -> Result<(), EngineError> {
    verify_blob(path, page, column, blob, raw)?;
    let decoded = if paged {
        super::paged::decompress(raw, page_rows, out)
    } else if rows >= page_rows {
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
pub(super) fn verify_blob(
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
pub(super) fn read_exact_at(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), EngineError> {
    file.read_exact_at(buf, offset)
        .map_err(io_error("read part", path))
}
