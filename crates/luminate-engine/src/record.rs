//! record: the typed payloads the engine stores in the WAL, and their binary encoding. Owns the meaning
//! of a record's bytes; framing, checksums and files belong to `wal`, applying records to `head`.
//!
//! # Layout (little-endian; `str` = u32 byte length then UTF-8 bytes)
//! ```text
//! record        := kind (u8) body
//! WRITE_BATCH=1 := tenant str
//!                  new_series_count u32, (series_id u32, metric str, dims_count u16, (key str, value str)*)*
//!                  point_count u32, (series_id u32, timestamp i64, value f64 as IEEE-754 bits u64)*
//! DELETE_BEFORE=2 := tenant str, metric str, before i64
//! SERIES_DEFS=3 := tenant str
//!                  series_count u32, (series_id u32, metric str, dims_count u16, (key str, value str)*)*
//! SERIES_BATCH=4 := tenant str
//!                  first_string u32, string_count u32, str*        new strings: log string ids
//!                                                                  first_string, first_string + 1, ...
//!                  first_series u32, series_count u32              ids first_series.. (dense)
//!                  metrics      blob(series_count)                 each series' metric (log string id)
//!                  pair_counts  blob(series_count)                 each series' number of pairs
//!                  (keys_j blob(n_j), values_j blob(n_j))          for j in 0..max(pair_counts): the j-th
//!                                                                  pair of each series with more than j
//!                                                                  pairs (n_j of them), in id order
//! blob(n)       := byte_len u32, pco standalone u32 × n
//! ```
//! The series log (`<data_dir>/series/`, same framing as the WAL) holds `SERIES_BATCH` records: the
//! flush appends there every series defined since the previous flush, before it writes parts, so that
//! deleting WAL segments never loses a definition. Strings are written once per tenant, the first time
//! a persisted series uses them, and named by their *log string id* (dense per tenant, in log order);
//! series name their metric, keys and values by those ids, pairs in key order. The pairs are stored
//! transposed (first pairs, then second pairs, ...) so that each pco column holds one dimension's
//! values: the benchmark's 2 M series of four dimensions take about 3.3 bytes each (a `SERIES_DEFS`
//! definition spells every string: about 120 bytes). `SERIES_DEFS`, the series log of earlier builds,
//! is still read.
//! One write call becomes one `WRITE_BATCH` record, so a batch is replayed all or nothing. Series ids are
//! dense per tenant and assigned in log order: a new series is defined in the record of the first batch
//! that stores a point of it, before that record's points refer to it.

use luminate_model::{Dimensions, Tenant, TimestampMs};

/// Kind byte of a write batch.
const WRITE_BATCH: u8 = 1;
/// Kind byte of a delete.
const DELETE_BEFORE: u8 = 2;
/// Kind byte of series definitions with their strings (the series log of earlier builds; still read).
const SERIES_DEFS: u8 = 3;
/// Kind byte of a batch of series definitions by log string ids (the series log).
const SERIES_BATCH: u8 = 4;
/// Most series one `SERIES_BATCH` holds: bounds what a (corrupt) record can make the reader allocate,
/// and the flusher's buffers.
pub(crate) const MAX_BATCH_SERIES: usize = 1 << 16;
/// Most pairs one series may have in a `SERIES_BATCH` (`SERIES_DEFS` stores the count as a u16).
pub(crate) const MAX_PAIRS: u32 = u16::MAX as u32;
/// Most pairs one `SERIES_BATCH` holds, over all its series (4 Mi: 32 MiB decoded; 65 536 series of
/// 64 dimensions fit). pco stores a column of equal counts in a few bytes, so without it a record of
/// a hundred bytes could claim 65 536 series of 65 535 pairs and make the reader allocate 34 GB
/// (found by the `wal_record` fuzz target). The flusher closes a batch before it passes it.
pub(crate) const MAX_BATCH_PAIRS: usize = 1 << 22;
/// Encoded bytes of one point: series id, timestamp, value.
const POINT_LEN: usize = 4 + 8 + 8;

