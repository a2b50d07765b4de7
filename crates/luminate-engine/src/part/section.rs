//! The section (meta, page index, series directory) and footer of a part: their encoding, and the
//! decoding that checks every invariant the reader relies on. Knows nothing of files or page blobs
//! beyond the offsets recorded for them.

use std::path::Path;

use luminate_model::Tenant;

use super::summary::{CHUNK_ENTRY_LEN, ChunkEntry};
use super::{
    BlobRef, Delta, FOOTER_LEN, FORMAT_V1, HEADER_LEN, MAGIC, MAX_BLOCK_MS, MAX_PAGE_ROWS,
    MAX_ROWS, PAGE_ENTRY_LEN, PageEntry, PartMeta, compress, corruption,
};
use crate::EngineError;
use crate::record::SeriesId;

/// What a section decodes to: everything the reader keeps in memory.
pub(super) struct Section {
    /// The part's meta.
    pub meta: PartMeta,
    /// The page index, in row order.
    pub pages: Box<[PageEntry]>,
    /// Series ids, strictly ascending.
    pub ids: Box<[SeriesId]>,
    /// `starts[i]` is series `i`'s first row; one more entry than `ids`, the last being the row count.
    pub starts: Box<[u32]>,
    /// Format 2: the summaries' block width and chunks; `None` for format 1 and for a format-2 part
    /// written without summaries.
    pub summaries: Option<(i64, Box<[ChunkEntry]>)>,
}

/// The footer's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Footer {
    /// Offset of the section.
    pub section_offset: u64,
    /// Bytes of the section.
    pub section_len: u64,
    /// CRC-32C of the section.
    pub section_crc: u32,
}

impl Footer {
    /// The footer's bytes.
    pub(super) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        out[..8].copy_from_slice(&self.section_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.section_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.section_crc.to_le_bytes());
        out[20..].copy_from_slice(&MAGIC);
        out
    }

    /// Decodes the footer of a `file_len`-byte file found at `file_len - FOOTER_LEN`, checking that the
    /// section it points at lies between the header and the footer.
    pub(super) fn decode(
        path: &Path,
        file_len: u64,
        bytes: &[u8; FOOTER_LEN],
    ) -> Result<Self, EngineError> {
        let at = file_len - FOOTER_LEN as u64;
        if bytes[20..] != MAGIC {
            return Err(corruption(
                path,
                at + 20,
                format!(
                    "bad footer magic {:02x?}, expected {MAGIC:02x?} (truncated or not a part)",
                    &bytes[20..]
                ),
            ));
        }
        let footer = Self {
            section_offset: u64_at(bytes, 0),
            section_len: u64_at(bytes, 8),
            section_crc: u32_at(bytes, 16),
        };
        let fits = footer.section_offset >= HEADER_LEN as u64
            && footer.section_offset.checked_add(footer.section_len) == Some(at);
        if !fits {
            return Err(corruption(
                path,
                at,
                format!(
                    "footer places the section at {}..+{}, but it must end at the footer ({at})",
                    footer.section_offset, footer.section_len
                ),
            ));
        }
        Ok(footer)
    }
}

