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

mod scan;

#[cfg(any(test, feature = "wire-reference"))]
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

    /// The error of a line scanned on its own (placed as line 1), placed in the whole body: on line
    /// `number`, which starts at byte `start`.
    pub(crate) fn on_line(mut self, number: usize, start: usize) -> Self {
        self.line = number;
        self.offset += start;
        self
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
    scan::decode_write_body(text, each)
}

/// Decodes a JSON-lines write body (`Content-Type: application/x-ndjson`): one point object per line,
/// blank lines skipped, each line decoded on its own as a point of [`decode_write_body`] is — so a line
/// left open is an error of that line, never joined to the next. Calls `each` with every point in
/// order and returns their number; an error names the line (1-based, blank lines counted) and the
/// column within it, and the byte offset in the whole body.
pub fn decode_write_lines<'a>(
    text: &'a str,
    each: impl FnMut(&WirePoint<'a>),
) -> Result<usize, WireError> {
    scan::decode_write_lines(text, each)
}

/// How a write body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `{"metrics": [point, ...]}` (`application/json`).
    Json,
    /// One point object per line (`application/x-ndjson`), what `/api/v1/export` streams.
    JsonLines,
}

/// One point of a body that validation refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Index in the body's `metrics` array (of a JSON-lines body: the point's place among its points,
    /// blank lines not counted).
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
    format: BodyFormat,
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
            let each = |wire: &WirePoint<'_>| {
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
            };
            let received = match format {
                BodyFormat::Json => decode_write_body(text, each)?,
                BodyFormat::JsonLines => decode_write_lines(text, each)?,
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(text: &str) -> Result<Vec<WirePoint<'static>>, WireError> {
        let mut out = Vec::new();
        decode_write_body(text, |p| out.push(owned(p)))?;
        Ok(out)
    }

    fn owned(p: &WirePoint<'_>) -> WirePoint<'static> {
        let scalar = |s: &WireScalar<'_>| match s {
            WireScalar::Str(s) => WireScalar::Str(Cow::Owned(s.to_string())),
            WireScalar::Missing => WireScalar::Missing,
            WireScalar::Int(i) => WireScalar::Int(*i),
            WireScalar::Float(f) => WireScalar::Float(*f),
            WireScalar::Other(k) => WireScalar::Other(k),
        };
        WirePoint {
            name: scalar(&p.name),
            timestamp: scalar(&p.timestamp),
            value: scalar(&p.value),
            dimensions: match &p.dimensions {
                WireDimensions::None => WireDimensions::None,
                WireDimensions::NotAnObject(k) => WireDimensions::NotAnObject(k),
                WireDimensions::Pairs(pairs) => WireDimensions::Pairs(
                    pairs
                        .iter()
                        .map(|(k, v)| (Cow::Owned(k.to_string()), scalar(v)))
                        .collect(),
                ),
            },
        }
    }

    fn s(v: &str) -> WireScalar<'static> {
        WireScalar::Str(Cow::Owned(v.to_owned()))
    }

    #[test]
    fn wrong_types_decode_per_point() {
        let metrics = decode(
            r#"{"metrics":[
                {"name":"a","timestamp":1,"value":2.5,"dimensions":{"k":"v"}},
                {"name":7,"timestamp":"2024-01-01T00:00:00Z","value":"x","dimensions":{"k":1}},
                {"extra":true,"dimensions":[1]},
                {"name":"b","dimensions":null}
            ]}"#,
        )
        .unwrap();
        assert_eq!(metrics[0].value, WireScalar::Float(2.5));
        assert_eq!(metrics[0].timestamp, WireScalar::Int(1));
        assert_eq!(
            metrics[0].dimensions,
            WireDimensions::Pairs(vec![(Cow::Owned("k".into()), s("v"))])
        );
        assert_eq!(metrics[1].name, WireScalar::Int(7));
        assert_eq!(metrics[1].value, s("x"));
        assert_eq!(
            metrics[1].dimensions,
            WireDimensions::Pairs(vec![(Cow::Owned("k".into()), WireScalar::Int(1))])
        );
        assert_eq!(metrics[2].name, WireScalar::Missing);
        assert_eq!(metrics[2].dimensions, WireDimensions::NotAnObject("array"));
        assert_eq!(metrics[3].dimensions, WireDimensions::None);
        assert_eq!(metrics.len(), 4);
    }

    #[test]
    fn strings_borrow_the_body_unless_escaped() {
        let text =
            r#"{"metrics":[{"name":"m","dimensions":{"customer_id":"cust_\u0031","k":"v"}}]}"#;
        let mut seen = Vec::new();
        decode_write_body(text, |p| {
            let WireDimensions::Pairs(pairs) = &p.dimensions else {
                panic!("pairs expected");
            };
            for (k, v) in pairs {
                let WireScalar::Str(v) = v else {
                    panic!("string expected");
                };
                seen.push((
                    matches!(k, Cow::Borrowed(_)),
                    v.to_string(),
                    matches!(v, Cow::Borrowed(_)),
                ));
            }
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (true, "cust_1".to_owned(), false),
                (true, "v".to_owned(), true)
            ]
        );
    }

    #[test]
    fn arrays_in_place_of_objects_fail_the_body() {
        for (bad, expected) in [
            (r#"[[["m", 1, 1.5, {"a": "b"}]]]"#, "expected an object"),
            (r#"[{"metrics": []}]"#, "expected an object"),
            (r#"{"metrics": [["m", 1, 1]]}"#, "expected a point object"),
            (
                r#"{"metrics": [{"name": "m"}, ["m", 1, 1]]}"#,
                "expected a point object",
            ),
            (r#"{"metrics": [[]]}"#, "expected a point object"),
        ] {
            let e = decode(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("invalid type: sequence, ") && e.contains(expected),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_repeated_dimension_key_is_kept_for_validation_to_refuse() {
        let metrics =
            decode(r#"{"metrics":[{"name":"m","dimensions":{"a":"x","a":"y"}}]}"#).unwrap();
        assert_eq!(
            metrics[0].dimensions,
            WireDimensions::Pairs(vec![
                (Cow::Owned("a".into()), s("x")),
                (Cow::Owned("a".into()), s("y"))
            ])
        );
    }

    #[test]
    fn malformed_body_fails_whole() {
        for bad in [
            r#"{"metrics":[{"name":"a",}]}"#,
            r#"{"points":[]}"#,
            r#"{"metrics":{}}"#,
            r#"{"metrics":[{"value":NaN}]}"#,
            r#"{"metrics":[1]}"#,
            r#"{"metrics":[],"metrics":[]}"#,
            r#"{"metrics":[{"name":"a","name":"b"}]}"#,
            r#"{}"#,
            r#"{"metrics":[]} x"#,
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        let e = decode(r#"{"points":[]}"#).unwrap_err().to_string();
        assert!(
            e.contains("unknown field `points`, expected `metrics`"),
            "{e}"
        );
        let e = decode(r#"{"metrics":[]"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "EOF while parsing an object at line 1 column 13"
        );
        assert_eq!(decode(r#"{"metrics":[]}"#).unwrap().len(), 0);
    }

    /// What a decoder made of a body: every point handed out (with whether each string borrowed the
    /// body), then the count or the error.
    type Outcome = (
        Vec<(WirePoint<'static>, Vec<bool>)>,
        Result<usize, WireError>,
    );

    fn borrowed(p: &WirePoint<'_>) -> Vec<bool> {
        let mut out = Vec::new();
        for s in [&p.name, &p.timestamp, &p.value] {
            if let WireScalar::Str(s) = s {
                out.push(matches!(s, Cow::Borrowed(_)));
            }
        }
        if let WireDimensions::Pairs(pairs) = &p.dimensions {
            for (k, v) in pairs {
                out.push(matches!(k, Cow::Borrowed(_)));
                if let WireScalar::Str(v) = v {
                    out.push(matches!(v, Cow::Borrowed(_)));
                }
            }
        }
        out
    }

    fn scanned(text: &str) -> Outcome {
        let mut points = Vec::new();
        let result = decode_write_body(text, |p| points.push((owned(p), borrowed(p))));
        (points, result)
    }

    fn referenced(text: &str) -> Outcome {
        let mut points = Vec::new();
        let result = reference::decode_write_body(text, |p| points.push((owned(p), borrowed(p))))
            .map_err(|e| reference::to_wire_error(text, &e));
        (points, result)
    }

    /// Same points, same count or same error (reason, line, column), as the serde_json decoder. Floats
    /// compare by their bits (`-0.0` is not `0.0`, and NaN never arrives).
    fn assert_same_as_reference(text: &str) {
        let (ours, theirs) = (scanned(text), referenced(text));
        let bits = |o: &Outcome| format!("{:?}", o).replace("-0.0", "neg0");
        assert_eq!(bits(&ours), bits(&theirs), "body: {text:?}");
    }

    #[test]
    fn the_scanner_decodes_as_serde_json_did() {
        for text in [
            r#"{"metrics":[{"name":"api_latency","timestamp":1800000000123,"value":100.5,"dimensions":{"customer_id":"cust_42","endpoint":"/api/v1/invoices","region":"us-east-1","status_code":"201"}}]}"#,
            r#" { "metrics" : [ { "dimensions" : { "a" : "b" } , "value" : -0 , "name" : "m" , "timestamp" : "2024-01-01T00:00:00Z" , "unit" : [ { "x" : [ 1 , 2.5e-3 , "\ud800" ] } ] } ] } "#,
            r#"{"metrics":[{"name":"\u006d\n\"","value":18446744073709551615},{"value":9223372036854775808},{"value":-9223372036854775808},{"value":-9223372036854775809},{"value":123456789012345678901234567890},{"value":1.7976931348623157e308},{"value":4.9e-324},{"value":1e-400},{"value":0e99999999999},{"value":1E+2}]}"#,
            r#"{"metrics":[{"value":1e400}]}"#,
            r#"{"metrics":[{"value":1e99999999999}]}"#,
            r#"{"metrics":[{"value":-1e-99999999999}]}"#,
            r#"{"metrics":[{"value":0.1000000000000000055511151231257827021181583404541015625}]}"#,
            r#"{"metrics":[{"value":2.2250738585072011e-308}]}"#,
            r#"{"metrics":[{"name":"\ud83d\ude00","dimensions":{"k":"\uD83D\uDE00é"}}]}"#,
            r#"{"metrics":[{"name":"\udc00"}]}"#,
            r#"{"metrics":[{"name":"\ud800x"}]}"#,
            r#"{"metrics":[{"name":"\ud800\n"}]}"#,
            r#"{"metrics":[{"name":"\ud800\u0041"}]}"#,
            r#"{"metrics":[{"name":"\q"}]}"#,
            r#"{"metrics":[{"name":"\u12G4"}]}"#,
            "{\"metrics\":[{\"name\":\"a\u{1}\"}]}",
            "{\"metrics\":[{\"x\":\"a\u{1}\"}]}",
            "{\"metrics\":[{\"x\":[\"a\u{1f}\"]}]}",
            r#"{"metrics":[{"name":"a","name":"b"}]}"#,
            r#"{"metrics":[{"dimensions":{},"dimensions":{}}]}"#,
            r#"{"metrics":[{"dimensions":null,"dimensions":{}}]}"#,
            r#"{"metrics":[{"value":1,"value":2} ,{}]}"#,
            r#"{"metrics":[{"value":1,"value":2,}]}"#,
            r#"{"metrics":[] , "metrics":[]}"#,
            r#"{"metricz":[]}"#,
            r#"{"metr\u0069cs":[{"n\u0061me":"m"}]}"#,
            r#"{ }"#,
            r#"[ ]"#,
            r#"[ , 1]"#,
            r#"[{"metrics": []}]"#,
            r#"{"metrics": [[ ], {}]}"#,
            r#"{"metrics": [ [1] ]}"#,
            r#"{"metrics": 5}"#,
            r#"{"metrics": -0}"#,
            r#"{"metrics": 1.5}"#,
            r#"{"metrics": -5}"#,
            r#"{"metrics": 18446744073709551616}"#,
            r#"{"metrics": "x\ty"}"#,
            r#"{"metrics": "é\"q"}"#,
            r#"{"metrics": nul}"#,
            r#"{"metrics": true}"#,
            r#"{"metrics": {}}"#,
            r#"{"metrics": [1]}"#,
            r#"{"metrics": [null]}"#,
            r#"{"metrics": [{"name": tru}]}"#,
            r#"{"metrics": [{"name": 01}]}"#,
            r#"{"metrics": [{"name": 1.}]}"#,
            r#"{"metrics": [{"name": 1.e5}]}"#,
            r#"{"metrics": [{"name": -}]}"#,
            r#"{"metrics": [{"name": 1e}]}"#,
            r#"{"metrics": [{"name": 1e+}]}"#,
            r#"{"metrics": [{"x": 01}]}"#,
            r#"{"metrics": [{"x": 1.}]}"#,
            r#"{"metrics": [{"x": -x}]}"#,
            r#"{"metrics": [{"x": 1e+x}]}"#,
            r#"{"metrics": [{"x": [1,]}]}"#,
            r#"{"metrics": [{"x": {"a":1,}}]}"#,
            r#"{"metrics": [{"x": {"a" 1}}]}"#,
            r#"{"metrics": [{"x": {1:1}}]}"#,
            r#"{"metrics": [{"x": [1 2]}]}"#,
            r#"{"metrics": [{"name": [1,]}]}"#,
            r#"{"metrics": [{"name": {"a":1,}}]}"#,
            r#"{"metrics": [{"name": [1 2]}]}"#,
            r#"{"metrics": [{"dimensions": [1,]}]}"#,
            r#"{"metrics": [{"dimensions": {"a":"b",}}]}"#,
            r#"{"metrics": [{"dimensions": {"a" "b"}}]}"#,
            r#"{"metrics": [{"dimensions": "s"}, {"dimensions": 1e2}, {"dimensions": false}]}"#,
            r#"{"metrics": [{,}]}"#,
            r#"{"metrics": [{"a":1 "b":2}]}"#,
            r#"{"metrics": [{} {}]}"#,
            r#"{"metrics": [{},]}"#,
            r#"{"metrics": [], }"#,
            r#"{"metrics": []} x"#,
            r#"{"metrics": []}]"#,
            "{\"metrics\":\n[\n{\"name\":\n\"a\",}\n]}",
            "",
            "   ",
            "x",
        ] {
            assert_same_as_reference(text);
        }
    }

    #[test]
    fn every_truncation_fails_as_serde_json_did() {
        let text = "{\"metrics\": [\n {\"name\": \"m\\u00e9\", \"timestamp\": -12.5e-3, \"value\": true,\n  \
                    \"dimensions\": {\"k\": \"v\\ud83d\\ude00\", \"n\": null}, \"x\": [{\"y\": [1, \"\\n\"]}, -0]},\n {}\n]}";
        for end in 0..=text.len() {
            if text.is_char_boundary(end) {
                assert_same_as_reference(&text[..end]);
            }
        }
    }

    /// A JSON value's text, valid or slightly broken.
    fn value_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("nul".to_owned()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<u64>().prop_map(|u| u.to_string()),
            any::<f64>().prop_map(|f| format!("{f:e}")),
            any::<f64>().prop_map(|f| f.to_string()),
            (any::<u32>(), 0u32..30, -400i32..400).prop_map(|(m, f, e)| format!("{m}.{f}e{e}")),
            prop::sample::select(vec![
                "-0",
                "0.0",
                "-0.0",
                "1e400",
                "-1e400",
                "1e-400",
                "01",
                "1.",
                ".5",
                "-",
                "1e",
                "1E+",
                "123456789012345678901234567890",
                "0.30000000000000004",
                "9007199254740993",
                "1e99999999999",
                "0e99999999999",
                "18446744073709551616",
                "-9223372036854775809",
            ])
            .prop_map(str::to_owned),
            "[a-z_]{0,6}".prop_map(|s| format!("{s:?}")),
            prop::sample::select(vec![
                r#""a\nb""#,
                r#""\u0041\u00e9""#,
                r#""\ud83d\ude00""#,
                r#""\udc00""#,
                r#""\ud800""#,
                r#""\x""#,
                "\"é\"",
                "\"a\u{7}\"",
                r#""\"""#,
                r#""\/""#,
                r#""cust_\u0031""#,
            ])
            .prop_map(str::to_owned),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z]{1,3}", inner), 0..4).prop_map(|v| {
                    let fields: Vec<String> =
                        v.into_iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
                Just("[1,]".to_owned()),
                Just("{\"a\":1,}".to_owned()),
            ]
        })
    }

    /// A point's text: the four fields (some twice, some missing, any order) and unknown ones.
    fn point_text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "name",
            "timestamp",
            "value",
            "dimensions",
            "unit",
            "n\\u0061me",
            "dimensions",
        ]);
        let dimensions = prop::collection::vec(
            (
                prop::sample::select(vec!["customer_id", "endpoint", "a", "a", "_tenant_id", "1"]),
                value_text(),
            ),
            0..4,
        )
        .prop_map(|v| {
            let pairs: Vec<String> = v.into_iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", pairs.join(","))
        });
        prop::collection::vec((key, prop_oneof![value_text(), dimensions]), 0..6).prop_map(
            |fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            },
        )
    }

    /// A body, then perhaps broken: cut, a byte inserted, or whitespace spread.
    fn body_text() -> impl Strategy<Value = String> {
        let points = prop::collection::vec(prop_oneof![8 => point_text(), 1 => value_text()], 0..5);
        let body = (points, 0u8..8).prop_map(|(points, shape)| {
            let array = format!("[{}]", points.join(","));
            match shape {
                0 => format!("{{\"metrics\":{array},\"metrics\":[]}}"),
                1 => format!("{{\"other\":1,\"metrics\":{array}}}"),
                2 => format!("[{{\"metrics\":{array}}}]"),
                3 => format!("{{\"metrics\":{array}}} {{}}"),
                _ => format!("{{\"metrics\":{array}}}"),
            }
        });
        (
            body,
            any::<prop::sample::Index>(),
            0u8..6,
            prop::sample::select(vec![
                "", " ", ",", "]", "}", "\"", ":", "\\", "\n", "0", "-", "[", "{",
            ]),
        )
            .prop_map(|(body, at, change, piece)| {
                let mut cut = at.index(body.len() + 1);
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                match change {
                    0 => body[..cut].to_owned(),
                    1 => format!("{}{piece}{}", &body[..cut], &body[cut..]),
                    2 => body.replace(',', " ,\n\t").replace(':', "\r: "),
                    _ => body,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn generated_bodies_decode_as_serde_json_did(text in body_text()) {
            assert_same_as_reference(&text);
        }

        #[test]
        fn json_lines_decode_as_each_line_in_a_body(text in body_text()) {
            // Any text (these bodies cut and patched at random) read as lines: each line is one point,
            // and its point is the one a body of that line alone would hold.
            let points = text.strip_prefix("{\"metrics\":[").unwrap_or(&text);
            let points = points.strip_suffix("]}").unwrap_or(points);
            assert_lines_as_bodies(&points.replace("},{", "}\n{"));
        }
    }

    /// `text` as JSON lines gives the points, or fails at the first line, that each line as a body of
    /// its own (`{"metrics":[line]}`) gives.
    fn assert_lines_as_bodies(text: &str) {
        let mut got = Vec::new();
        let outcome = decode_write_lines(text, |p| got.push(owned(p)));
        let mut want = Vec::new();
        let mut first_bad = None;
        for (number, line) in (1..).zip(text.split('\n')) {
            if line.trim_matches([' ', '\t', '\r']).is_empty() {
                continue;
            }
            let body = format!("{{\"metrics\":[{line}]}}");
            let mut points = Vec::new();
            match decode_write_body(&body, |p| points.push(owned(p))) {
                Ok(1) => want.extend(points),
                _ => {
                    first_bad = Some(number);
                    break;
                }
            }
        }
        match outcome {
            Ok(n) => {
                assert_eq!(first_bad, None, "{text:?}");
                assert_eq!(n, want.len());
            }
            Err(e) => {
                assert_eq!(Some(e.line()), first_bad, "{text:?}: {e}");
                let line_start: usize = text
                    .split('\n')
                    .take(e.line() - 1)
                    .map(|l| l.len() + 1)
                    .sum();
                assert!(
                    e.offset() >= line_start
                        && e.offset()
                            <= line_start + text.split('\n').nth(e.line() - 1).unwrap_or("").len(),
                    "{text:?}: {e} at {}",
                    e.offset()
                );
            }
        }
        assert_eq!(got, want, "{text:?}");
    }

    #[test]
    fn json_lines_are_points_one_per_line() {
        let text = "{\"name\":\"a\",\"timestamp\":1,\"value\":2.5,\"dimensions\":{\"k\":\"v\"}}\r\n\
                    \n  \t\n\
                    {\"name\":\"b\",\"value\":\"x\"}  \n\
                    {\"name\":\"c\",\"timestamp\":3,\"value\":1}";
        let mut points = Vec::new();
        assert_eq!(decode_write_lines(text, |p| points.push(owned(p))), Ok(3));
        let names: Vec<_> = points.iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, [s("a"), s("b"), s("c")]);
        assert_eq!(points[1].value, s("x"));
        assert_eq!(
            points[0].dimensions,
            WireDimensions::Pairs(vec![(Cow::Owned("k".into()), s("v"))])
        );
        assert_eq!(decode_write_lines("", |_| {}), Ok(0));
        assert_eq!(decode_write_lines("\n\n", |_| {}), Ok(0));
        assert_lines_as_bodies(text);
    }

    #[test]
    fn a_json_line_left_open_fails_on_its_line() {
        // Joined, these two lines would be one valid point: as lines, the first is an error.
        let text = "{\"name\":\"a\",\"value\":1}\n{\"name\":\"a\",\n\"timestamp\":1,\"value\":2}\n";
        let e = decode_write_lines(text, |_| {}).unwrap_err();
        assert_eq!(
            e.to_string(),
            "EOF while parsing a value at line 2 column 12"
        );
        assert_eq!((e.line(), e.offset()), (2, text.find(",\n").unwrap()));
        let e = decode_write_lines("{\"name\":\"a\"} {\"name\":\"b\"}", |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "trailing characters at line 1 column 14");
        let e = decode_write_lines("\n[1]\n", |_| {}).unwrap_err();
        assert_eq!(e.line(), 2);
        assert!(e.reason().starts_with("invalid type: sequence"), "{e}");
        assert_lines_as_bodies(text);
    }
}
