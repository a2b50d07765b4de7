//! ClickHouse's `RowBinary` format, the only format this backend reads or writes: rows are the
//! columns' values back to back, with no names or types (the statement fixes them).
//!
//! Layout of the types used here (all little-endian):
//! - `Int64`, `UInt64`, `Float64`: 8 bytes;
//! - `String`: length as unsigned LEB128, then the bytes;
//! - `Array(T)`: element count as unsigned LEB128, then the elements.
//!
//! Binary both ways because floats then round-trip bit for bit (text formats would print and re-parse
//! them) and no escaping is needed for strings in insert bodies. Knows nothing of tables or queries.

use thiserror::Error;

/// A response that does not hold the rows the statement promised.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The body ended inside a value.
    #[error("RowBinary response truncated at byte {offset}")]
    Truncated {
        /// Where the missing value starts.
        offset: usize,
    },
    /// A string column holds bytes that are not UTF-8 (never written by Luminate).
    #[error("RowBinary response has a non-UTF-8 string at byte {offset}")]
    NotUtf8 {
        /// Where the string starts.
        offset: usize,
    },
    /// A length does not fit in memory.
    #[error("RowBinary response has an impossible length at byte {offset}")]
    BadLength {
        /// Where the length starts.
        offset: usize,
    },
}

/// Appends values to an insert body.
#[derive(Debug, Default)]
pub struct RowWriter {
    buf: Vec<u8>,
}

impl RowWriter {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    fn varint(&mut self, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    /// A `String`.
    pub fn string(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// An `Int64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `UInt64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `Float64`.
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// An `Array(String)`.
    pub fn strings<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a str>) {
        self.varint(items.len() as u64);
        for s in items {
            self.string(s);
        }
    }

    /// The body.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads values from a response body, in the order the statement selects them.
#[derive(Debug)]
pub struct RowReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> RowReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// True when every row has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(DecodeError::Truncated { offset: self.pos })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn fixed8(&mut self) -> Result<[u8; 8], DecodeError> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError::BadLength { offset: start })
    }

    fn length(&mut self) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n = self.varint()?;
        // Every element takes at least one byte, so a longer count cannot be honest; checking here keeps
        // a corrupt length from reserving memory.
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len() - self.pos)
            .ok_or(DecodeError::BadLength { offset: start })
    }

    /// A `String`.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.length()?;
        let start = self.pos;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { offset: start })
    }

    /// An `Int64`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.fixed8()?))
    }

    /// A `UInt64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.fixed8()?))
    }

    /// A `Float64`.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.fixed8()?))
    }

    /// An `Array(String)`.
    pub fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
        let n = self.length()?;
        (0..n).map(|_| self.string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_pinned() {
        let mut w = RowWriter::default();
        w.string("ab");
        w.i64(-2);
        w.f64(1.5);
        w.strings(["k", ""].into_iter());
        let body = w.finish();
        let mut expected = vec![2, b'a', b'b'];
        expected.extend_from_slice(&(-2i64).to_le_bytes());
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
        expected.extend_from_slice(&[2, 1, b'k', 0]);
        assert_eq!(body, expected);
    }

    #[test]
    fn values_round_trip() {
        let long = "é".repeat(200); // a length over 127 needs two LEB128 bytes
        let mut w = RowWriter::with_capacity(16);
        w.string(&long);
        w.u64(u64::MAX);
        w.i64(i64::MIN);
        w.f64(-0.25);
        w.strings(["a", "b\0c"].into_iter());
        let body = w.finish();
        assert_eq!(&body[..2], &[0x90, 0x03]); // 400 bytes
        let mut r = RowReader::new(&body);
        assert_eq!(r.string().unwrap(), long);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.i64().unwrap(), i64::MIN);
        assert_eq!(r.f64().unwrap().to_bits(), (-0.25f64).to_bits());
        assert_eq!(r.strings().unwrap(), vec!["a", "b\0c"]);
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_and_corrupt_bodies_are_errors() {
        assert_eq!(
            RowReader::new(&[3, b'a']).string(),
            Err(DecodeError::BadLength { offset: 0 })
        );
        assert_eq!(
            RowReader::new(&[1, 2, 3]).i64(),
            Err(DecodeError::Truncated { offset: 0 })
        );
        assert_eq!(
            RowReader::new(&[2, 0xff, 0xfe]).string(),
            Err(DecodeError::NotUtf8 { offset: 1 })
        );
        assert_eq!(
            RowReader::new(&[0xff; 11]).strings(),
            Err(DecodeError::BadLength { offset: 0 })
        );
    }
}
