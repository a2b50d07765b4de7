//! The write body's decoder: one pass over the bytes, specialised for `{"metrics": [point, ...]}`.
//!
//! It accepts exactly what the `serde_json` decoder it replaced accepted ([`super::reference`], against
//! which it is property-tested and fuzzed) and fails where that one failed, with the same words at the
//! same line and column: clients and tests read those messages. So the order in which it looks at bytes
//! follows `serde_json`'s (`peek` errors name the byte looked at, the others the byte just consumed; a
//! refused shape is placed after the whitespace, or the closing bracket, that `serde_json` consumes
//! before placing it). Numbers are read as JSON's grammar says and converted correctly rounded (integers
//! that fit i64 stay integers). What it saves is the per-value dispatch through visitors: a point's
//! fields are matched as bytes and decoded in place.

use std::borrow::Cow;

use serde::de::Unexpected;

use super::{WireDimensions, WireError, WirePoint, WireScalar};

const BODY_EXPECTED: &str = "an object {\"metrics\": [...]}";
const METRICS_EXPECTED: &str = "an array of point objects";
const POINT_EXPECTED: &str = "a point object {\"name\", \"timestamp\", \"value\", \"dimensions\"}";

const EOF_LIST: &str = "EOF while parsing a list";
const EOF_OBJECT: &str = "EOF while parsing an object";
const EOF_STRING: &str = "EOF while parsing a string";
const EOF_VALUE: &str = "EOF while parsing a value";
const EXPECTED_COLON: &str = "expected `:`";
const EXPECTED_LIST_END: &str = "expected `,` or `]`";
const EXPECTED_OBJECT_END: &str = "expected `,` or `}`";
const EXPECTED_IDENT: &str = "expected ident";
const EXPECTED_VALUE: &str = "expected value";
const INVALID_ESCAPE: &str = "invalid escape";
const INVALID_NUMBER: &str = "invalid number";
const OUT_OF_RANGE: &str = "number out of range";
const CONTROL_CHARACTER: &str = "control character (\\u0000-\\u001F) found while parsing a string";
const KEY_NOT_STRING: &str = "key must be a string";
const LONE_SURROGATE: &str = "lone leading surrogate in hex escape";
const TRAILING_COMMA: &str = "trailing comma";
const TRAILING_CHARACTERS: &str = "trailing characters";
const HEX_ESCAPE_END: &str = "unexpected end of hex escape";

/// Boxed, so that the results passed around the hot path stay small.
type Result<T> = std::result::Result<T, Box<WireError>>;

/// See [`super::decode_write_body`].
pub(super) fn decode_write_body<'a>(
    text: &'a str,
    mut each: impl FnMut(&WirePoint<'a>),
) -> std::result::Result<usize, WireError> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        frames: Vec::new(),
    };
    let count = scanner.body(&mut each).map_err(|e| *e)?;
    match scanner.whitespace() {
        Some(_) => Err(*scanner.peek_error(TRAILING_CHARACTERS)),
        None => Ok(count),
    }
}

/// A number as JSON's grammar read it.
enum Number {
    /// A plain non-negative integer that fits u64.
    Unsigned(u64),
    /// A negative plain integer whose magnitude fits u64.
    Negative(u64),
    /// Anything else: a fraction, an exponent, or too many digits.
    Float(f64),
}

impl Number {
    /// As `serde_json` hands it to a visitor: integers that fit i64 stay integers (`-0` does not).
    fn scalar<'a>(self) -> WireScalar<'a> {
        match self {
            Self::Unsigned(u) => {
                i64::try_from(u).map_or(WireScalar::Float(u as f64), WireScalar::Int)
            }
            Self::Negative(m) => {
                let negated = (m as i64).wrapping_neg();
                if negated >= 0 {
                    WireScalar::Float(-(m as f64))
                } else {
                    WireScalar::Int(negated)
                }
            }
            Self::Float(f) => WireScalar::Float(f),
        }
    }

