//! Reading chosen series of a part: [`SeriesScan`] walks the selected series in ascending id order
//! and yields each one's rows in a time range as a [`Run`], decoding each needed page (format 3: each
//! needed sub-page) once, lazily, with positioned reads on the part's shared file handle.

use std::ops::{Bound, Range, RangeBounds};
use std::path::Path;

use luminate_model::TimestampMs;

use super::paged::PagedColumn;
use super::reader::{PageMask, decode_blob, read_exact_at, verify_blob};
use super::{BlobRef, Part, Run, Selection, corruption};
use crate::EngineError;
use crate::record::SeriesId;

/// Reads runs of selected series in ascending id order, one [`Run`] per series with rows in the time
/// range (series without are skipped). Pages are decoded lazily and at most once per scan: a page
/// outside the time range or holding no selected row is never read. Of a page that is read, format 3
/// decodes only the sub-pages holding selected rows; formats 1 and 2 decode a page holding one
/// selected series only up to that series' last row (on average half of it for a sparse selection).
/// A run lies in one page's buffers when it can and is stitched into a separate buffer when it spans
/// pages.
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
    /// Formats 1 and 2: the page whose columns are in `page_timestamps`/`page_values`, and how many
    /// of its first rows are decoded there (a page is decoded only as far as the rows asked of it so
    /// far).
    decoded: Option<(usize, usize)>,
    /// Format 3: the page whose blobs are in `raw`, and which of its sub-pages are decoded into
    /// `page_timestamps`/`page_values`, at their rows' places.
    paged: Option<PagedPage>,
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

/// The open page of a scan of a format 3 part.
#[derive(Debug)]
struct PagedPage {
    page: usize,
    /// `None` when the scan does not read the column.
    timestamps: Option<PagedColumn<i64>>,
    values: Option<PagedColumn<f64>>,
    /// Which sub-pages of each column are decoded.
    timestamps_done: Vec<bool>,
    values_done: Vec<bool>,
}

