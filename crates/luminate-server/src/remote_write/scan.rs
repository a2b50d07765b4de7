//! Remote write 1.0 read straight from the decompressed bytes, for speed: label names and values are
//! borrowed from the body and the per-series buffers are reused, so nothing is allocated per series or
//! sample. Decoding the same body into prost structs cost ten `String`s per sample as Prometheus sends
//! them (one sample per series entry, five labels), the largest share of the decode's time.
//!
//! It reads what prost read from the declared messages, and refuses what prost refused:
//!
//! - `WriteRequest { repeated TimeSeries timeseries = 1; }` (`metadata`, field 3, and any other field
//!   skipped);
//! - `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; repeated Exemplar exemplars =
//!   3; repeated Histogram histograms = 4; }`, exemplars and histograms only counted;
//! - `Label { string name = 1; string value = 2; }`, `Sample { double value = 1; int64 timestamp = 2; }`;
//!   a repeated singular field keeps its last value, a missing one is empty or zero;
//! - malformed: a truncated varint, key or length, a varint of more than 64 bits, field number 0, wire
//!   types 6 and 7, a declared field with another wire type, a label that is not UTF-8, an end-group
//!   without its start; unknown fields of every wire type (groups too, nested up to 100 deep) are
//!   skipped.

use super::v1::Sample;

/// How deep skipped groups may nest (prost's recursion limit).
const DEPTH: u32 = 100;
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// Why the bytes are not the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// A cursor over one message's bytes.
struct Reader<'b> {
    buf: &'b [u8],
}

impl<'b> Reader<'b> {
    fn new(buf: &'b [u8]) -> Self {
        Self { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        // Keys, label lengths and most lengths are one byte.
        if let Some((&byte, rest)) = self.buf.split_first()
            && byte < 0x80
        {
            self.buf = rest;
            return Ok(u64::from(byte));
        }
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                // The tenth byte holds the 64th bit only.
                if i == 9 && byte > 1 {
                    break;
                }
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(malformed(if self.buf.len() < 10 {
            "truncated varint"
        } else {
            "varint longer than 64 bits"
        }))
    }

    /// The next field's number and wire type.
    fn key(&mut self) -> Result<(u32, u8), Malformed> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| malformed(format!("invalid key {key}")))?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        if field == 0 {
            return Err(malformed("invalid field number 0"));
        }
        if wire > FIXED32 {
            return Err(malformed(format!("invalid wire type {wire}")));
        }
        Ok((field, wire))
    }

    fn take(&mut self, n: u64) -> Result<&'b [u8], Malformed> {
        if n > self.buf.len() as u64 {
            return Err(malformed(format!(
                "field of {n} bytes where {} remain",
                self.buf.len()
            )));
        }
        let (data, rest) = self.buf.split_at(n as usize);
        self.buf = rest;
        Ok(data)
    }

    /// A length-delimited field's bytes.
    fn bytes(&mut self) -> Result<&'b [u8], Malformed> {
        let n = self.varint()?;
        self.take(n)
    }

    fn fixed64(&mut self) -> Result<u64, Malformed> {
        let data = self.take(8)?;
        let mut le = [0u8; 8];
        le.copy_from_slice(data);
        Ok(u64::from_le_bytes(le))
    }

    /// Skips the value of an undeclared field.
    fn skip(&mut self, field: u32, wire: u8, depth: u32) -> Result<(), Malformed> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            START_GROUP => {
                if depth == 0 {
                    return Err(malformed("groups nested too deep"));
                }
                loop {
                    let (inner, wire) = self.key()?;
                    if wire == END_GROUP {
                        return if inner == field {
                            Ok(())
                        } else {
                            Err(malformed("mismatched end group"))
                        };
                    }
                    self.skip(inner, wire, depth - 1)?;
                }
            }
            _ => Err(malformed("end group without a start")),
        }
    }
}

/// Checks that declared field `field` of `message` came with wire type `want`.
fn expect(message: &str, field: u32, wire: u8, want: u8) -> Result<(), Malformed> {
    if wire == want {
        Ok(())
    } else {
        Err(malformed(format!(
            "{message} field {field} has wire type {wire}, expected {want}"
        )))
    }
}

fn utf8<'b>(bytes: &'b [u8], what: &str) -> Result<&'b str, Malformed> {
    std::str::from_utf8(bytes).map_err(|_| malformed(format!("{what} is not valid UTF-8")))
}

fn label(bytes: &[u8]) -> Result<(&str, &str), Malformed> {
    let mut r = Reader::new(bytes);
    let (mut name, mut value) = ("", "");
    while !r.is_empty() {
        match r.key()? {
            (1, wire) => {
                expect("Label", 1, wire, LEN)?;
                name = utf8(r.bytes()?, "a label name")?;
            }
            (2, wire) => {
                expect("Label", 2, wire, LEN)?;
                value = utf8(r.bytes()?, "a label value")?;
            }
            (field, wire) => r.skip(field, wire, DEPTH)?,
        }
    }
    Ok((name, value))
}

fn sample(bytes: &[u8]) -> Result<Sample, Malformed> {
    let mut r = Reader::new(bytes);
    let mut sample = Sample::default();
    while !r.is_empty() {
        match r.key()? {
            (1, wire) => {
                expect("Sample", 1, wire, FIXED64)?;
                sample.value = f64::from_bits(r.fixed64()?);
            }
            (2, wire) => {
                expect("Sample", 2, wire, VARINT)?;
                sample.timestamp = r.varint()? as i64;
            }
            (field, wire) => r.skip(field, wire, DEPTH)?,
        }
    }
    Ok(sample)
}

/// One `TimeSeries` as read.
#[derive(Debug, Default)]
pub struct Series<'b> {
    /// `(name, value)` in the order sent.
    pub labels: Vec<(&'b str, &'b str)>,
    /// The float samples.
    pub samples: Vec<Sample>,
    /// Exemplars (not read).
    pub exemplars: usize,
    /// Native histograms (not read).
    pub histograms: usize,
}

/// Calls `each` with every `TimeSeries` of a `WriteRequest`, in order, reusing one [`Series`]. On
/// an error, series before it were already passed: the caller discards the whole body.
pub fn write_request<'b>(
    body: &'b [u8],
    mut each: impl FnMut(&Series<'b>),
) -> Result<(), Malformed> {
    let mut request = Reader::new(body);
    let mut series = Series::default();
    while !request.is_empty() {
        let (field, wire) = request.key()?;
        if field != 1 {
            request.skip(field, wire, DEPTH)?;
            continue;
        }
        expect("WriteRequest", 1, wire, LEN)?;
        let mut r = Reader::new(request.bytes()?);
        series.labels.clear();
        series.samples.clear();
        series.exemplars = 0;
        series.histograms = 0;
        while !r.is_empty() {
            match r.key()? {
                (1, wire) => {
                    expect("TimeSeries", 1, wire, LEN)?;
                    series.labels.push(label(r.bytes()?)?);
                }
                (2, wire) => {
                    expect("TimeSeries", 2, wire, LEN)?;
                    series.samples.push(sample(r.bytes()?)?);
                }
                (3, wire) => {
                    expect("TimeSeries", 3, wire, LEN)?;
                    r.bytes()?;
                    series.exemplars += 1;
                }
                (4, wire) => {
                    expect("TimeSeries", 4, wire, LEN)?;
                    r.bytes()?;
                    series.histograms += 1;
                }
                (field, wire) => r.skip(field, wire, DEPTH)?,
            }
        }
        each(&series);
    }
    Ok(())
}
