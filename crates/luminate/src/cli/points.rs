//! Points as the write route takes them: a point's JSON object encoded ([`encode`]) or checked
//! ([`json_object`]), and where in the input it came from ([`Origin`]). Also the two spellings `luminate
//! write` reads: a JSON point object per line, or the text form `name{k="v",...} value [timestamp_ms]`.

use std::borrow::Cow;

use luminate_model::exposition::{Line, parse_line};
use serde::Serialize;
use serde::ser::SerializeMap;

/// Where a point came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// 1-based line number (or argument number) in its input.
    pub line: u64,
    /// Byte offset of the line's start in the (decompressed) input.
    pub offset: u64,
    /// Index of the point within its line (VictoriaMetrics lines hold many).
    pub sub: u32,
}

/// A point's timestamp as it will be sent: Unix ms, or a string the server parses (RFC 3339).
#[derive(Debug, Clone, PartialEq)]
pub enum Timestamp<'a> {
    /// Unix milliseconds.
    Ms(i64),
    /// RFC 3339 or digits, as written.
    Text(&'a str),
}

impl Timestamp<'_> {
    /// Reads a timestamp as the API does: all digits (with an optional `-`) is Unix ms, anything else is
    /// passed on for the server to parse as RFC 3339 (and to reject per point if it cannot).
    pub fn parse(text: &str) -> Timestamp<'_> {
        match text.parse::<i64>() {
            Ok(ms) => Timestamp::Ms(ms),
            Err(_) => Timestamp::Text(text),
        }
    }
}

impl Serialize for Timestamp<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Ms(ms) => s.serialize_i64(*ms),
            Self::Text(t) => s.serialize_str(t),
        }
    }
}

/// Dimensions in the order given.
struct Dims<'a>(&'a [(Cow<'a, str>, Cow<'a, str>)]);

impl Serialize for Dims<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k.as_ref(), v.as_ref())?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct PointJson<'a> {
    name: &'a str,
    timestamp: &'a Timestamp<'a>,
    value: f64,
    dimensions: Dims<'a>,
}

/// The JSON object of a point. `value` must be finite (JSON has no NaN): callers check.
pub fn encode(
    name: &str,
    timestamp: &Timestamp<'_>,
    value: f64,
    dimensions: &[(Cow<'_, str>, Cow<'_, str>)],
) -> String {
    let point = PointJson {
        name,
        timestamp,
        value,
        dimensions: Dims(dimensions),
    };
    // Serializing strings, numbers and a map of strings into a String cannot fail.
    serde_json::to_string(&point).unwrap_or_default()
}

/// A JSON point object on one line, checked to be a JSON object and passed on as written (the server
/// validates its fields and answers per point).
pub fn json_object(line: &str) -> Result<String, String> {
    let line = line.trim();
    if !line.starts_with('{') {
        return Err("expected a JSON object (a point: name, timestamp, value, dimensions)".into());
    }
    // Checked for syntax only, without building the value: the server reads the fields.
    serde_json::from_str::<serde::de::IgnoredAny>(line).map_err(|e| format!("not JSON: {e}"))?;
    Ok(line.to_owned())
}

/// Why a point read from the input cannot be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Unsendable {
    /// NaN or ±Inf: JSON has no such number, and Luminate stores finite values only.
    NonFinite(f64),
    /// Anything else, with the reason.
    Invalid(String),
}

impl std::fmt::Display for Unsendable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NonFinite(v) => write!(
                f,
                "value {v} is not finite: Luminate stores finite values only"
            ),
            Self::Invalid(reason) => f.write_str(reason),
        }
    }
}

/// A finite value, or why the point cannot be sent.
pub fn finite(value: f64) -> Result<f64, Unsendable> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Unsendable::NonFinite(value))
    }
}

/// One input of `luminate write`: a JSON point object, or `name{k="v",...} value [timestamp_ms]`
/// (timestamp `now_ms` when left out). `Ok(None)` for a blank or comment line.
pub fn parse_write_line(line: &str, now_ms: i64) -> Result<Option<String>, String> {
    let trimmed = line.trim();
    // `{"name": …}` is JSON; `{__name__="up"} 1` is the text form with the name as a label.
    let json = trimmed
        .strip_prefix('{')
        .is_some_and(|rest| matches!(rest.trim_start().chars().next(), Some('"' | '}') | None));
    if json {
        return json_object(trimmed).map(Some);
    }
    let sample = match parse_line(trimmed)? {
        Line::Sample(sample) => sample,
        Line::Blank | Line::Comment | Line::Eof => return Ok(None),
    };
    let timestamp =
        match sample.timestamp {
            Some(text) => Timestamp::Ms(text.parse::<i64>().map_err(|_| {
                format!("timestamp {text:?} is not an integer of Unix milliseconds")
            })?),
            None => Timestamp::Ms(now_ms),
        };
    let dims: Vec<_> = sample
        .labels
        .into_iter()
        .map(|(k, v)| (Cow::Borrowed(k), v))
        .collect();
    Ok(Some(encode(
        &sample.name,
        &timestamp,
        finite(sample.value).map_err(|e| e.to_string())?,
        &dims,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_lines_in_both_spellings() {
        assert_eq!(
            parse_write_line(r#"cpu{host="a",dc="x\"y"} 1.5 1700000000000"#, 5).unwrap(),
            Some(
                r#"{"name":"cpu","timestamp":1700000000000,"value":1.5,"dimensions":{"host":"a","dc":"x\"y"}}"#
                    .to_owned()
            )
        );
        assert_eq!(
            parse_write_line("up 1", 5).unwrap(),
            Some(r#"{"name":"up","timestamp":5,"value":1.0,"dimensions":{}}"#.to_owned())
        );
        assert_eq!(
            parse_write_line(r#" {"name":"up","timestamp":5,"value":1} "#, 0).unwrap(),
            Some(r#"{"name":"up","timestamp":5,"value":1}"#.to_owned())
        );
        assert_eq!(
            parse_write_line(r#"{__name__="up",job="a"} 2 7"#, 5).unwrap(),
            Some(r#"{"name":"up","timestamp":7,"value":2.0,"dimensions":{"job":"a"}}"#.to_owned())
        );
        assert_eq!(parse_write_line("# comment", 0).unwrap(), None);
        assert!(
            parse_write_line("up 1 1.5", 0)
                .unwrap_err()
                .contains("Unix milliseconds")
        );
        assert!(
            parse_write_line("up NaN", 0)
                .unwrap_err()
                .contains("not finite")
        );
        assert!(parse_write_line("[1]", 0).is_err());
        assert!(
            parse_write_line("{\"a\":", 0)
                .unwrap_err()
                .starts_with("not JSON")
        );
    }
}
