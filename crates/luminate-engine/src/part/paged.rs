//! The column blob of a format 3 page: one pco chunk cut into sub-pages of [`SUBPAGE_ROWS`] rows, each
//! decodable on its own, so reading one series decodes the sub-pages holding its rows and not the
//! whole page.
//!
//! ```text
//! paged_blob := sub_rows u32 | sub_count u32 | end u32{1 + sub_count} | pco_header | chunk_meta
//!               | sub_page{sub_count}
//! ```
//! `end[0]` is the offset (from the blob's start) where the chunk's metadata ends and the first
//! sub-page begins, `end[i + 1]` where sub-page `i` ends; the last is the blob's length. Sub-page `i`
//! holds rows `i × sub_rows ..` of the page, `sub_rows` of them except the last. `pco_header` and
//! `chunk_meta` are pco's wrapped format: the chunk's encoding (bins, delta order, mode) is chosen
//! once for the whole page, as the standalone blobs of format 2 chose it, and each sub-page is a pco
//! page of that chunk carrying its own delta and ANS state.
//!
//! # Why
//! Measured on page-sized columns shaped like the benchmark's (`examples/codec_bench.rs`, table in
//! docs/engine.md, *Parts*): sub-pages of 1 024 rows store 0.5 % more bytes than one 16 384-row
//! standalone blob and read one random row range about 5× faster (18 µs against 101 µs for both
//! columns, the standalone blob decoded up to the rows wanted), while decoding a whole page costs
//! about 4 % more (pco's setup per sub-page). Smaller sub-pages read faster and cost more (512 rows:
//! +1.0 % bytes, 13 µs, whole pages +15 %).

use pco::data_types::Number;
use pco::wrapped::{ChunkDecompressor, FileCompressor, FileDecompressor};

use super::Delta;

/// Rows of a sub-page as this build writes them.
pub const SUBPAGE_ROWS: u32 = 1_024;

/// Appends the paged encoding of `numbers` to `out`, `sub_rows` rows per sub-page (at least 1).
pub fn compress<T: Number>(
    numbers: &[T],
    out: &mut Vec<u8>,
    delta: Delta,
    sub_rows: u32,
) -> Result<(), pco::errors::PcoError> {
    let sub_rows = sub_rows.max(1) as usize;
    let sizes: Vec<usize> = numbers.chunks(sub_rows).map(<[T]>::len).collect();
    let sub_pages = sizes.len();
    let delta = match delta {
        Delta::Auto => pco::DeltaSpec::Auto,
        Delta::Consecutive => pco::DeltaSpec::TryConsecutive(1),
    };
    let config = pco::ChunkConfig::default()
        .with_delta_spec(delta)
        .with_paging_spec(pco::PagingSpec::Exact(sizes));
    let start = out.len();
    out.extend_from_slice(&(sub_rows as u32).to_le_bytes());
    out.extend_from_slice(&(sub_pages as u32).to_le_bytes());
    let ends_at = out.len();
    out.resize(ends_at + 4 * (sub_pages + 1), 0);
    let file = FileCompressor::default();
    file.write_header(&mut *out)?;
    let mut chunk = file.chunk_compressor(numbers, &config)?;
    chunk.write_meta(&mut *out)?;
    let mut ends = Vec::with_capacity(sub_pages + 1);
    ends.push(out.len() - start);
    for i in 0..sub_pages {
        chunk.write_page(i, &mut *out)?;
        ends.push(out.len() - start);
    }
    for (i, end) in ends.into_iter().enumerate() {
        // A page blob is at most MAX_PAGE_ROWS numbers of 8 bytes plus pco's overhead: it fits.
        out[ends_at + 4 * i..ends_at + 4 * i + 4].copy_from_slice(&(end as u32).to_le_bytes());
    }
    Ok(())
}

/// A paged column blob ready to decode sub-pages from: its table checked and its chunk metadata
/// parsed. It borrows nothing; the blob's bytes are passed again to [`PagedColumn::decode`].
pub struct PagedColumn<T: Number> {
    chunk: ChunkDecompressor<T>,
    sub_rows: usize,
    rows: usize,
    /// `ends[i]..ends[i + 1]` are sub-page `i`'s bytes.
    ends: Vec<usize>,
}

impl<T: Number> std::fmt::Debug for PagedColumn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagedColumn")
            .field("sub_rows", &self.sub_rows)
            .field("rows", &self.rows)
            .field("sub_pages", &(self.ends.len() - 1))
            .finish()
    }
}

