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
//! KEYED_WRITE=5 := tenant str, key                                 a WRITE_BATCH sent with an
//!                  new_series_count u32, ..., point_count u32, ...  idempotency key: the batch as
//!                                                                  in WRITE_BATCH after its tenant
//! KEY_WINDOW=6  := key_count u32, (tenant str, key)*               the live keys carried over at a
//!                                                                  flush (see below)
//! key           := key str, at i64, status u16, body bytes         at: wall-clock ms when logged
//! bytes         := byte_len u32, bytes
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
//! One write call becomes one `WRITE_BATCH` record, so a batch is replayed all or nothing. A write sent
//! with an idempotency key becomes one `KEYED_WRITE` record instead: the key and the answer the write
//! got (status and body, as the server first sent them) are in the record that holds the batch, so
//! replay never finds a batch without its key or a key without its batch (`crate::keys`). When a flush
//! is about to delete the segments that hold those records, the writer thread first logs every key
//! still in the window as `KEY_WINDOW` records at the start of the segment replay will start from
//! (each holds up to about [`KEY_WINDOW_RECORD_BYTES`] of keys). Earlier builds wrote neither kind, so
//! their segments replay unchanged; they cannot read a log that holds one. Series ids are
//! dense per tenant and assigned in log order: a new series is defined in the record of the first batch
//! that stores a point of it, before that record's points refer to it.

use luminate_model::keyed::KeyedResponse;
use luminate_model::{Dimensions, Tenant, TimestampMs};

/// Kind byte of a write batch.
const WRITE_BATCH: u8 = 1;
/// Kind byte of a delete.
const DELETE_BEFORE: u8 = 2;
/// Kind byte of series definitions with their strings (the series log of earlier builds; still read).
const SERIES_DEFS: u8 = 3;
/// Kind byte of a batch of series definitions by log string ids (the series log).
const SERIES_BATCH: u8 = 4;
/// Kind byte of a write batch with its idempotency key and answer.
const KEYED_WRITE: u8 = 5;
/// Kind byte of idempotency keys carried over into a new segment at a flush.
const KEY_WINDOW: u8 = 6;
/// A `KEY_WINDOW` record is closed once it passes this many bytes (one key with a larger answer
/// still fits): bounds one record, and what replay holds of it at once.
pub(crate) const KEY_WINDOW_RECORD_BYTES: usize = 1 << 20;
/// Encoded bytes of a key entry besides its strings and body: three lengths, `at`, status.
const KEY_FIXED_LEN: usize = 4 + 4 + 8 + 2 + 4;
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
    /// Points of one write call sent with an idempotency key, with the key and its answer.
    KeyedWrite(KeyEntry, WriteBatch),
    /// Idempotency keys carried over into a new segment by a flush.
    KeyWindow(Vec<KeyEntry>),
}

/// An idempotency key and the answer its write got, as logged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyEntry {
    /// The writer.
    pub tenant: Tenant,
    /// The key as sent.
    pub key: String,
    /// Wall-clock ms when the write was logged: the window's TTL counts from here, across restarts.
    pub at: TimestampMs,
    /// The answer, byte for byte.
    pub response: KeyedResponse,
}

impl KeyEntry {
    /// Encoded bytes of the entry in a `KEY_WINDOW` record.
    pub(crate) fn encoded_len(&self) -> usize {
        KEY_FIXED_LEN + self.tenant.as_str().len() + self.key.len() + self.response.body.len()
    }

    /// The key, answer and time (not the tenant).
    fn put_key(&self, out: &mut Vec<u8>) {
        put_str(out, &self.key);
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.response.status.to_le_bytes());
        put_len(out, self.response.body.len());
        out.extend_from_slice(&self.response.body);
    }
}