    /// Named as in a refusal of the value's type.
    fn unexpected(self) -> String {
        match self {
            Self::Unsigned(u) => Unexpected::Unsigned(u).to_string(),
            Self::Negative(m) => {
                let negated = (m as i64).wrapping_neg();
                if negated >= 0 {
                    float_unexpected(-(m as f64))
                } else {
                    Unexpected::Signed(negated).to_string()
                }
            }
            Self::Float(f) => float_unexpected(f),
        }
    }
}

/// A float named as `serde_json` names it (not as `serde` does).
fn float_unexpected(f: f64) -> String {
    format!("floating point `{}`", zmij::Buffer::new().format(f))
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// The open containers of a value being skipped (`[` or `{`), as `serde_json` keeps them.
    frames: Vec<u8>,
}

/// True for the bytes that end a run of plain string characters: `"`, `\` and control characters.
const fn string_stops() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
}
static STRING_STOPS: [bool; 256] = string_stops();

impl<'a> Scanner<'a> {
    // ---- positions and errors ----

    /// An error about the byte just consumed.
    #[cold]
    fn error(&self, reason: &str) -> Box<WireError> {
        Box::new(WireError::at(self.bytes, self.pos, reason))
    }

    /// An error about the byte looked at, not consumed.
    #[cold]
    fn peek_error(&self, reason: &str) -> Box<WireError> {
        Box::new(WireError::at(
            self.bytes,
            (self.pos + 1).min(self.bytes.len()),
            reason,
        ))
    }

