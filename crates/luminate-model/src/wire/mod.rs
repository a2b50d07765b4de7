//! The JSON write body (`{"metrics": [point, ...]}`), decoded leniently per point and without an
//! allocation per string, then validated into a [`PointBatch`].
//!
//! A point whose fields have the wrong JSON type must not fail the whole batch: the contract reports it
//! at its index with a code (`INVALID_VALUE` for `"value": "abc"`). So each point decodes into a
//! [`WirePoint`] that records what arrived, and `validate` turns it into a point or an error. Only
//! malformed JSON, or a body that is not `{"metrics": [...]}`, fails the request as a whole
//! ([`WireError`], which names where).
//!
//! Strings borrow from the body (`Cow::Borrowed`); only a string with an escape sequence is unescaped
//! into its own allocation. [`decode_write_body`] streams: it hands each point to a callback as soon as it
//! is decoded, reusing one dimension buffer, so no `Vec` of points is ever built. The accepted shapes:
//! the body and each point must be JSON objects (not arrays of the fields in order), the body has exactly
//! one field, `metrics`; a point field (`name`, `timestamp`, `value`, `dimensions`) given twice fails the
//! body; unknown point fields are skipped. A dimension key given twice is kept twice here, so that
//! validation rejects that one point (`INVALID_DIMENSION`).
//!
//! [`decode_write_batch`] is the whole request-thread half of a JSON write: decode, validate, and build
//! the batch whose strings are ranges of the body.

pub mod reference;

use std::borrow::Cow;
use std::fmt;

use crate::batch::PointBatch;
use crate::time::TimestampMs;
use crate::validate::{PointError, ValidationRules, check_point};

/// A JSON scalar as it arrived; containers are remembered only by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum WireScalar<'a> {
    /// Field absent.
    Missing,
    /// An integer that fits i64.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string, borrowed from the body unless it had escapes.
    Str(Cow<'a, str>),
    /// `null`, a boolean, an array or an object: named for the error message.
    Other(&'static str),
}

impl WireScalar<'_> {
    /// The JSON kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Int(_) | Self::Float(_) => "number",
            Self::Str(_) => "string",
            Self::Other(kind) => kind,
        }
    }
}

/// The `dimensions` field as it arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum WireDimensions<'a> {
    /// Absent or `null`: no dimensions.
    #[default]
    None,
    /// An object, in the order sent; values are kept as scalars so a non-string value is reported per
    /// point.
    Pairs(Vec<(Cow<'a, str>, WireScalar<'a>)>),
    /// Not an object (named kind).
    NotAnObject(&'static str),
}

/// One point of a write body, before validation. Unknown fields are ignored so that clients may send
/// extra attributes (units, descriptions) without failing.
#[derive(Debug, Clone, PartialEq)]
pub struct WirePoint<'a> {
    /// Metric name.
    pub name: WireScalar<'a>,
    /// Unix ms (number) or RFC 3339 / Unix ms (string).
    pub timestamp: WireScalar<'a>,
    /// A JSON number.
    pub value: WireScalar<'a>,
    /// Optional object of string values.
    pub dimensions: WireDimensions<'a>,
}

/// Why a write body failed as a whole: malformed JSON, or a body that is not `{"metrics": [...]}` of
/// point objects. Worded as `serde_json` words it (`expected `,` or `}` at line 1 column 27`), which
/// clients have seen since the first release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    message: String,
    line: usize,
    column: usize,
    offset: usize,
}

impl WireError {
    /// An error at byte `index` of `text`, placed as `serde_json` places it: 1-based lines, and the
    /// column counting the bytes of the line before `index` (so the column of the byte at `index - 1`).
    pub(crate) fn at(text: &[u8], index: usize, message: impl Into<String>) -> Self {
        let index = index.min(text.len());
        let line_start = text[..index]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        let line = 1 + text[..line_start].iter().filter(|&&b| b == b'\n').count();
        Self::placed(text, message.into(), line, index - line_start)
    }