/// Encodes a section. `counts` are the series' row counts, in the order of `ids`; `summaries` (the
/// block width and the chunks) make it a format 2 section, `None` a format 1 one.
pub(super) fn encode(
    meta: &PartMeta,
    page_rows: u32,
    pages: &[PageEntry],
    ids: &[SeriesId],
    counts: &[u32],
    summaries: Option<(i64, &[ChunkEntry])>,
) -> Result<Vec<u8>, pco::errors::PcoError> {
    let mut ids_blob = Vec::new();
    compress(ids, &mut ids_blob, Delta::Consecutive)?;
    let mut counts_blob = Vec::new();
    compress(counts, &mut counts_blob, Delta::Auto)?;
    let mut out = Vec::with_capacity(
        64 + meta.tenant.as_str().len()
            + meta.metric.len()
            + pages.len() * PAGE_ENTRY_LEN
            + ids_blob.len()
            + counts_blob.len(),
    );
    put_bytes(&mut out, meta.tenant.as_str().as_bytes());
    put_bytes(&mut out, meta.metric.as_bytes());
    out.extend_from_slice(&meta.day.to_le_bytes());
    out.extend_from_slice(&meta.rows.to_le_bytes());
    out.extend_from_slice(&meta.series.to_le_bytes());
    out.extend_from_slice(&meta.pages.to_le_bytes());
    out.extend_from_slice(&page_rows.to_le_bytes());
    out.extend_from_slice(&meta.min_t.to_le_bytes());
    out.extend_from_slice(&meta.max_t.to_le_bytes());
    for p in pages {
        out.extend_from_slice(&p.first_row.to_le_bytes());
        out.extend_from_slice(&p.rows.to_le_bytes());
        out.extend_from_slice(&p.min_t.to_le_bytes());
        out.extend_from_slice(&p.max_t.to_le_bytes());
        for blob in [p.timestamps, p.values] {
            out.extend_from_slice(&blob.offset.to_le_bytes());
            out.extend_from_slice(&blob.len.to_le_bytes());
            out.extend_from_slice(&blob.crc.to_le_bytes());
        }
    }
    put_bytes(&mut out, &ids_blob);
    put_bytes(&mut out, &counts_blob);
    if let Some((block_ms, chunks)) = summaries {
        out.extend_from_slice(&block_ms.to_le_bytes());
        out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
        for c in chunks {
            out.extend_from_slice(&c.first_series.to_le_bytes());
            out.extend_from_slice(&c.series.to_le_bytes());
            out.extend_from_slice(&c.entries.to_le_bytes());
            out.extend_from_slice(&c.blob.offset.to_le_bytes());
            out.extend_from_slice(&c.blob.len.to_le_bytes());
            out.extend_from_slice(&c.blob.crc.to_le_bytes());
        }
    }
    Ok(out)
}

/// Decodes a section of format `version` read from `section_offset` (whose checksum has been
/// verified), checking the invariants the reader relies on: pages tile the rows in order within the
/// blob area, the directory's ids ascend and its counts sum to the rows, summary chunks tile the
/// series in order within the blob area. Errors name the offset of the offending field.
pub(super) fn decode(
    path: &Path,
    version: u32,
    section_offset: u64,
    bytes: &[u8],
) -> Result<Section, EngineError> {
    let mut r = Reader {
        path,
        base: section_offset,
        bytes,
        pos: 0,
    };
    let tenant = Tenant::new(r.str()?);
    let metric = r.str()?.to_owned();
    let day = r.i64()?;
    let rows_at = r.pos;
    let rows = r.u64()?;
    let series = r.u32()?;
    let page_count = r.u32()?;
    let page_rows_at = r.pos;
    let page_rows = r.u32()?;
    let min_t = r.i64()?;
    let max_t = r.i64()?;
    if rows == 0 || rows > MAX_ROWS || series == 0 || u64::from(series) > rows {
        return Err(r.error_at(
            rows_at,
            format!("impossible counts: {rows} rows in {series} series"),
        ));
    }
    if page_rows == 0 || page_rows > MAX_PAGE_ROWS {
        return Err(r.error_at(
            page_rows_at,
            format!("page size {page_rows} rows outside 1..={MAX_PAGE_ROWS}"),
        ));
    }
    let meta = PartMeta {
        tenant,
        metric,
        day,
        rows,
        series,
        pages: page_count,
        min_t,
        max_t,
    };
    let pages = decode_pages(&mut r, &meta, page_rows)?;
    let (ids, starts) = decode_directory(&mut r, &meta)?;
    let summaries = if version == FORMAT_V1 {
        None
    } else {
        decode_summaries(&mut r, &meta)?
    };
    if r.pos != bytes.len() {
        return Err(r.error(format!(
            "{} bytes after the {}",
            bytes.len() - r.pos,
            if version == FORMAT_V1 {
                "directory"
            } else {
                "summary chunks"
            }
        )));
    }
    Ok(Section {
        meta,
        pages,
        ids,
        starts,
        summaries,
    })
}

/// A part's summary index: the block width in ms and the chunks.
type SummaryIndex = (i64, Box<[ChunkEntry]>);