/// A series' number within its tenant: dense, assigned in log order, never reused.
pub(crate) type SeriesId = u32;

/// A WAL payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// Points of one write call (only the accepted ones).
    Write(WriteBatch),
    /// A metric's points before a timestamp were deleted.
    DeleteBefore(DeleteBefore),
    /// Series definitions persisted by a flush of an earlier build (series log only).
    Series(SeriesDefs),
    /// Series definitions persisted by a flush (series log only).
    SeriesBatch(SeriesBatch),
}

/// Series of one tenant, in id order, by log string ids, with the strings the log did not hold yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeriesBatch {
    /// Owner of the series and the strings.
    pub tenant: Tenant,
    /// Log string id of `strings[0]`.
    pub first_string: u32,
    /// New strings, ids ascending from `first_string`.
    pub strings: Vec<String>,
    /// Id of the first series (ids are dense).
    pub first_series: SeriesId,
    /// Each series' metric.
    pub metrics: Vec<u32>,
    /// Each series' number of pairs.
    pub pair_counts: Vec<u32>,
    /// Every series' (key, value) pairs, series after series, each series' in key order.
    pub pairs: Vec<(u32, u32)>,
}

/// Series of one tenant, in id order, as the series log keeps them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesDefs {
    /// Owner of the series.
    pub tenant: Tenant,
    /// The definitions, ids ascending and dense.
    pub series: Vec<SeriesDef>,
}

/// The accepted points of one write call, with the series they create.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WriteBatch {
    /// Owner of every series and point in the batch.
    pub tenant: Tenant,
    /// Series first seen in this batch, in id order.
    pub new_series: Vec<SeriesDef>,
    /// The points, in the order they were written.
    pub points: Vec<SeriesPoint>,
}

/// A series definition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesDef {
    /// Its id.
    pub id: SeriesId,
    /// Its metric.
    pub metric: String,
    /// Its dimensions.
    pub dims: Dimensions,
}

/// One point of a known series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SeriesPoint {
    /// The series.
    pub series: SeriesId,
    /// Unix ms.
    pub timestamp: TimestampMs,
    /// The value.
    pub value: f64,
}

/// `delete_before` of one metric.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeleteBefore {
    /// Owner.
    pub tenant: Tenant,
    /// The metric.
    pub metric: String,
    /// Points with a timestamp below this are deleted.
    pub before: TimestampMs,
}

/// A payload that is not a record this build wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// Offset in the payload where decoding failed.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl WriteBatch {
    /// Encodes as a `WRITE_BATCH` record.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            13 + self.tenant.as_str().len()
                + defs_bytes(&self.new_series)
                + self.points.len() * POINT_LEN,
        );
        out.push(WRITE_BATCH);
        put_str(&mut out, self.tenant.as_str());
        put_defs(&mut out, &self.new_series);
        put_len(&mut out, self.points.len());
        for p in &self.points {
            out.extend_from_slice(&p.series.to_le_bytes());
            out.extend_from_slice(&p.timestamp.to_le_bytes());
            out.extend_from_slice(&p.value.to_bits().to_le_bytes());
        }
        out
    }
}

// Only tests write `SERIES_DEFS` now: they build the series logs of earlier builds (and the fuzz
// targets re-encode what they decode).
#[cfg(any(test, feature = "fuzzing"))]
impl SeriesDefs {
    /// Encodes as a `SERIES_DEFS` record.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.tenant.as_str().len() + defs_bytes(&self.series));
        out.push(SERIES_DEFS);
        put_str(&mut out, self.tenant.as_str());
        put_defs(&mut out, &self.series);
        out
    }
}