impl<T: Number> PagedColumn<T> {
    /// Parses the table and chunk metadata of `raw`, a paged blob of `rows` numbers; `Err` says what
    /// is wrong with it.
    pub fn open(raw: &[u8], rows: usize) -> Result<Self, String> {
        let word = |at: usize| -> Result<usize, String> {
            raw.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| {
                    format!("blob of {} bytes ends inside its sub-page table", raw.len())
                })
        };
        let sub_rows = word(0)?;
        let count = word(4)?;
        if sub_rows == 0 || rows == 0 || count != rows.div_ceil(sub_rows) {
            return Err(format!(
                "{count} sub-pages of {sub_rows} rows cannot hold the page's {rows} rows"
            ));
        }
        let table_end = 8 + 4 * (count + 1);
        if table_end > raw.len() {
            return Err(format!(
                "blob of {} bytes ends inside its sub-page table of {table_end}",
                raw.len()
            ));
        }
        let ends = (0..=count)
            .map(|i| word(8 + 4 * i))
            .collect::<Result<Vec<_>, _>>()?;
        let ordered = ends.windows(2).all(|w| w[0] <= w[1]);
        if ends[0] < table_end || !ordered || ends[count] != raw.len() {
            return Err(format!(
                "sub-page ends {:?}.. do not ascend from {table_end} to the blob's {} bytes",
                &ends[..ends.len().min(4)],
                raw.len()
            ));
        }
        let meta = &raw[table_end..ends[0]];
        let (file, rest) = FileDecompressor::new(meta).map_err(|e| e.to_string())?;
        let (chunk, rest) = file
            .chunk_decompressor::<T, _>(rest)
            .map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} bytes after the chunk metadata", rest.len()));
        }
        Ok(Self {
            chunk,
            sub_rows,
            rows,
            ends,
        })
    }

    /// Sub-pages of the blob.
    pub fn sub_pages(&self) -> usize {
        self.ends.len() - 1
    }

    /// The rows of the page sub-page `i` holds.
    pub fn rows_of(&self, i: usize) -> std::ops::Range<usize> {
        let start = i * self.sub_rows;
        start..(start + self.sub_rows).min(self.rows)
    }

    /// The sub-pages holding the page's rows `rows` (non-empty, within the page).
    pub(crate) fn covering(&self, rows: std::ops::Range<usize>) -> std::ops::Range<usize> {
        rows.start / self.sub_rows..(rows.end - 1) / self.sub_rows + 1
    }

    /// Decodes sub-page `i` of `raw` (the blob this was opened from) into `out[rows_of(i)]`; `out`
    /// holds at least the page's rows.
    pub fn decode(&mut self, raw: &[u8], i: usize, out: &mut [T]) -> Result<(), String> {
        let rows = self.rows_of(i);
        let n = rows.len();
        let dst = &mut out[rows];
        let mut page = self
            .chunk
            .page_decompressor(&raw[self.ends[i]..self.ends[i + 1]], n)
            .map_err(|e| format!("sub-page {i}: {e}"))?;
        match page.read(dst) {
            Ok(progress) if progress.finished && progress.n_processed == n => Ok(()),
            Ok(progress) => Err(format!(
                "sub-page {i}: {} numbers where {n} were expected",
                progress.n_processed
            )),
            Err(e) => Err(format!("sub-page {i}: {e}")),
        }
    }
}

/// Decodes every row of paged blob `raw` of `rows` numbers into `out` (resized to `rows`).
pub(crate) fn decompress<T: Number + Default>(
    raw: &[u8],
    rows: usize,
    out: &mut Vec<T>,
) -> Result<(), String> {
    let mut column = PagedColumn::<T>::open(raw, rows)?;
    out.clear();
    out.resize(rows, T::default());
    for i in 0..column.sub_pages() {
        column.decode(raw, i, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sub_page_decodes_alone_to_its_rows() {
        let numbers: Vec<i64> = (0..2_500i64).map(|i| 1_000_000 + i * 7 + i % 3).collect();
        let mut blob = vec![9u8; 3];
        compress(&numbers, &mut blob, Delta::Consecutive, 1_000).unwrap();
        let raw = &blob[3..];
        let mut column = PagedColumn::<i64>::open(raw, numbers.len()).unwrap();
        assert_eq!(column.sub_pages(), 3);
        assert_eq!(column.rows_of(2), 2_000..2_500);
        assert_eq!(column.covering(999..1_001), 0..2);
        assert_eq!(column.covering(2_499..2_500), 2..3);
        let mut out = vec![0i64; numbers.len()];
        column.decode(raw, 2, &mut out).unwrap();
        assert_eq!(&out[2_000..], &numbers[2_000..]);
        assert!(out[..2_000].iter().all(|&n| n == 0));
        let mut all: Vec<i64> = Vec::new();
        decompress(raw, numbers.len(), &mut all).unwrap();
        assert_eq!(all, numbers);
    }

    #[test]
    fn a_damaged_table_is_an_error_not_a_panic() {
        let numbers: Vec<f64> = (0..300).map(f64::from).collect();
        let mut blob = Vec::new();
        compress(&numbers, &mut blob, Delta::Auto, 100).unwrap();
        let mut out: Vec<f64> = Vec::new();
        // Rows that do not match the table's sub-pages.
        assert!(
            decompress(&blob, 301, &mut out)
                .unwrap_err()
                .contains("cannot hold")
        );
        // Sub-page ends out of order.
        let mut bad = blob.clone();
        bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            decompress(&bad, 300, &mut out)
                .unwrap_err()
                .contains("do not ascend")
        );
        // Truncated anywhere: an error every time.
        for len in 0..blob.len() {
            assert!(decompress(&blob[..len], 300, &mut out).is_err(), "{len}");
        }
    }
}