    #[cold]
    fn invalid_type(&self, unexpected: &str, expected: &str) -> Box<WireError> {
        self.error(&format!("invalid type: {unexpected}, expected {expected}"))
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn peek_or_null(&self) -> u8 {
        self.peek().unwrap_or(0)
    }

    /// Skips whitespace; the next byte, not consumed.
    #[inline]
    fn whitespace(&mut self) -> Option<u8> {
        loop {
            match self.peek() {
                Some(b' ' | b'\n' | b'\t' | b'\r') => self.pos += 1,
                other => return other,
            }
        }
    }

    // ---- the body's structure ----

    fn body(&mut self, each: &mut impl FnMut(&WirePoint<'a>)) -> Result<usize> {
        match self.whitespace() {
            None => Err(self.peek_error(EOF_VALUE)),
            Some(b'[') => {
                self.pos += 1;
                Err(self.refuse_in_seq(&Unexpected::Seq.to_string(), BODY_EXPECTED))
            }
            Some(b'{') => {
                self.pos += 1;
                match self.body_fields(each) {
                    Ok(Placed::Done(count)) => {
                        self.end_map()?;
                        Ok(count)
                    }
                    refused => Err(self.placed_after_map(refused)),
                }
            }
            Some(_) => Err(self.peek_invalid_type(BODY_EXPECTED)),
        }
    }

    /// The fields of the body object: exactly one, `metrics`.
    fn body_fields(&mut self, each: &mut impl FnMut(&WirePoint<'a>)) -> Result<Placed<usize>> {
        let mut count = None;
        let mut first = true;
        while self.next_key(&mut first)? {
            self.pos += 1;
            let key = self.string()?;
            if key != "metrics" {
                return Ok(Placed::Refused(format!(
                    "unknown field `{key}`, expected `metrics`"
                )));
            }
            if count.is_some() {
                return Ok(Placed::Refused("duplicate field `metrics`".to_owned()));
            }
            self.colon()?;
            count = Some(self.metrics(each)?);
        }
        Ok(match count {
            Some(count) => Placed::Done(count),
            None => Placed::Refused("missing field `metrics`".to_owned()),
        })
    }

    /// The `metrics` array, each point handed to `each`.
    fn metrics(&mut self, each: &mut impl FnMut(&WirePoint<'a>)) -> Result<usize> {
        match self.whitespace() {
            None => return Err(self.peek_error(EOF_VALUE)),
            Some(b'[') => self.pos += 1,
            Some(_) => return Err(self.peek_invalid_type(METRICS_EXPECTED)),
        }
        let mut pairs = Vec::new();
        let mut count = 0;
        let mut first = true;
        while self.next_element(&mut first)? {
            let point = self.point(std::mem::take(&mut pairs))?;
            each(&point);
            count += 1;
            // Take the dimension buffer back for the next point (its strings are dropped with it).
            if let WireDimensions::Pairs(mut taken) = point.dimensions {
                taken.clear();
                pairs = taken;
            }
        }
        self.end_seq()?;
        Ok(count)
    }

    /// One point object; its dimensions go into `pairs`.
    fn point(&mut self, pairs: Vec<(Cow<'a, str>, WireScalar<'a>)>) -> Result<WirePoint<'a>> {
        match self.whitespace() {
            None => Err(self.peek_error(EOF_VALUE)),
            Some(b'[') => {
                self.pos += 1;
                Err(self.refuse_in_seq(&Unexpected::Seq.to_string(), POINT_EXPECTED))
            }
            Some(b'{') => {
                self.pos += 1;
                match self.point_fields(pairs) {
                    Ok(Placed::Done(point)) => {
                        self.end_map()?;
                        Ok(point)
                    }
                    refused => Err(self.placed_after_map(refused)),
                }
            }
            Some(_) => Err(self.peek_invalid_type(POINT_EXPECTED)),
        }
    }

    fn point_fields(
        &mut self,
        pairs: Vec<(Cow<'a, str>, WireScalar<'a>)>,
    ) -> Result<Placed<WirePoint<'a>>> {
        let mut scratch = Some(pairs);
        let (mut name, mut timestamp, mut value, mut dimensions) = (None, None, None, None);
        let mut first = true;
        while self.next_key(&mut first)? {
            self.pos += 1;
            let key = self.key()?;
            let slot = match key.as_ref() {
                "name" => &mut name,
                "timestamp" => &mut timestamp,
                "value" => &mut value,
                "dimensions" => {
                    let Some(buffer) = scratch.take() else {
                        return Ok(Placed::Refused("duplicate field `dimensions`".to_owned()));
                    };
                    self.colon()?;
                    dimensions = Some(self.dimensions(buffer)?);
                    continue;
                }
                _ => {
                    self.colon()?;
                    self.skip_value()?;
                    continue;
                }
            };
            self.colon()?;
            let scalar = self.scalar()?;
            if slot.is_some() {
                return Ok(Placed::Refused(format!("duplicate field `{key}`")));
            }
            *slot = Some(scalar);
        }
        Ok(Placed::Done(WirePoint {
            name: name.unwrap_or(WireScalar::Missing),
            timestamp: timestamp.unwrap_or(WireScalar::Missing),
            value: value.unwrap_or(WireScalar::Missing),
            dimensions: dimensions.unwrap_or_default(),
        }))
    }

    /// A point's key. The four field names are matched as bytes when they are plain.
    #[inline]
    fn key(&mut self) -> Result<Cow<'a, str>> {
        let rest = &self.bytes[self.pos..];
        for field in ["name\"", "value\"", "timestamp\"", "dimensions\""] {
            if rest.starts_with(field.as_bytes()) {
                let start = self.pos;
                self.pos += field.len();
                return Ok(Cow::Borrowed(&self.text[start..self.pos - 1]));
            }
        }
        self.string()
    }

    /// The `dimensions` value.
    fn dimensions(
        &mut self,
        mut pairs: Vec<(Cow<'a, str>, WireScalar<'a>)>,
    ) -> Result<WireDimensions<'a>> {
        Ok(match self.whitespace() {
            None => return Err(self.peek_error(EOF_VALUE)),
            Some(b'{') => {
                self.pos += 1;
                let mut first = true;
                while self.next_key(&mut first)? {
                    self.pos += 1;
                    let key = self.string()?;
                    self.colon()?;
                    let value = self.scalar()?;
                    pairs.push((key, value));
                }
                self.end_map()?;
                WireDimensions::Pairs(pairs)
            }
            Some(b'n') => {
                self.pos += 1;
                self.ident(b"ull")?;
                WireDimensions::None
            }
            Some(_) => WireDimensions::NotAnObject(self.scalar()?.kind()),
        })
    }