/// Encoded bytes of `defs`, for sizing buffers.
fn defs_bytes(defs: &[SeriesDef]) -> usize {
    defs.iter()
        .map(|s| {
            10 + s.metric.len()
                + s.dims
                    .pairs()
                    .iter()
                    .map(|(k, v)| 8 + k.len() + v.len())
                    .sum::<usize>()
        })
        .sum()
}

fn put_defs(out: &mut Vec<u8>, defs: &[SeriesDef]) {
    put_len(out, defs.len());
    for s in defs {
        out.extend_from_slice(&s.id.to_le_bytes());
        put_str(out, &s.metric);
        // Validation allows at most 20 dimensions; u16 leaves room for any configured limit.
        out.extend_from_slice(&(s.dims.len() as u16).to_le_bytes());
        for (k, v) in s.dims.pairs() {
            put_str(out, k);
            put_str(out, v);
        }
    }
}

impl SeriesBatch {
    /// Encodes as a `SERIES_BATCH` record. `Err` only if pco fails, which it does not on `u32`s.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, pco::errors::PcoError> {
        let strings: usize = self.strings.iter().map(|s| 4 + s.len()).sum();
        let mut out = Vec::with_capacity(32 + self.tenant.as_str().len() + strings);
        out.push(SERIES_BATCH);
        put_str(&mut out, self.tenant.as_str());
        out.extend_from_slice(&self.first_string.to_le_bytes());
        put_len(&mut out, self.strings.len());
        for s in &self.strings {
            put_str(&mut out, s);
        }
        out.extend_from_slice(&self.first_series.to_le_bytes());
        put_len(&mut out, self.metrics.len());
        put_blob(&mut out, &self.metrics)?;
        put_blob(&mut out, &self.pair_counts)?;
        let starts = pair_starts(&self.pair_counts);
        let max_pairs = self.pair_counts.iter().copied().max().unwrap_or(0);
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for j in 0..max_pairs {
            keys.clear();
            values.clear();
            for (s, &count) in self.pair_counts.iter().enumerate() {
                if count > j {
                    let (k, v) = self.pairs[starts[s] + j as usize];
                    keys.push(k);
                    values.push(v);
                }
            }
            put_blob(&mut out, &keys)?;
            put_blob(&mut out, &values)?;
        }
        Ok(out)
    }

    /// Series `i` of the batch: its id, metric and pairs.
    pub(crate) fn series(&self) -> impl Iterator<Item = (SeriesId, u32, &[(u32, u32)])> {
        let mut start = 0usize;
        self.metrics
            .iter()
            .zip(&self.pair_counts)
            .enumerate()
            .map(move |(i, (&metric, &count))| {
                let pairs = &self.pairs[start..start + count as usize];
                start += count as usize;
                (self.first_series + i as SeriesId, metric, pairs)
            })
    }
}

/// Where each series' pairs start in the row-major pairs, from the pair counts.
fn pair_starts(counts: &[u32]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(counts.len());
    let mut at = 0usize;
    for &c in counts {
        starts.push(at);
        at += c as usize;
    }
    starts
}

/// Appends `numbers` as a blob: byte length, then pco's standalone encoding (its defaults: level 8,
/// delta encoding and mode chosen from the data).
fn put_blob(out: &mut Vec<u8>, numbers: &[u32]) -> Result<(), pco::errors::PcoError> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    pco::standalone::simple_compress_into(numbers, &pco::ChunkConfig::default(), &mut *out)?;
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

impl DeleteBefore {
    /// Encodes as a `DELETE_BEFORE` record.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.tenant.as_str().len() + self.metric.len());
        out.push(DELETE_BEFORE);
        put_str(&mut out, self.tenant.as_str());
        put_str(&mut out, &self.metric);
        out.extend_from_slice(&self.before.to_le_bytes());
        out
    }
}