impl PagedPage {
    /// Whether the page's rows `rows` are decoded in every column the scan reads.
    fn holds(&self, page: usize, rows: Range<usize>) -> bool {
        fn done<T: pco::data_types::Number>(
            column: &Option<PagedColumn<T>>,
            done: &[bool],
            rows: &Range<usize>,
        ) -> bool {
            column
                .as_ref()
                .is_none_or(|c| c.covering(rows.clone()).all(|i| done[i]))
        }
        self.page == page
            && done(&self.timestamps, &self.timestamps_done, &rows)
            && done(&self.values, &self.values_done, &rows)
    }
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
    /// Starts reading `part`'s selected series' rows whose timestamp is in `time` ([`Part::scan`]).
    pub(super) fn new(
        part: &'a Part,
        selection: Selection<'a>,
        time: impl RangeBounds<TimestampMs>,
    ) -> Self {
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
            part,
            selection,
            time,
            with_values: true,
            with_timestamps: true,
            next_wanted: 0,
            next_series: 0,
            page_hint: 0,
            decoded: None,
            paged: None,
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
                let ready = if part.paged {
                    self.paged
                        .as_ref()
                        .is_some_and(|open| open.holds(p, from..to))
                } else {
                    matches!(self.decoded, Some((d, rows)) if d == p && rows >= to)
                };
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
                    if part.paged {
                        self.decode_sub_pages(p, from..to)?;
                    } else {
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
        self.read_page(p)?;
        let (ts_raw, values_raw) = self.raw.split_at(page.timestamps.len as usize);
        let rows = rows.min(page.rows as usize);
        if self.with_timestamps {
            decode_blob(
                &part.path,
                false,
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
                false,
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

impl SeriesScan<'_> {
    /// Reads page `p`'s blobs into `raw` with one positioned read: the timestamps, then the values
    /// when the scan reads them.
    fn read_page(&mut self, p: usize) -> Result<(), EngineError> {
        let part = self.part;
        let page = part.pages[p];
        let values_len = if self.with_values {
            page.values.len as usize
        } else {
            0
        };
        self.raw
            .resize(page.timestamps.len as usize + values_len, 0);
        // `open` checked that the values blob follows the timestamps blob.
        read_exact_at(
            &part.file,
            &part.path,
            &mut self.raw,
            page.timestamps.offset,
        )
    }

    /// Decodes the sub-pages holding rows `rows` of format 3 page `p` in the columns the scan reads,
    /// each sub-page at most once per visit of the page. Moving to a new page reads its blobs with
    /// one positioned read and verifies their checksums.
    fn decode_sub_pages(&mut self, p: usize, rows: Range<usize>) -> Result<(), EngineError> {
        let part = self.part;
        let page = part.pages[p];
        let ts_len = page.timestamps.len as usize;
        if self.paged.as_ref().is_none_or(|open| open.page != p) {
            self.paged = None;
            self.read_page(p)?;
            let (ts_raw, values_raw) = self.raw.split_at(ts_len);
            verify_blob(&part.path, p, "timestamps", page.timestamps, ts_raw)?;
            let rows = page.rows as usize;
            let timestamps = if self.with_timestamps {
                let column = PagedColumn::open(ts_raw, rows).map_err(undecodable(
                    &part.path,
                    p,
                    "timestamps",
                    page.timestamps,
                ))?;
                grow(&mut self.page_timestamps, rows);
                Some(column)
            } else {
                None
            };
            let values = if self.with_values {
                verify_blob(&part.path, p, "values", page.values, values_raw)?;
                let column = PagedColumn::open(values_raw, rows).map_err(undecodable(
                    &part.path,
                    p,
                    "values",
                    page.values,
                ))?;
                grow(&mut self.page_values, rows);
                Some(column)
            } else {
                None
            };
            self.paged = Some(PagedPage {
                page: p,
                timestamps_done: vec![false; timestamps.as_ref().map_or(0, PagedColumn::sub_pages)],
                values_done: vec![false; values.as_ref().map_or(0, PagedColumn::sub_pages)],
                timestamps,
                values,
            });
            self.pages_decoded += 1;
        }
        let Some(open) = self.paged.as_mut() else {
            return Ok(());
        };
        let (ts_raw, values_raw) = self.raw.split_at(ts_len);
        let mut decoded_rows = 0;
        if let Some(column) = open.timestamps.as_mut() {
            for i in column.covering(rows.clone()) {
                if !open.timestamps_done[i] {
                    column
                        .decode(ts_raw, i, &mut self.page_timestamps)
                        .map_err(undecodable(&part.path, p, "timestamps", page.timestamps))?;
                    open.timestamps_done[i] = true;
                    decoded_rows += column.rows_of(i).len();
                }
            }
        }
        if let Some(column) = open.values.as_mut() {
            let counted = open.timestamps.is_some();
            for i in column.covering(rows.clone()) {
                if !open.values_done[i] {
                    column
                        .decode(values_raw, i, &mut self.page_values)
                        .map_err(undecodable(&part.path, p, "values", page.values))?;
                    open.values_done[i] = true;
                    if !counted {
                        decoded_rows += column.rows_of(i).len();
                    }
                }
            }
        }
        self.rows_decoded += decoded_rows;
        Ok(())
    }
}

/// The `Corruption` error for column `column` of page `page` that does not decode.
fn undecodable<'a>(
    path: &'a Path,
    page: usize,
    column: &'a str,
    blob: BlobRef,
) -> impl FnOnce(String) -> EngineError + 'a {
    move |reason| {
        corruption(
            path,
            blob.offset,
            format!("page {page} {column} do not decode: {reason}"),
        )
    }
}

/// Makes `buffer` hold at least `rows` numbers, never shrinking it: sub-pages are decoded into it at
/// their rows' places, and zeroing a page's worth on every page would cost what they save.
fn grow<T: Default + Clone>(buffer: &mut Vec<T>, rows: usize) {
    if buffer.len() < rows {
        buffer.resize(rows, T::default());
    }
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

    /// A part of one page holding 1 000 series of two rows each (series `id` at rows `2 id`, `2 id + 1`),
    /// in format 3 or, with `v2`, as earlier builds wrote it.
    fn one_page_of_small_series(path: &Path, v2: bool) -> Part {
        let mut writer = PartWriter::create(path, Tenant::new("acme"), "latency", 19_000).unwrap();
        if v2 {
            writer = writer.format_v2().unwrap();
        }
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
    fn a_scan_decodes_only_the_sub_pages_holding_the_rows_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let part = one_page_of_small_series(&dir.path().join("p.part"), false);
        // Sub-pages of 1 024 rows: series 10 (rows 20 and 21) lies in the first; the page's other
        // 976 rows are never decoded.
        let mut scan = part.scan(Selection::Only(&[10]), ..);
        assert_eq!(runs(&mut scan), [(10, vec![10, 5_010], vec![10.0, -10.0])]);
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 1_024));
        // Series in the same sub-page share its decoding; series 900 (rows 1 800 and 1 801) needs
        // the second, once.
        let mut scan = part.scan(Selection::Only(&[10, 11, 900]), 0..5_500);
        assert_eq!(
            runs(&mut scan),
            [
                (10, vec![10, 5_010], vec![10.0, -10.0]),
                (11, vec![11, 5_011], vec![11.0, -11.0]),
                (900, vec![900], vec![900.0])
            ]
        );
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 2_000));
        // Only series 900: the first sub-page is skipped.
        let mut scan = part.scan(Selection::Only(&[900]), ..);
        assert_eq!(
            runs(&mut scan),
            [(900, vec![900, 5_900], vec![900.0, -900.0])]
        );
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 976));
        // Values only: the same sub-page, of the values column.
        let mut scan = part.scan(Selection::Only(&[10]), ..).values_only();
        assert_eq!(runs(&mut scan), [(10, vec![], vec![10.0, -10.0])]);
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 1_024));
        // Timestamps only.
        let mut scan = part.scan(Selection::Only(&[900]), ..).timestamps_only();
        assert_eq!(runs(&mut scan), [(900, vec![900, 5_900], vec![])]);
        assert_eq!((scan.pages_decoded(), scan.rows_decoded()), (1, 976));
    }

    #[test]
    fn a_format_2_page_is_decoded_only_up_to_the_last_row_a_scan_needs() {
        let dir = tempfile::tempdir().unwrap();
        let part = one_page_of_small_series(&dir.path().join("p.part"), true);
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
