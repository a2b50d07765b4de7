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
//! ```
//! `SERIES_DEFS` is the only kind of the series log (`<data_dir>/series/`, same framing as the WAL): the
//! flush appends there every series defined since the previous flush, before it writes parts, so that
//! deleting WAL segments never loses a definition. Its body is a `WRITE_BATCH` without points.
//! One write call becomes one `WRITE_BATCH` record, so a batch is replayed all or nothing. Series ids are
//! dense per tenant and assigned in log order: a new series is defined in the record of the first batch
//! that stores a point of it, before that record's points refer to it.

use luminate_model::{Dimensions, Tenant, TimestampMs};

/// Kind byte of a write batch.
const WRITE_BATCH: u8 = 1;
/// Kind byte of a delete.
const DELETE_BEFORE: u8 = 2;
/// Kind byte of series definitions (the series log).
const SERIES_DEFS: u8 = 3;
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
    /// Series definitions persisted by a flush (series log only).
    Series(SeriesDefs),
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
