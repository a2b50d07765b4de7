//! Writing a part: series are pushed in ascending id order, cut into pages as they arrive, each page
//! compressed and streamed to a temp file, so memory stays at one page plus 8 bytes per series however
//! large the part. `finish` appends the section and footer, fsyncs, renames into place and fsyncs the
//! directory — the same guarantees as `files::write_atomic`, without holding the file in memory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use luminate_model::{Tenant, TimestampMs};

use super::paged::{self, SUBPAGE_ROWS};
use super::section::{self, Footer};
use super::summary::{ChunkEntry, DEFAULT_BLOCK_MS, SummaryBuilder};
use super::{
    BlobRef, DEFAULT_PAGE_ROWS, Delta, FORMAT_V3, FORMAT_V4, HEADER_LEN, MAGIC, MAX_ROWS,
    PageEntry, PartMeta, compress,
};
use crate::EngineError;
use crate::files::{io_error, open_waiting, parent_dir, sync_dir, write_all};
use crate::record::SeriesId;
use crate::space::write_error;

/// Writes one part file. Dropping it before [`PartWriter::finish`] succeeds removes the temp file and
/// leaves whatever was at the path untouched.
pub(crate) struct PartWriter {
    /// Where the part ends up.
    path: PathBuf,
    /// Where it is written until it is complete.
    tmp: PathBuf,
    /// `None` once an I/O error left the temp file in an unknown state.
    file: Option<File>,
    /// Set once the temp file has been renamed into place: nothing left to clean up.
    done: bool,
    tenant: Tenant,
    metric: String,
    day: i64,
    page_rows: u32,
    /// Bytes written to the temp file so far: the offset of the next blob.
    offset: u64,
    /// Rows of the page being filled.
    page_timestamps: Vec<TimestampMs>,
    page_values: Vec<f64>,
    /// Compression output, reused across blobs.
    blob: Vec<u8>,
    pages: Vec<PageEntry>,
    ids: Vec<SeriesId>,
    counts: Vec<u32>,
    rows: u64,
    /// The summaries of the series pushed since the last chunk was written; `None`: the part carries
    /// none ([`PartWriter::without_summaries`]).
    summaries: Option<SummaryBuilder>,
    /// The format written: [`FORMAT_V4`], or an earlier one for tests of the reader's compatibility.
    version: u32,
    /// Rows of a sub-page of a page's column blobs (format 3).
    sub_rows: u32,
    chunks: Vec<ChunkEntry>,
}