/// Decodes the block width and the summary chunk index: chunks tile the series `0..series` in
/// order, each with at least as many entries as series, each blob between the header and the section.
/// A width of 0 with no chunks is a part written without summaries (`None`).
fn decode_summaries(
    r: &mut Reader<'_>,
    meta: &PartMeta,
) -> Result<Option<SummaryIndex>, EngineError> {
    let block_at = r.pos;
    let block_ms = r.i64()?;
    if block_ms == 0 {
        let count_at = r.pos;
        return match r.u32()? {
            0 => Ok(None),
            count => Err(r.error_at(
                count_at,
                format!("{count} summary chunks in a part without summaries (block of 0 ms)"),
            )),
        };
    }
    if !(1..=MAX_BLOCK_MS).contains(&block_ms) {
        return Err(r.error_at(
            block_at,
            format!("summary block of {block_ms} ms outside 1..={MAX_BLOCK_MS}"),
        ));
    }
    let count = r.u32()? as usize;
    if count > r.remaining() / CHUNK_ENTRY_LEN {
        return Err(r.error(format!(
            "{count} summary chunks need {} bytes, {} left",
            count * CHUNK_ENTRY_LEN,
            r.remaining()
        )));
    }
    let mut chunks = Vec::with_capacity(count);
    let mut next_series = 0u64;
    for i in 0..count {
        let at = r.pos;
        let chunk = ChunkEntry {
            first_series: r.u32()?,
            series: r.u32()?,
            entries: r.u32()?,
            blob: r.blob()?,
        };
        let fits = u64::from(chunk.first_series) == next_series
            && chunk.series >= 1
            && chunk.entries >= chunk.series
            && u64::from(chunk.entries) <= meta.rows
            && chunk.blob.offset >= HEADER_LEN as u64
            // Checked: the offset is the file's bytes, and a sum past u64 wrapped into range.
            && chunk
                .blob
                .offset
                .checked_add(u64::from(chunk.blob.len))
                .is_some_and(|end| end <= r.base);
        if !fits {
            return Err(r.error_at(
                at,
                format!(
                    "summary chunk {i} (series {}..+{}, {} entries, blob {}..+{}) does not follow series {next_series} within {HEADER_LEN}..{}",
                    chunk.first_series,
                    chunk.series,
                    chunk.entries,
                    chunk.blob.offset,
                    chunk.blob.len,
                    r.base
                ),
            ));
        }
        next_series += u64::from(chunk.series);
        chunks.push(chunk);
    }
    if next_series != u64::from(meta.series) {
        return Err(r.error(format!(
            "summary chunks cover {next_series} series, meta says {}",
            meta.series
        )));
    }
    Ok(Some((block_ms, chunks.into_boxed_slice())))
}

/// Decodes the page index: pages tile rows `0..rows` in order, each of `1..=page_rows` rows, each
/// page's blobs adjacent and between the header and the section.
fn decode_pages(
    r: &mut Reader<'_>,
    meta: &PartMeta,
    page_rows: u32,
) -> Result<Box<[PageEntry]>, EngineError> {
    let count = meta.pages as usize;
    if count > r.remaining() / PAGE_ENTRY_LEN {
        return Err(r.error(format!(
            "{count} page entries need {} bytes, {} left",
            count * PAGE_ENTRY_LEN,
            r.remaining()
        )));
    }
    let mut pages = Vec::with_capacity(count);
    let mut next_row = 0u64;
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    for i in 0..count {
        let at = r.pos;
        let page = PageEntry {
            first_row: r.u32()?,
            rows: r.u32()?,
            min_t: r.i64()?,
            max_t: r.i64()?,
            timestamps: r.blob()?,
            values: r.blob()?,
        };
        // Checked sums: offsets are the file's bytes, and a sum past u64 wrapped into range.
        let blobs_end = page.values.offset.checked_add(u64::from(page.values.len));
        let problem = if u64::from(page.first_row) != next_row {
            Some(format!(
                "starts at row {}, expected {next_row}",
                page.first_row
            ))
        } else if page.rows == 0 || page.rows > page_rows {
            Some(format!(
                "holds {} rows, page size is {page_rows}",
                page.rows
            ))
        } else if page.min_t > page.max_t {
            Some(format!("min_t {} > max_t {}", page.min_t, page.max_t))
        } else if page.timestamps.offset < HEADER_LEN as u64
            || page
                .timestamps
                .offset
                .checked_add(u64::from(page.timestamps.len))
                != Some(page.values.offset)
            || blobs_end.is_none_or(|end| end > r.base)
        {
            Some(format!(
                "blobs at {}..+{} and {}..+{} are not adjacent within {HEADER_LEN}..{}",
                page.timestamps.offset,
                page.timestamps.len,
                page.values.offset,
                page.values.len,
                r.base
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(r.error_at(at, format!("page {i} {problem}")));
        }
        next_row += u64::from(page.rows);
        min_t = min_t.min(page.min_t);
        max_t = max_t.max(page.max_t);
        pages.push(page);
    }
    if next_row != meta.rows || min_t != meta.min_t || max_t != meta.max_t {
        return Err(r.error(format!(
            "pages hold {next_row} rows over {min_t}..={max_t}, meta says {} rows over {}..={}",
            meta.rows, meta.min_t, meta.max_t
        )));
    }
    Ok(pages.into_boxed_slice())
}

/// Decodes the series directory into ids and first rows.
#[expect(
    clippy::type_complexity,
    reason = "the two columns the reader keeps, named at the call"
)]
fn decode_directory(
    r: &mut Reader<'_>,
    meta: &PartMeta,
) -> Result<(Box<[SeriesId]>, Box<[u32]>), EngineError> {
    let series = meta.series as usize;
    let ids_at = r.pos;
    let ids: Vec<SeriesId> = r.pco_column(series)?;
    if let Some(i) = ids.windows(2).position(|w| w[0] >= w[1]) {
        return Err(r.error_at(
            ids_at,
            format!(
                "series ids not ascending: {} then {} at index {}",
                ids[i],
                ids[i + 1],
                i + 1
            ),
        ));
    }
    let counts_at = r.pos;
    let counts: Vec<u32> = r.pco_column(series)?;
    // Reuse the counts' buffer for the starts: 4 bytes per series, not 8, at the peak.
    let mut starts = counts;
    let mut row = 0u64;
    for (i, slot) in starts.iter_mut().enumerate() {
        let count = *slot;
        if count == 0 {
            return Err(r.error_at(counts_at, format!("series index {i} has no rows")));
        }
        *slot = row as u32;
        row += u64::from(count);
        if row > meta.rows {
            break;
        }
    }
    if row != meta.rows {
        return Err(r.error_at(
            counts_at,
            format!(
                "series row counts sum to at least {row}, meta says {}",
                meta.rows
            ),
        ));
    }
    // `row <= MAX_ROWS` here, so the end sentinel fits.
    starts.push(row as u32);
    Ok((ids.into_boxed_slice(), starts.into_boxed_slice()))
}

