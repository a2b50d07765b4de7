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

mod number;
mod skip;

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

/// See [`super::decode_write_lines`]. Each line is scanned on its own, so that a point can never
/// reach into the next line: an object left open fails at its line's end.
pub(super) fn decode_write_lines<'a>(
    text: &'a str,
    mut each: impl FnMut(&WirePoint<'a>),
) -> std::result::Result<usize, WireError> {
    let mut pairs = Vec::new();
    let mut frames = Vec::new();
    let mut count = 0;
    let mut start = 0;
    for (number, line) in (1..).zip(text.split('\n')) {
        let mut scanner = Scanner {
            text: line,
            bytes: line.as_bytes(),
            pos: 0,
            frames: std::mem::take(&mut frames),
        };
        if scanner.whitespace().is_some() {
            let point = scanner
                .point(std::mem::take(&mut pairs))
                .and_then(|point| match scanner.whitespace() {
                    Some(_) => Err(scanner.peek_error(TRAILING_CHARACTERS)),
                    None => Ok(point),
                })
                .map_err(|e| e.on_line(number, start))?;
            each(&point);
            count += 1;
            pairs = reclaim(point);
        }
        frames = scanner.frames;
        start += line.len() + 1;
    }
    Ok(count)
}

/// The dimension buffer of a point passed on, emptied, for the next point (its strings are dropped
/// with it): one allocation for a body's points.
fn reclaim<'a>(point: WirePoint<'a>) -> Vec<(Cow<'a, str>, WireScalar<'a>)> {
    match point.dimensions {
        WireDimensions::Pairs(mut taken) => {
            taken.clear();
            taken
        }
        _ => Vec::new(),
    }
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
            pairs = reclaim(point);
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
}

/// What an object's fields came to: a value, or a refusal of its shape that `serde_json` places only
/// after reading on to the object's end.
enum Placed<T> {
    Done(T),
    Refused(String),
}