impl PartWriter {
    /// Starts a part of `tenant`'s `metric` for `day` (days since 1970-01-01 UTC) at `path`, writing to
    /// `path` + `.tmp` until [`PartWriter::finish`].
    pub(crate) fn create(
        path: &Path,
        tenant: Tenant,
        metric: &str,
        day: i64,
    ) -> Result<Self, EngineError> {
        let mut tmp_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        tmp_name.push(".tmp");
        let tmp = parent_dir(path).join(tmp_name);
        let file = open_waiting(
            &tmp,
            OpenOptions::new().write(true).create(true).truncate(true),
        )
        .map_err(|e| write_error("create part temp file", &tmp, e))?;
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&MAGIC);
        header[4..].copy_from_slice(&FORMAT_V4.to_le_bytes());
        let written = write_all(&file, &tmp, &header);
        let writer = Self {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
            done: false,
            tenant,
            metric: metric.to_owned(),
            day,
            page_rows: DEFAULT_PAGE_ROWS,
            offset: HEADER_LEN as u64,
            page_timestamps: Vec::new(),
            page_values: Vec::new(),
            blob: Vec::new(),
            pages: Vec::new(),
            ids: Vec::new(),
            counts: Vec::new(),
            rows: 0,
            summaries: Some(SummaryBuilder::new(DEFAULT_BLOCK_MS)),
            version: FORMAT_V4,
            sub_rows: SUBPAGE_ROWS,
            chunks: Vec::new(),
        };
        // On failure `writer` is dropped here, which removes the temp file.
        written.map_err(|e| write_error("write part temp file", &writer.tmp, e))?;
        Ok(writer)
    }

    /// Sets the maximum rows per page (clamped to `1..=MAX_PAGE_ROWS`); only before the first series.
    #[cfg(test)]
    pub(crate) fn with_page_rows(mut self, rows: u32) -> Self {
        debug_assert!(self.rows == 0, "page size changed after rows were pushed");
        self.page_rows = rows.clamp(1, super::MAX_PAGE_ROWS);
        self
    }

    /// Sets the width of summary blocks (clamped to `1..=MAX_BLOCK_MS`) and the entries after which a
    /// chunk of summaries is closed; only before the first series.
    #[cfg(test)]
    pub(crate) fn with_summary_blocks(mut self, block_ms: i64, chunk_entries: usize) -> Self {
        debug_assert!(self.rows == 0, "block width changed after rows were pushed");
        self.summaries = Some(
            SummaryBuilder::new(block_ms.clamp(1, super::MAX_BLOCK_MS))
                .with_chunk_entries(chunk_entries),
        );
        self
    }

    /// Writes block summaries `block_ms` wide ([`super::summary_block_ms`]), or none (a block width
    /// of 0) for parts whose blocks would hold too few rows to be worth them: their rows are scanned
    /// instead. Only before the first series.
    pub(crate) fn with_summaries(mut self, block_ms: Option<i64>) -> Self {
        debug_assert!(self.rows == 0, "summaries changed after rows were pushed");
        self.summaries = block_ms.map(|ms| SummaryBuilder::new(ms.clamp(1, super::MAX_BLOCK_MS)));
        self
    }

    /// [`PartWriter::with_summaries`]`(None)`.
    #[cfg(test)]
    pub(crate) fn without_summaries(self) -> Self {
        self.with_summaries(None)
    }

    /// Sets the rows of a sub-page (clamped to at least 1); only before the first series.
    #[cfg(test)]
    pub(crate) fn with_subpage_rows(mut self, rows: u32) -> Self {
        debug_assert!(
            self.rows == 0,
            "sub-page size changed after rows were pushed"
        );
        self.sub_rows = rows.max(1);
        self
    }

    /// Writes format 1, as earlier builds did (no summaries): for tests that read old parts.
    #[cfg(test)]
    pub(crate) fn format_v1(mut self) -> Result<Self, EngineError> {
        self.summaries = None;
        self.earlier_format(super::FORMAT_V1)
    }

    /// Writes format 2, as earlier builds did (pages as one standalone blob per column).
    #[cfg(test)]
    pub(crate) fn format_v2(self) -> Result<Self, EngineError> {
        self.earlier_format(super::FORMAT_V2)
    }

    /// Writes format 3, as earlier builds did (every count and every sum of 2 rows or more in the
    /// summary chunks).
    #[cfg(test)]
    pub(crate) fn format_v3(self) -> Result<Self, EngineError> {
        self.earlier_format(FORMAT_V3)
    }

    #[cfg(test)]
    fn earlier_format(mut self, version: u32) -> Result<Self, EngineError> {
        use std::io::{Seek, SeekFrom, Write};
        debug_assert!(self.rows == 0, "format changed after rows were pushed");
        self.version = version;
        let written = match self.file.as_mut() {
            Some(file) => file
                .seek(SeekFrom::Start(4))
                .and_then(|_| file.write_all(&version.to_le_bytes()))
                .and_then(|()| file.seek(SeekFrom::End(0)).map(drop)),
            None => return Err(self.failed_earlier()),
        };
        written.map_err(io_error("write part temp file", &self.tmp))?;
        Ok(self)
    }

    /// Appends one series. Ids must ascend across calls; a series has at least one point, as many values
    /// as timestamps, timestamps non-decreasing (points sorted by (timestamp, value)). A series that
    /// breaks these rules is rejected whole (`InvalidInput`) and the writer stays usable.
    pub(crate) fn push_series(
        &mut self,
        id: SeriesId,
        timestamps: &[TimestampMs],
        values: &[f64],
    ) -> Result<(), EngineError> {
        let problem = if self.ids.last().is_some_and(|&last| last >= id) {
            Some(format!(
                "series {id} pushed after series {}; ids must ascend",
                self.ids.last().copied().unwrap_or_default()
            ))
        } else if timestamps.is_empty() || timestamps.len() != values.len() {
            Some(format!(
                "series {id} has {} timestamps and {} values; a series needs as many of each, at least one",
                timestamps.len(),
                values.len()
            ))
        } else if let Some(i) = timestamps.windows(2).position(|w| w[0] > w[1]) {
            Some(format!(
                "series {id} timestamps not sorted: {} then {} at index {}",
                timestamps[i],
                timestamps[i + 1],
                i + 1
            ))
        } else if let Some(i) = values.iter().position(|v| v.is_nan()) {
            // The write path admits finite values only; a two-row summary's sum is rebuilt from its
            // min and max, which NaN would break.
            Some(format!("series {id} value at index {i} is NaN"))
        } else if self.rows + timestamps.len() as u64 > MAX_ROWS {
            Some(format!(
                "series {id} would take the part past {MAX_ROWS} rows; split the partition"
            ))
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(self.invalid_input(reason));
        }
        self.ids.push(id);
        // Checked above: the part's rows, hence the series', fit a u32.
        self.counts.push(timestamps.len() as u32);
        self.rows += timestamps.len() as u64;
        if let Some(builder) = self.summaries.as_mut()
            && builder.push_series(timestamps, values)
        {
            self.write_chunk()?;
        }
        let (mut timestamps, mut values) = (timestamps, values);
        while !timestamps.is_empty() {
            let room = self.page_rows as usize - self.page_timestamps.len();
            let take = room.min(timestamps.len());
            self.page_timestamps.extend_from_slice(&timestamps[..take]);
            self.page_values.extend_from_slice(&values[..take]);
            (timestamps, values) = (&timestamps[take..], &values[take..]);
            if self.page_timestamps.len() == self.page_rows as usize {
                self.flush_page()?;
            }
        }
        Ok(())
    }

    /// Writes the last page, the section and the footer, fsyncs, renames the file into place and fsyncs
    /// its directory. A part without series is rejected (`InvalidInput`): it would have no time range
    /// and nothing to read.
    pub(crate) fn finish(mut self) -> Result<PartMeta, EngineError> {
        if self.ids.is_empty() {
            return Err(self.invalid_input("a part needs at least one series".to_owned()));
        }
        if !self.page_timestamps.is_empty() {
            self.flush_page()?;
        }
        if self.summaries.as_ref().is_some_and(|b| !b.is_empty()) {
            self.write_chunk()?;
        }
        let meta = PartMeta {
            tenant: self.tenant.clone(),
            metric: self.metric.clone(),
            day: self.day,
            rows: self.rows,
            series: self.ids.len() as u32,
            pages: self.pages.len() as u32,
            min_t: self.pages.iter().map(|p| p.min_t).min().unwrap_or_default(),
            max_t: self.pages.iter().map(|p| p.max_t).max().unwrap_or_default(),
        };
        // Format 2 records a block width of 0 for a part written without summaries.
        let summaries = (self.version != super::FORMAT_V1).then(|| {
            self.summaries
                .as_ref()
                .map_or((0, &[][..]), |b| (b.block_ms(), &self.chunks[..]))
        });
        let section = section::encode(
            &meta,
            self.page_rows,
            &self.pages,
            &self.ids,
            &self.counts,
            summaries,
        )
        .map_err(pco_error(&self.path))?;
        let footer = Footer {
            section_offset: self.offset,
            section_len: section.len() as u64,
            section_crc: crc32c::crc32c(&section),
        }
        .encode();
        let Some(file) = self.file.take() else {
            return Err(self.failed_earlier());
        };
        let tmp = self.tmp.clone();
        // On failure `self` is dropped on the way out, which removes the temp file.
        write_all(&file, &tmp, &section)
            .and_then(|()| write_all(&file, &tmp, &footer))
            .map_err(|e| write_error("write part temp file", &tmp, e))?;
        file.sync_all()
            .map_err(io_error("fsync part temp file", &tmp))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(|e| write_error("rename part into", &self.path, e))?;
        self.done = true;
        sync_dir(&parent_dir(&self.path))?;
        Ok(meta)
    }

    /// Compresses the filled page's columns, appends them to the file and records the page.
    fn flush_page(&mut self) -> Result<(), EngineError> {
        let rows = self.page_timestamps.len();
        let first_row = self.pages.last().map_or(0, PageEntry::end_row);
        let (min_t, max_t) = self
            .page_timestamps
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        self.blob.clear();
        self.compress_column(Column::Timestamps)?;
        let timestamps = self.append_blob()?;
        self.blob.clear();
        self.compress_column(Column::Values)?;
        let values = self.append_blob()?;
        self.pages.push(PageEntry {
            first_row,
            rows: rows as u32,
            min_t,
            max_t,
            timestamps,
            values,
        });
        self.page_timestamps.clear();
        self.page_values.clear();
        Ok(())
    }

    /// Appends the encoding of one column of the filled page to `self.blob`: paged from format 3,
    /// one standalone blob before.
    fn compress_column(&mut self, column: Column) -> Result<(), EngineError> {
        let paged = self.version >= FORMAT_V3;
        let (blob, sub_rows) = (&mut self.blob, self.sub_rows);
        match (column, paged) {
            (Column::Timestamps, true) => {
                paged::compress(&self.page_timestamps, blob, Delta::Consecutive, sub_rows)
            }
            (Column::Timestamps, false) => {
                compress(&self.page_timestamps, blob, Delta::Consecutive)
            }
            (Column::Values, true) => {
                paged::compress(&self.page_values, blob, Delta::Auto, sub_rows)
            }
            (Column::Values, false) => compress(&self.page_values, blob, Delta::Auto),
        }
        .map_err(pco_error(&self.path))
    }

    /// Encodes the open chunk of summaries, appends it to the file and records it.
    fn write_chunk(&mut self) -> Result<(), EngineError> {
        let Some(builder) = self.summaries.as_mut() else {
            return Ok(());
        };
        let (first_series, series, entries) = builder
            .take_chunk(&mut self.blob, self.version)
            .map_err(pco_error(&self.path))?;
        let blob = self.append_blob()?;
        self.chunks.push(ChunkEntry {
            first_series,
            series,
            entries,
            blob,
        });
        Ok(())
    }

    /// Appends `self.blob` to the file.
    fn append_blob(&mut self) -> Result<BlobRef, EngineError> {
        let Some(file) = self.file.as_ref() else {
            return Err(self.failed_earlier());
        };
        if let Err(e) = write_all(file, &self.tmp, &self.blob) {
            // The file now ends at an unknown offset: nothing more can be appended (and dropping the
            // writer removes it).
            self.file = None;
            return Err(write_error("write part temp file", &self.tmp, e));
        }
        let blob = BlobRef {
            offset: self.offset,
            // A page blob is at most MAX_PAGE_ROWS numbers of 8 bytes plus pco's small overhead.
            len: self.blob.len() as u32,
            crc: crc32c::crc32c(&self.blob),
        };
        self.offset += self.blob.len() as u64;
        Ok(blob)
    }

    fn invalid_input(&self, reason: String) -> EngineError {
        io_error("write part", &self.path)(io::Error::new(io::ErrorKind::InvalidInput, reason))
    }

    fn failed_earlier(&self) -> EngineError {
        io_error("write part temp file", &self.tmp)(io::Error::other(
            "an earlier write to this part failed",
        ))
    }
}

/// A column of a page.
#[derive(Debug, Clone, Copy)]
enum Column {
    Timestamps,
    Values,
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: an unfinished part is garbage under a name no reader opens.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Builds the error for a pco failure while writing `path` (only a bad configuration makes pco fail).
fn pco_error(path: &Path) -> impl FnOnce(pco::errors::PcoError) -> EngineError {
    let io = io_error("compress a column of part", path);
    move |e| io(io::Error::other(e))
}

/// Writes a whole part from series in ascending id order (see [`PartWriter::push_series`]).
#[cfg(test)]
pub(crate) fn write_part<'a>(
    path: &Path,
    tenant: Tenant,
    metric: &str,
    day: i64,
    series: impl IntoIterator<Item = (SeriesId, &'a [TimestampMs], &'a [f64])>,
) -> Result<PartMeta, EngineError> {
    let mut writer = PartWriter::create(path, tenant, metric, day)?;
    for (id, timestamps, values) in series {
        writer.push_series(id, timestamps, values)?;
    }
    writer.finish()
}