/// Encodes `entries` as one `KEY_WINDOW` record.
pub(crate) fn encode_key_window(entries: &[&KeyEntry]) -> Vec<u8> {
    let len: usize = entries.iter().map(|e| e.encoded_len()).sum();
    let mut out = Vec::with_capacity(5 + len);
    out.push(KEY_WINDOW);
    put_len(&mut out, entries.len());
    for e in entries {
        put_str(&mut out, e.tenant.as_str());
        e.put_key(&mut out);
    }
    out
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
        let mut out = Vec::with_capacity(self.body_len(0));
        out.push(WRITE_BATCH);
        put_str(&mut out, self.tenant.as_str());
        self.put_body(&mut out);
        out
    }

    /// Encodes as a `KEYED_WRITE` record with `key` (the batch's tenant is the key's).
    pub(crate) fn encode_keyed(&self, key: &KeyEntry) -> Vec<u8> {
        debug_assert_eq!(
            key.tenant, self.tenant,
            "a key belongs to its batch's tenant"
        );
        let mut out = Vec::with_capacity(self.body_len(key.encoded_len()));
        out.push(KEYED_WRITE);
        put_str(&mut out, self.tenant.as_str());
        key.put_key(&mut out);
        self.put_body(&mut out);
        out
    }

    /// Bytes of the record with `extra` bytes of key, for sizing buffers.
    fn body_len(&self, extra: usize) -> usize {
        13 + extra
            + self.tenant.as_str().len()
            + defs_bytes(&self.new_series)
            + self.points.len() * POINT_LEN
    }

    /// New series and points: what follows the tenant (and key) of the record.
    fn put_body(&self, out: &mut Vec<u8>) {
        put_defs(out, &self.new_series);
        put_len(out, self.points.len());
        for p in &self.points {
            out.extend_from_slice(&p.series.to_le_bytes());
            out.extend_from_slice(&p.timestamp.to_le_bytes());
            out.extend_from_slice(&p.value.to_bits().to_le_bytes());
        }
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
                Self::Write(r.batch_body(tenant)?)
            }
            KEYED_WRITE => {
                let tenant = Tenant::new(r.str()?);
                let key = r.key(tenant.clone())?;
                Self::KeyedWrite(key, r.batch_body(tenant)?)
            }
            KEY_WINDOW => {
                let n = r.u32()? as usize;
                let mut keys = Vec::with_capacity(n.min(r.remaining() / KEY_FIXED_LEN));
                for _ in 0..n {
                    let tenant = Tenant::new(r.str()?);
                    keys.push(r.key(tenant)?);
                }
                Self::KeyWindow(keys)
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

    /// New series and points of a write batch of `tenant`.
    fn batch_body(&mut self, tenant: Tenant) -> Result<WriteBatch, DecodeError> {
        let new_series = self.defs()?;
        let n = self.u32()? as usize;
        if n > self.remaining() / POINT_LEN {
            return Err(self.error(format!(
                "{n} points need {} bytes, {} left",
                n * POINT_LEN,
                self.remaining()
            )));
        }
        let mut points = Vec::with_capacity(n);
        for _ in 0..n {
            let series = self.u32()?;
            let timestamp = self.i64()?;
            let value = f64::from_bits(self.u64()?);
            points.push(SeriesPoint {
                series,
                timestamp,
                value,
            });
        }
        Ok(WriteBatch {
            tenant,
            new_series,
            points,
        })
    }

    /// A key of `tenant`: key, time, status, body.
    fn key(&mut self, tenant: Tenant) -> Result<KeyEntry, DecodeError> {
        let key = self.str()?.to_owned();
        let at = self.i64()?;
        let status = self.u16()?;
        let len = self.u32()? as usize;
        let body = self
            .bytes
            .get(self.pos..self.pos.saturating_add(len))
            .ok_or_else(|| self.error(format!("body of {len} bytes, {} left", self.remaining())))?;
        self.pos += len;
        Ok(KeyEntry {
            tenant,
            key,
            at,
            response: KeyedResponse {
                status,
                body: body.into(),
            },
        })
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
mod tests;