/// Appends a u32 length and the bytes.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Section strings and directory blobs are far below 4 GiB: names are validated short and the
    // directory of u32::MAX rows compresses to less.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads fields from a section, turning running out of bytes into `Corruption` at the file offset.
struct Reader<'a> {
    path: &'a Path,
    /// File offset of `bytes[0]`.
    base: u64,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn error(&self, reason: String) -> EngineError {
        self.error_at(self.pos, reason)
    }

    fn error_at(&self, pos: usize, reason: String) -> EngineError {
        corruption(self.path, self.base + pos as u64, reason)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EngineError> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "section ends: {n} bytes needed, {} left",
                self.remaining()
            )));
        }
        let bytes = self.bytes;
        let out = &bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, EngineError> {
        Ok(u32_at(self.take(4)?, 0))
    }

    fn u64(&mut self) -> Result<u64, EngineError> {
        Ok(u64_at(self.take(8)?, 0))
    }

    fn i64(&mut self) -> Result<i64, EngineError> {
        Ok(self.u64()? as i64)
    }

    fn blob(&mut self) -> Result<BlobRef, EngineError> {
        Ok(BlobRef {
            offset: self.u64()?,
            len: self.u32()?,
            crc: self.u32()?,
        })
    }

    fn str(&mut self) -> Result<&'a str, EngineError> {
        let at = self.pos;
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|e| self.error_at(at, format!("string is not UTF-8: {e}")))
    }

    /// A length-prefixed pco blob of exactly `n` numbers.
    fn pco_column<T: pco::data_types::Number + Default>(
        &mut self,
        n: usize,
    ) -> Result<Vec<T>, EngineError> {
        let at = self.pos;
        let len = self.u32()? as usize;
        let blob = self.take(len)?;
        // One spare slot: the counts column becomes the starts, which gain an end sentinel.
        let mut out = Vec::with_capacity(n + 1);
        out.resize(n, T::default());
        match pco::standalone::simple_decompress_into(blob, &mut out) {
            Ok(p) if p.finished && p.n_processed == n => Ok(out),
            Ok(p) => Err(self.error_at(
                at,
                format!(
                    "directory column holds {}{} numbers, expected {n}",
                    p.n_processed,
                    if p.finished { "" } else { " or more" }
                ),
            )),
            Err(e) => Err(self.error_at(at, format!("undecodable directory column: {e}"))),
        }
    }
}