impl Record {
    /// Decodes a whole payload; trailing bytes are an error.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let record = match r.u8()? {
            WRITE_BATCH => {
                let tenant = Tenant::new(r.str()?);
                let new_series = r.defs()?;
                let n = r.u32()? as usize;
                if n > r.remaining() / POINT_LEN {
                    return Err(r.error(format!(
                        "{n} points need {} bytes, {} left",
                        n * POINT_LEN,
                        r.remaining()
                    )));
                }
                let mut points = Vec::with_capacity(n);
                for _ in 0..n {
                    let series = r.u32()?;
                    let timestamp = r.i64()?;
                    let value = f64::from_bits(r.u64()?);
                    points.push(SeriesPoint {
                        series,
                        timestamp,
                        value,
                    });
                }
                Self::Write(WriteBatch {
                    tenant,
                    new_series,
                    points,
                })
            }
            DELETE_BEFORE => {
                let tenant = Tenant::new(r.str()?);
                let metric = r.str()?.to_owned();
                Self::DeleteBefore(DeleteBefore {
                    tenant,
                    metric,
                    before: r.i64()?,
                })
            }
            SERIES_DEFS => {
                let tenant = Tenant::new(r.str()?);
                Self::Series(SeriesDefs {
                    tenant,
                    series: r.defs()?,
                })
            }
            SERIES_BATCH => Self::SeriesBatch(r.series_batch()?),
            kind => {
                return Err(DecodeError {
                    offset: 0,
                    reason: format!("unknown record kind {kind}"),
                });
            }
        };
        if r.remaining() != 0 {
            return Err(r.error(format!("{} trailing bytes", r.remaining())));
        }
        Ok(record)
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Batches are bounded far below 4 Gi items and strings by validation; see `Wal::append` for the frame.
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// A cursor over a payload that names the offset of whatever it cannot read.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn error(&self, reason: String) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason,
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let chunk = self
            .bytes
            .get(self.pos..self.pos + N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or_else(|| self.error(format!("need {N} bytes, {} left", self.remaining())))?;
        self.pos += N;
        Ok(chunk)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.take().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.take().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.take().map(i64::from_le_bytes)
    }

    fn defs(&mut self) -> Result<Vec<SeriesDef>, DecodeError> {
        let n = self.u32()? as usize;
        let mut defs = Vec::with_capacity(n.min(self.remaining() / 10));
        for _ in 0..n {
            let id = self.u32()?;
            let metric = self.str()?.to_owned();
            let dims_count = self.u16()?;
            let mut pairs = Vec::with_capacity(usize::from(dims_count).min(self.remaining() / 8));
            for _ in 0..dims_count {
                let k = self.str()?.to_owned();
                pairs.push((k, self.str()?.to_owned()));
            }
            defs.push(SeriesDef {
                id,
                metric,
                dims: Dimensions::from_pairs(pairs),
            });
        }
        Ok(defs)
    }

    fn series_batch(&mut self) -> Result<SeriesBatch, DecodeError> {
        let tenant = Tenant::new(self.str()?);
        let first_string = self.u32()?;
        let n = self.u32()? as usize;
        if n > self.remaining() / 4 {
            return Err(self.error(format!(
                "{n} strings need {} bytes or more, {} left",
                n * 4,
                self.remaining()
            )));
        }
        let mut strings = Vec::with_capacity(n);
        for _ in 0..n {
            strings.push(self.str()?.to_owned());
        }
        first_string
            .checked_add(n as u32)
            .ok_or_else(|| self.error(format!("{n} strings from id {first_string} overflow")))?;
        let first_series = self.u32()?;
        let n = self.u32()? as usize;
        if n > MAX_BATCH_SERIES {
            return Err(self.error(format!(
                "{n} series in one batch, at most {MAX_BATCH_SERIES}"
            )));
        }
        first_series
            .checked_add(n as u32)
            .ok_or_else(|| self.error(format!("{n} series from id {first_series} overflow")))?;
        let metrics = self.blob(n)?;
        let pair_counts = self.blob(n)?;
        if let Some(c) = pair_counts.iter().find(|&&c| c > MAX_PAIRS) {
            return Err(self.error(format!("a series of {c} pairs, at most {MAX_PAIRS}")));
        }
        let starts = pair_starts(&pair_counts);
        let total: usize = pair_counts.iter().map(|&c| c as usize).sum();
        if total > MAX_BATCH_PAIRS {
            return Err(self.error(format!(
                "{total} pairs in one batch, at most {MAX_BATCH_PAIRS}"
            )));
        }
        let mut pairs = vec![(0, 0); total];
        let max_pairs = pair_counts.iter().copied().max().unwrap_or(0);
        for j in 0..max_pairs {
            let n_j = pair_counts.iter().filter(|&&c| c > j).count();
            let keys = self.blob(n_j)?;
            let values = self.blob(n_j)?;
            let holders = pair_counts.iter().enumerate().filter(|(_, c)| **c > j);
            for (((s, _), k), v) in holders.zip(keys).zip(values) {
                pairs[starts[s] + j as usize] = (k, v);
            }
        }
        Ok(SeriesBatch {
            tenant,
            first_string,
            strings,
            first_series,
            metrics,
            pair_counts,
            pairs,
        })
    }

    /// A blob of exactly `n` numbers.
    fn blob(&mut self, n: usize) -> Result<Vec<u32>, DecodeError> {
        let at = self.pos;
        let len = self.u32()? as usize;
        let bytes = self
            .bytes
            .get(self.pos..self.pos.saturating_add(len))
            .ok_or_else(|| self.error(format!("blob of {len} bytes, {} left", self.remaining())))?;
        let mut out = vec![0u32; n];
        let fail = |reason: String| DecodeError { offset: at, reason };
        match pco::standalone::simple_decompress_into(bytes, &mut out) {
            Ok(p) if p.finished && p.n_processed == n => {}
            Ok(p) => {
                return Err(fail(format!(
                    "blob holds {}{} numbers, expected {n}",
                    p.n_processed,
                    if p.finished { "" } else { " or more" }
                )));
            }
            Err(e) => return Err(fail(format!("undecodable blob: {e}"))),
        }
        self.pos += len;
        Ok(out)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.u32()? as usize;
        let start = self.pos;
        let bytes = self
            .bytes
            .get(start..start.saturating_add(len))
            .ok_or_else(|| {
                self.error(format!("string of {len} bytes, {} left", self.remaining()))
            })?;
        let s = std::str::from_utf8(bytes)
            .map_err(|e| self.error(format!("string is not UTF-8: {e}")))?;
        self.pos += len;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(pairs: &[(&str, &str)]) -> Dimensions {
        Dimensions::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn write_batch_layout_is_pinned() {
        let batch = WriteBatch {
            tenant: Tenant::new("t"),
            new_series: vec![SeriesDef {
                id: 7,
                metric: "m".into(),
                dims: dims(&[("k", "v")]),
            }],
            points: vec![SeriesPoint {
                series: 7,
                timestamp: -2,
                value: 1.5,
            }],
        };
        let bytes = batch.encode();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[1u8][..],                                  // kind
            &[1, 0, 0, 0], b"t",                         // tenant
            &[1, 0, 0, 0],                               // one new series
            &[7, 0, 0, 0], &[1, 0, 0, 0], b"m",          // id 7, metric "m"
            &[1, 0], &[1, 0, 0, 0], b"k", &[1, 0, 0, 0], b"v",
            &[1, 0, 0, 0],                               // one point
            &[7, 0, 0, 0],
            &(-2i64).to_le_bytes(),
            &[0, 0, 0, 0, 0, 0, 0xf8, 0x3f],             // 1.5
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(Record::decode(&bytes), Ok(Record::Write(batch)));
    }

    #[test]
    fn delete_layout_is_pinned() {
        let delete = DeleteBefore {
            tenant: Tenant::new("t"),
            metric: "mm".into(),
            before: 256,
        };
        let bytes = delete.encode();
        assert_eq!(
            bytes,
            [
                &[2u8, 1, 0, 0, 0][..],
                b"t",
                &[2, 0, 0, 0],
                b"mm",
                &[0, 1, 0, 0, 0, 0, 0, 0]
            ]
            .concat()
        );
        assert_eq!(Record::decode(&bytes), Ok(Record::DeleteBefore(delete)));
    }

    #[test]
    fn series_defs_layout_is_pinned() {
        let defs = SeriesDefs {
            tenant: Tenant::new("t"),
            series: vec![SeriesDef {
                id: 2,
                metric: "m".into(),
                dims: dims(&[]),
            }],
        };
        let bytes = defs.encode();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[3u8][..], &[1, 0, 0, 0], b"t", &[1, 0, 0, 0],
            &[2, 0, 0, 0], &[1, 0, 0, 0], b"m", &[0, 0],
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(Record::decode(&bytes), Ok(Record::Series(defs)));
    }

    /// A length-prefixed pco blob, as `SERIES_BATCH` writes each column.
    fn blob(numbers: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        put_blob(&mut out, numbers).unwrap();
        assert_eq!(
            u32::from_le_bytes(out[..4].try_into().unwrap()) as usize,
            out.len() - 4
        );
        out
    }

    fn sample_batch() -> SeriesBatch {
        SeriesBatch {
            tenant: Tenant::new("t"),
            first_string: 3,
            strings: vec!["m".into(), "k".into()],
            first_series: 9,
            metrics: vec![3, 3, 0],
            pair_counts: vec![2, 0, 1],
            pairs: vec![(4, 1), (2, 5), (4, 0)],
        }
    }

    #[test]
    fn series_batch_layout_is_pinned() {
        let batch = sample_batch();
        let bytes = batch.encode().unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[4u8][..],                                   // kind
            &[1, 0, 0, 0], b"t",                          // tenant
            &[3, 0, 0, 0], &[2, 0, 0, 0],                 // strings 3 and 4:
            &[1, 0, 0, 0], b"m", &[1, 0, 0, 0], b"k",
            &[9, 0, 0, 0], &[3, 0, 0, 0],                 // series 9, 10, 11
            &blob(&[3, 3, 0]),                            // metrics
            &blob(&[2, 0, 1]),                            // pair counts
            &blob(&[4, 4]), &blob(&[1, 0]),               // first pairs of series 9 and 11
            &blob(&[2]), &blob(&[5]),                     // second pair of series 9
        ]
        .concat();
        assert_eq!(bytes, expected);
        let Ok(Record::SeriesBatch(back)) = Record::decode(&bytes) else {
            panic!("not a series batch")
        };
        assert_eq!(back, batch);
        // (id, metric, pairs) of each series.
        type Def = (SeriesId, u32, Vec<(u32, u32)>);
        let series: Vec<Def> = back
            .series()
            .map(|(id, m, p)| (id, m, p.to_vec()))
            .collect();
        assert_eq!(
            series,
            vec![
                (9, 3, vec![(4, 1), (2, 5)]),
                (10, 3, vec![]),
                (11, 0, vec![(4, 0)])
            ]
        );
    }

    #[test]
    fn series_batches_of_many_series_round_trip() {
        let n = MAX_BATCH_SERIES as u32;
        let pair_counts: Vec<u32> = (0..n).map(|i| i % 5).collect();
        let pairs: Vec<(u32, u32)> = pair_counts
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| {
                (0..c).map(move |j| (j, (i as u32).wrapping_mul(2_654_435_761) % 100_000))
            })
            .collect();
        let batch = SeriesBatch {
            tenant: Tenant::new("big"),
            first_string: 0,
            strings: vec![],
            first_series: 0,
            metrics: vec![7; n as usize],
            pair_counts,
            pairs,
        };
        let bytes = batch.encode().unwrap();
        assert!(
            bytes.len() < 4 * n as usize,
            "{} bytes for {n} series",
            bytes.len()
        );
        assert_eq!(Record::decode(&bytes), Ok(Record::SeriesBatch(batch)));
    }

    #[test]
    fn damaged_series_batches_are_rejected() {
        let bytes = sample_batch().encode().unwrap();
        // Every cut of the record fails to decode, never panics.
        for len in 0..bytes.len() {
            assert!(Record::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        // Series count past the bound (the count sits after kind, tenant and the strings).
        let count_at = 1 + 5 + 8 + 5 + 5 + 4;
        let mut big = bytes.clone();
        big[count_at..count_at + 4].copy_from_slice(&(MAX_BATCH_SERIES as u32 + 1).to_le_bytes());
        let err = Record::decode(&big).unwrap_err();
        assert!(err.reason.contains("series in one batch"), "{}", err.reason);
        // A column holding fewer numbers than the batch has series.
        let mut short = bytes[..count_at].to_vec();
        short.extend_from_slice(&3u32.to_le_bytes());
        short.extend_from_slice(&blob(&[3, 3]));
        let err = Record::decode(&short).unwrap_err();
        assert!(err.reason.contains("expected 3"), "{}", err.reason);
    }

    #[test]
    fn a_small_series_batch_cannot_claim_billions_of_pairs() {
        // 65 536 series of 65 535 pairs each, in two pco columns of equal numbers: a record of about
        // a hundred bytes that asked the reader for 34 GB before the first pair column was read (an
        // abort at start-up, not an error naming the file).
        let n = MAX_BATCH_SERIES;
        let mut bytes = vec![SERIES_BATCH];
        put_str(&mut bytes, "t");
        bytes.extend_from_slice(&[0; 12]); // first string, no strings, first series
        put_len(&mut bytes, n);
        bytes.extend(blob(&vec![0; n]));
        bytes.extend(blob(&vec![MAX_PAIRS; n]));
        assert!(bytes.len() < 200, "{} bytes", bytes.len());
        let err = Record::decode(&bytes).unwrap_err();
        assert_eq!(
            err.reason,
            format!(
                "{} pairs in one batch, at most {MAX_BATCH_PAIRS}",
                n * MAX_PAIRS as usize
            )
        );
    }

    #[test]
    fn damaged_payloads_name_the_offset() {
        assert_eq!(
            Record::decode(&[9]).unwrap_err().reason,
            "unknown record kind 9"
        );
        let err = Record::decode(&[2, 5, 0, 0, 0, b'a']).unwrap_err();
        assert_eq!(err.offset, 5);
        let mut bytes = DeleteBefore {
            tenant: Tenant::new("t"),
            metric: "m".into(),
            before: 1,
        }
        .encode();
        bytes.push(0);
        assert_eq!(
            Record::decode(&bytes).unwrap_err(),
            DecodeError {
                offset: 19,
                reason: "1 trailing bytes".into()
            }
        );
        let err = Record::decode(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]).unwrap_err();
        assert!(err.reason.contains("points need"), "{}", err.reason);
    }

    #[test]
    fn values_round_trip_bit_exactly() {
        let points: Vec<SeriesPoint> = [0.0, -0.0, f64::MIN_POSITIVE, f64::MAX, -1e-300, 0.25]
            .iter()
            .enumerate()
            .map(|(i, &value)| SeriesPoint {
                series: i as u32,
                timestamp: i64::MIN + i as i64,
                value,
            })
            .collect();
        let batch = WriteBatch {
            tenant: Tenant::new("x"),
            new_series: vec![],
            points: points.clone(),
        };
        let Ok(Record::Write(back)) = Record::decode(&batch.encode()) else {
            panic!("not a write batch")
        };
        assert!(
            back.points
                .iter()
                .zip(&points)
                .all(|(a, b)| a.value.to_bits() == b.value.to_bits())
        );
    }
}