    /// An error at `line` and `column` of `text` (see [`WireError::at`]).
    fn placed(text: &[u8], message: String, line: usize, column: usize) -> Self {
        let line_start: usize = text
            .split_inclusive(|&b| b == b'\n')
            .take(line.saturating_sub(1))
            .map(<[u8]>::len)
            .sum();
        // The offending byte: the column's last one, or the line's first for column 0.
        let offset = (line_start + column.saturating_sub(1)).min(text.len());
        Self {
            message,
            line,
            column,
            offset,
        }
    }

    /// The reason, without the position.
    pub fn reason(&self) -> &str {
        &self.message
    }

    /// 1-based line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Column: bytes from the line's start up to and including the offending one (0: before the line's
    /// first byte).
    pub fn column(&self) -> usize {
        self.column
    }

    /// Byte offset of the offending byte in the body.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for WireError {}

/// Decodes a write body, calling `each` with every point in order (the callback may keep strings that
/// borrow the body; a point's owned, unescaped strings live only for the call). Returns the number of
/// points. Fails on malformed JSON or a body that is not `{"metrics": [...]}` of point objects, possibly
/// after some points were handed out.
pub fn decode_write_body<'a>(
    text: &'a str,
    each: impl FnMut(&WirePoint<'a>),
) -> Result<usize, WireError> {
    reference::decode_write_body(text, each).map_err(|e| reference::to_wire_error(text, &e))
}

/// One point of a body that validation refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Index in the body's `metrics` array.
    pub index: usize,
    /// The point's name when it was a string.
    pub metric: Option<String>,
    /// Which rule, and why.
    pub error: PointError,
}

/// A write body decoded and validated.
#[derive(Debug)]
pub struct DecodedWrite {
    /// The valid points; their strings are ranges of the body.
    pub points: PointBatch,
    /// Body index of each point of `points`.
    pub indexes: Vec<usize>,
    /// The invalid points, by index.
    pub rejections: Vec<Rejection>,
    /// Points in the body. When it exceeds the limit given to [`decode_write_batch`], only the first
    /// `limit` points were validated (the rest were only parsed) and the caller refuses the batch.
    pub received: usize,
}

/// Decodes `text`, validates each point against `rules` at time `now`, and builds the batch of the
/// valid ones, which owns `text`. Points past the first `limit` are parsed but not validated.
pub fn decode_write_batch(
    text: String,
    now: TimestampMs,
    rules: &ValidationRules,
    limit: usize,
) -> Result<DecodedWrite, WireError> {
    // A point takes well over 32 bytes of JSON: enough room without trusting the body's size blindly.
    let capacity = limit.min(text.len() / 32 + 1);
    let (points, (indexes, rejections, received)) =
        PointBatch::over_body(text, capacity, |text, builder| {
            let mut indexes = Vec::new();
            let mut rejections = Vec::new();
            // One buffer for every point's sorted dimensions. Its borrows end with each point, so it is
            // handed from point to point emptied (`recycle` keeps the allocation, changing only the
            // lifetime).
            let mut dims_buffer: Vec<(&str, &str)> = Vec::new();
            let mut index = 0;
            let received = decode_write_body(text, |wire| {
                let i = index;
                index += 1;
                if i >= limit {
                    return;
                }
                let mut dims = recycle(std::mem::take(&mut dims_buffer));
                match check_point(wire, now, rules, &mut dims) {
                    Ok(point) => {
                        builder.push(&point, &dims);
                        indexes.push(i);
                    }
                    Err(error) => rejections.push(Rejection {
                        index: i,
                        metric: match &wire.name {
                            WireScalar::Str(s) => Some(s.to_string()),
                            _ => None,
                        },
                        error,
                    }),
                }
                dims_buffer = recycle(dims);
            })?;
            Ok::<_, WireError>((indexes, rejections, received))
        })?;
    Ok(DecodedWrite {
        points,
        indexes,
        rejections,
        received,
    })
}

/// An emptied buffer with the same allocation, for borrows of another lifetime.
pub fn recycle<'b>(mut v: Vec<(&str, &str)>) -> Vec<(&'b str, &'b str)> {
    v.clear();
    // Collecting an empty `vec::IntoIter` into a vector of the same layout reuses its allocation.
    v.into_iter().map(|_| ("", "")).collect()
}