    /// Any value, remembered as a scalar (containers by kind).
    fn scalar(&mut self) -> Result<WireScalar<'a>> {
        Ok(match self.whitespace() {
            None => return Err(self.peek_error(EOF_VALUE)),
            Some(b'"') => {
                self.pos += 1;
                WireScalar::Str(self.string()?)
            }
            Some(b'-' | b'0'..=b'9') => self.number()?.scalar(),
            Some(b'n') => {
                self.pos += 1;
                self.ident(b"ull")?;
                WireScalar::Other("null")
            }
            Some(b't') => {
                self.pos += 1;
                self.ident(b"rue")?;
                WireScalar::Other("boolean")
            }
            Some(b'f') => {
                self.pos += 1;
                self.ident(b"alse")?;
                WireScalar::Other("boolean")
            }
            Some(b'[') => {
                self.pos += 1;
                let mut first = true;
                while self.next_element(&mut first)? {
                    self.skip_value()?;
                }
                self.end_seq()?;
                WireScalar::Other("array")
            }
            Some(b'{') => {
                self.pos += 1;
                let mut first = true;
                while self.next_key(&mut first)? {
                    self.pos += 1;
                    self.string()?;
                    self.colon()?;
                    self.skip_value()?;
                }
                self.end_map()?;
                WireScalar::Other("object")
            }
            Some(_) => return Err(self.peek_error(EXPECTED_VALUE)),
        })
    }

    // ---- containers, as serde_json's SeqAccess and MapAccess walk them ----

    /// Whether another element follows (the separator consumed).
    #[inline]
    fn next_element(&mut self, first: &mut bool) -> Result<bool> {
        match self.whitespace() {
            None => Err(self.peek_error(EOF_LIST)),
            Some(b']') => Ok(false),
            Some(_) if *first => {
                *first = false;
                Ok(true)
            }
            Some(b',') => {
                self.pos += 1;
                match self.whitespace() {
                    Some(b']') => Err(self.peek_error(TRAILING_COMMA)),
                    Some(_) => Ok(true),
                    None => Err(self.peek_error(EOF_VALUE)),
                }
            }
            Some(_) => Err(self.peek_error(EXPECTED_LIST_END)),
        }
    }

    /// Whether another key follows: true with the key's opening quote next, not consumed.
    #[inline]
    fn next_key(&mut self, first: &mut bool) -> Result<bool> {
        match self.whitespace() {
            None => Err(self.peek_error(EOF_OBJECT)),
            Some(b'}') => Ok(false),
            Some(b) if *first => {
                *first = false;
                if b == b'"' {
                    Ok(true)
                } else {
                    Err(self.peek_error(KEY_NOT_STRING))
                }
            }
            Some(b',') => {
                self.pos += 1;
                match self.whitespace() {
                    Some(b'"') => Ok(true),
                    Some(b'}') => Err(self.peek_error(TRAILING_COMMA)),
                    Some(_) => Err(self.peek_error(KEY_NOT_STRING)),
                    None => Err(self.peek_error(EOF_VALUE)),
                }
            }
            Some(_) => Err(self.peek_error(EXPECTED_OBJECT_END)),
        }
    }

    #[inline]
    fn colon(&mut self) -> Result<()> {
        match self.whitespace() {
            Some(b':') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.peek_error(EXPECTED_COLON)),
            None => Err(self.peek_error(EOF_OBJECT)),
        }
    }

    fn end_seq(&mut self) -> Result<()> {
        match self.whitespace() {
            Some(b']') => {
                self.pos += 1;
                Ok(())
            }
            Some(b',') => {
                self.pos += 1;
                match self.whitespace() {
                    Some(b']') => Err(self.peek_error(TRAILING_COMMA)),
                    _ => Err(self.peek_error(TRAILING_CHARACTERS)),
                }
            }
            Some(_) => Err(self.peek_error(TRAILING_CHARACTERS)),
            None => Err(self.peek_error(EOF_LIST)),
        }
    }

    #[inline]
    fn end_map(&mut self) -> Result<()> {
        match self.whitespace() {
            Some(b'}') => {
                self.pos += 1;
                Ok(())
            }
            Some(b',') => Err(self.peek_error(TRAILING_COMMA)),
            Some(_) => Err(self.peek_error(TRAILING_CHARACTERS)),
            None => Err(self.peek_error(EOF_OBJECT)),
        }
    }

    /// A shape refused inside an object: `serde_json` first reads on to the object's end (consuming
    /// the `}` when it is next), and places the refusal there.
    #[cold]
    fn placed_after_map<T>(&mut self, outcome: Result<Placed<T>>) -> Box<WireError> {
        match outcome {
            Err(e) => e,
            Ok(Placed::Done(_)) => self.error("internal: a decoded object refused"),
            Ok(Placed::Refused(reason)) => {
                if self.whitespace() == Some(b'}') {
                    self.pos += 1;
                }
                self.error(&reason)
            }
        }
    }

    /// An array where an object belongs (its `[` consumed): placed after what `serde_json` reads
    /// before giving up.
    #[cold]
    fn refuse_in_seq(&mut self, unexpected: &str, expected: &str) -> Box<WireError> {
        match self.whitespace() {
            Some(b']') => self.pos += 1,
            Some(b',') => {
                self.pos += 1;
                self.whitespace();
            }
            _ => {}
        }
        self.invalid_type(unexpected, expected)
    }

    /// A value of the wrong type where `expected` belongs: read (and its own errors reported) as
    /// `serde_json` reads it to name it.
    #[cold]
    fn peek_invalid_type(&mut self, expected: &str) -> Box<WireError> {
        let unexpected = match self.peek_or_null() {
            b'n' => {
                self.pos += 1;
                if let Err(e) = self.ident(b"ull") {
                    return e;
                }
                // `serde_json` says `null` where `serde` says `unit value`.
                "null".to_owned()
            }
            b't' => {
                self.pos += 1;
                if let Err(e) = self.ident(b"rue") {
                    return e;
                }
                Unexpected::Bool(true).to_string()
            }
            b'f' => {
                self.pos += 1;
                if let Err(e) = self.ident(b"alse") {
                    return e;
                }
                Unexpected::Bool(false).to_string()
            }
            b'-' | b'0'..=b'9' => match self.number() {
                Ok(n) => n.unexpected(),
                Err(e) => return e,
            },
            b'"' => {
                self.pos += 1;
                match self.string() {
                    Ok(s) => Unexpected::Str(&s).to_string(),
                    Err(e) => return e,
                }
            }
            b'[' => Unexpected::Seq.to_string(),
            b'{' => Unexpected::Map.to_string(),
            _ => return self.peek_error(EXPECTED_VALUE),
        };
        self.invalid_type(&unexpected, expected)
    }

    // ---- scalars ----

    /// The rest of a literal (`null`, `true`, `false`) after its first byte.
    fn ident(&mut self, rest: &[u8]) -> Result<()> {
        for &expected in rest {
            match self.peek() {
                None => return Err(self.error(EOF_VALUE)),
                Some(b) => {
                    self.pos += 1;
                    if b != expected {
                        return Err(self.error(EXPECTED_IDENT));
                    }
                }
            }
        }
        Ok(())
    }

    /// A string after its opening quote: borrowed from the body, or unescaped into its own allocation.
    #[inline]
    fn string(&mut self) -> Result<Cow<'a, str>> {
        let start = self.pos;
        self.skip_plain();
        match self.peek() {
            Some(b'"') => {
                let s = &self.text[start..self.pos];
                self.pos += 1;
                Ok(Cow::Borrowed(s))
            }
            _ => self.string_slow(start),
        }
    }

    #[inline]
    fn skip_plain(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if STRING_STOPS[b as usize] {
                return;
            }
            self.pos += 1;
        }
    }

    /// A string with an escape, a control character, or no end.
    #[cold]
    fn string_slow(&mut self, start: usize) -> Result<Cow<'a, str>> {
        let mut out: Vec<u8> = Vec::new();
        let mut run = start;
        loop {
            self.skip_plain();
            match self.peek() {
                None => return Err(self.error(EOF_STRING)),
                Some(b'"') => {
                    out.extend_from_slice(&self.bytes[run..self.pos]);
                    self.pos += 1;
                    // Only whole UTF-8 sequences of the body and whole code points were copied.
                    return String::from_utf8(out)
                        .map(Cow::Owned)
                        .map_err(|_| self.error("invalid unicode code point"));
                }
                Some(b'\\') => {
                    out.extend_from_slice(&self.bytes[run..self.pos]);
                    self.pos += 1;
                    self.escape(&mut out)?;
                    run = self.pos;
                }
                Some(_) => {
                    self.pos += 1;
                    return Err(self.error(CONTROL_CHARACTER));
                }
            }
        }
    }

    /// One escape after its backslash, appended to `out`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let Some(b) = self.peek() else {
            return Err(self.error(EOF_STRING));
        };
        self.pos += 1;
        let byte = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => return self.unicode_escape(out),
            _ => return Err(self.error(INVALID_ESCAPE)),
        };
        out.push(byte);
        Ok(())
    }

    /// `\uXXXX` after its `u`, a surrogate pair as one code point; a lone surrogate is an error.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let n = self.hex4()?;
        if (0xDC00..=0xDFFF).contains(&n) {
            return Err(self.error(LONE_SURROGATE));
        }
        let code = if (0xD800..=0xDBFF).contains(&n) {
            for expected in [b'\\', b'u'] {
                match self.peek() {
                    None => return Err(self.error(EOF_STRING)),
                    Some(b) => {
                        self.pos += 1;
                        if b != expected {
                            return Err(self.error(HEX_ESCAPE_END));
                        }
                    }
                }
            }
            let low = self.hex4()?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return Err(self.error(LONE_SURROGATE));
            }
            ((u32::from(n - 0xD800) << 10) | u32::from(low - 0xDC00)) + 0x1_0000
        } else {
            u32::from(n)
        };
        let c = char::from_u32(code).ok_or_else(|| self.error(LONE_SURROGATE))?;
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            self.pos = self.bytes.len();
            return Err(self.error(EOF_STRING));
        };
        self.pos += 4;
        let mut n: u16 = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error(INVALID_ESCAPE)),
            };
            n = (n << 4) | u16::from(v);
        }
        Ok(n)
    }

    /// A number, at its first byte (`-` or a digit).
    fn number(&mut self) -> Result<Number> {
        let start = self.pos;
        let negative = self.bytes[start] == b'-';
        if negative {
            self.pos += 1;
        }
        // The integer part, kept while it fits u64.
        let Some(first) = self.peek() else {
            return Err(self.error(EOF_VALUE));
        };
        self.pos += 1;
        let mut magnitude: Option<u64> = match first {
            b'0' => {
                if self.peek_or_null().is_ascii_digit() {
                    return Err(self.peek_error(INVALID_NUMBER));
                }
                Some(0)
            }
            b'1'..=b'9' => {
                let mut m = u64::from(first - b'0');
                let mut fits = true;
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                    if fits {
                        match m
                            .checked_mul(10)
                            .and_then(|m| m.checked_add(u64::from(d - b'0')))
                        {
                            Some(next) => m = next,
                            None => fits = false,
                        }
                    }
                }
                fits.then_some(m)
            }
            _ => return Err(self.error(INVALID_NUMBER)),
        };
        let mut fraction_digits = 0usize;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                self.pos += 1;
                fraction_digits += 1;
                magnitude = magnitude
                    .and_then(|m| m.checked_mul(10))
                    .and_then(|m| m.checked_add(u64::from(d - b'0')));
            }
            if fraction_digits == 0 {
                return Err(match self.peek() {
                    Some(_) => self.peek_error(INVALID_NUMBER),
                    None => self.peek_error(EOF_VALUE),
                });
            }
        }
        let mut exponent: i64 = 0;
        let has_exponent = matches!(self.peek(), Some(b'e' | b'E'));
        if has_exponent {
            self.pos += 1;
            let positive_exponent = match self.peek() {
                Some(b'+') => {
                    self.pos += 1;
                    true
                }
                Some(b'-') => {
                    self.pos += 1;
                    false
                }
                _ => true,
            };
            match self.peek() {
                None => return Err(self.error(EOF_VALUE)),
                Some(d) => {
                    self.pos += 1;
                    if !d.is_ascii_digit() {
                        return Err(self.error(INVALID_NUMBER));
                    }
                    exponent = i64::from(d - b'0');
                }
            }
            while let Some(d @ b'0'..=b'9') = self.peek() {
                self.pos += 1;
                exponent = exponent * 10 + i64::from(d - b'0');
                if exponent > i64::from(i32::MAX) {
                    // Past any exponent a finite, non-zero value can have.
                    let digits = &self.bytes[start..self.pos];
                    let zero = digits
                        .iter()
                        .take_while(|&&b| b != b'e' && b != b'E')
                        .all(|&b| matches!(b, b'0' | b'.' | b'-'));
                    if !zero && positive_exponent {
                        return Err(self.error(OUT_OF_RANGE));
                    }
                    while let Some(b'0'..=b'9') = self.peek() {
                        self.pos += 1;
                    }
                    return Ok(Number::Float(if negative { -0.0 } else { 0.0 }));
                }
            }
            if !positive_exponent {
                exponent = -exponent;
            }
        }
        if fraction_digits == 0
            && !has_exponent
            && let Some(m) = magnitude
        {
            return Ok(if negative {
                Number::Negative(m)
            } else {
                Number::Unsigned(m)
            });
        }
        let value = match magnitude {
            // Both exact in an f64, so one correctly rounded operation (Clinger's fast path).
            Some(m)
                if m <= 1 << 53 && (-22..=22).contains(&(exponent - fraction_digits as i64)) =>
            {
                let e = exponent - fraction_digits as i64;
                let m = m as f64;
                let v = if e >= 0 {
                    m * POWERS_OF_TEN[e as usize]
                } else {
                    m / POWERS_OF_TEN[(-e) as usize]
                };
                if negative { -v } else { v }
            }
            _ => self.text[start..self.pos]
                .parse::<f64>()
                .map_err(|_| self.error(INVALID_NUMBER))?,
        };
        if value.is_infinite() {
            return Err(self.error(OUT_OF_RANGE));
        }
        Ok(Number::Float(value))
    }

    // ---- values skipped (unknown fields, and what containers hold) ----

    /// Skips one value as `serde_json`'s `IgnoredAny` does: any depth, without recursion.
    fn skip_value(&mut self) -> Result<()> {
        self.frames.clear();
        let mut enclosing: Option<u8> = None;
        loop {
            let Some(peek) = self.whitespace() else {
                return Err(self.peek_error(EOF_VALUE));
            };
            let frame = match peek {
                b'n' => {
                    self.pos += 1;
                    self.ident(b"ull")?;
                    None
                }
                b't' => {
                    self.pos += 1;
                    self.ident(b"rue")?;
                    None
                }
                b'f' => {
                    self.pos += 1;
                    self.ident(b"alse")?;
                    None
                }
                b'-' | b'0'..=b'9' => {
                    self.skip_number()?;
                    None
                }
                b'"' => {
                    self.pos += 1;
                    self.skip_string()?;
                    None
                }
                b'[' | b'{' => {
                    self.frames.extend(enclosing.take());
                    self.pos += 1;
                    Some(peek)
                }
                _ => return Err(self.peek_error(EXPECTED_VALUE)),
            };
            let (mut accept_comma, mut frame) = match frame {
                Some(frame) => (false, frame),
                None => match enclosing.take() {
                    Some(frame) => (true, frame),
                    None => match self.frames.pop() {
                        Some(frame) => (true, frame),
                        None => return Ok(()),
                    },
                },
            };
            loop {
                match self.whitespace() {
                    Some(b',') if accept_comma => {
                        self.pos += 1;
                        break;
                    }
                    Some(b']') if frame == b'[' => {}
                    Some(b'}') if frame == b'{' => {}
                    Some(_) => {
                        if accept_comma {
                            return Err(self.peek_error(if frame == b'[' {
                                EXPECTED_LIST_END
                            } else {
                                EXPECTED_OBJECT_END
                            }));
                        }
                        break;
                    }
                    None => {
                        return Err(self.peek_error(if frame == b'[' {
                            EOF_LIST
                        } else {
                            EOF_OBJECT
                        }));
                    }
                }
                self.pos += 1;
                frame = match self.frames.pop() {
                    Some(frame) => frame,
                    None => return Ok(()),
                };
                accept_comma = true;
            }
            if frame == b'{' {
                match self.whitespace() {
                    Some(b'"') => self.pos += 1,
                    Some(_) => return Err(self.peek_error(KEY_NOT_STRING)),
                    None => return Err(self.peek_error(EOF_OBJECT)),
                }
                self.skip_string()?;
                match self.whitespace() {
                    Some(b':') => self.pos += 1,
                    Some(_) => return Err(self.peek_error(EXPECTED_COLON)),
                    None => return Err(self.peek_error(EOF_OBJECT)),
                }
            }
            enclosing = Some(frame);
        }
    }

    /// A skipped number: only its grammar is checked.
    fn skip_number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let first = self.peek_or_null();
        if self.pos < self.bytes.len() {
            self.pos += 1;
        }
        match first {
            b'0' => {
                if self.peek_or_null().is_ascii_digit() {
                    return Err(self.peek_error(INVALID_NUMBER));
                }
            }
            b'1'..=b'9' => {
                while self.peek_or_null().is_ascii_digit() {
                    self.pos += 1;
                }
            }
            _ => return Err(self.error(INVALID_NUMBER)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let digits_start = self.pos;
            while self.peek_or_null().is_ascii_digit() {
                self.pos += 1;
            }
            if self.pos == digits_start {
                return Err(self.peek_error(INVALID_NUMBER));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            let d = self.peek_or_null();
            if self.pos < self.bytes.len() {
                self.pos += 1;
            }
            if !d.is_ascii_digit() {
                return Err(self.error(INVALID_NUMBER));
            }
            while self.peek_or_null().is_ascii_digit() {
                self.pos += 1;
            }
        }
        Ok(())
    }

    /// A skipped string after its opening quote: escapes are checked for shape only (a lone surrogate
    /// passes, as in `serde_json`'s `IgnoredAny`).
    fn skip_string(&mut self) -> Result<()> {
        loop {
            self.skip_plain();
            match self.peek() {
                None => return Err(self.error(EOF_STRING)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(b) = self.peek() else {
                        return Err(self.error(EOF_STRING));
                    };
                    self.pos += 1;
                    match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            self.hex4()?;
                        }
                        _ => return Err(self.error(INVALID_ESCAPE)),
                    }
                }
                Some(_) => return Err(self.error(CONTROL_CHARACTER)),
            }
        }
    }
}

/// What an object's fields came to: a value, or a refusal of its shape that `serde_json` places only
/// after reading on to the object's end.
enum Placed<T> {
    Done(T),
    Refused(String),
}

/// 10^0 ..= 10^22, every one exact in an f64.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
