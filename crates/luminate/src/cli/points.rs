//! Points on their way to the write route: each a [`Record`], the point's JSON object as it will be sent
//! plus where in the input it came from, so that a per-point error of the server names the input line.
//! Also the two spellings `luminate write` reads: a JSON point object per line, or the text form
//! `name{k="v",...} value [timestamp_ms]`.

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

/// One point, encoded.
#[derive(Debug, Clone)]
pub struct Record {
    /// The point's JSON object.
    pub json: String,
    /// Where it came from.
    pub origin: Origin,
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

/// One line of a JSON-lines file checked, cheaply, to be one JSON object that opens and closes on this
/// line: `{` first, every string closed, and the brackets' depth back at zero at its last non-blank
/// byte. That is what keeps a broken line from joining the next into one valid point once lines are
/// joined into a write body: each element of the body's array is then exactly one line. It is not a
/// full JSON check (`{"value":}` passes); the server parses every point, and refuses a batch holding
/// such a line as a whole (`400 INVALID_REQUEST`), which `send` halves down to that line and reports
/// by its number, as [`json_object`] would have. `import` reads lines at gigabytes a second with this,
/// where a full parse per line (`json_object`) was a third of its CPU.
pub fn object_line(line: &str) -> Result<(), String> {
    let bytes = line.as_bytes();
    if bytes.first() != Some(&b'{') {
        return Err("expected a JSON object (a point: name, timestamp, value, dimensions)".into());
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                // To the closing quote; an escape's next byte is never one (`\"` ends nothing).
                i += 1;
                loop {
                    let rest = bytes.get(i..).unwrap_or_default();
                    let Some(k) = memchr::memchr2(b'"', b'\\', rest) else {
                        return Err("not JSON: a string does not end on its line".into());
                    };
                    i += k;
                    if bytes[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    let rest = &bytes[i + 1..];
                    return if rest.iter().all(u8::is_ascii_whitespace) {
                        Ok(())
                    } else {
                        Err("not JSON: characters after the object".into())
                    };
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err("not JSON: the object does not close on its line".into())
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
    fn object_lines_close_on_their_line() {
        for ok in [
            r#"{"name":"up","timestamp":5,"value":1}"#,
            r#"{"a":"}","b":["{",{"c":"\"}"}]}"#,
            r#"{"a":"\\"}  "#,
            "{}",
            // Not JSON, but closed on its line: the server refuses it (see `object_line`).
            r#"{"value":}"#,
        ] {
            assert_eq!(object_line(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("[1]", "expected a JSON object"),
            (r#" {"a":1}"#, "expected a JSON object"),
            (r#"{"a":1"#, "does not close"),
            (r#"{"a":"}"#, "string does not end"),
            (r#"{"a":"\"}"#, "string does not end"),
            (r#"{"a":"x\"#, "string does not end"),
            (r#"{"a":1}{"b":2}"#, "characters after the object"),
            (r#"{"a":1}]"#, "characters after the object"),
            (r#"{"a":[1}"#, "does not close"),
        ] {
            let e = object_line(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    /// Any JSON value, its strings full of brackets, quotes and backslashes.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            r#"[{}\[\]"\\/a\n\u{1}é]{0,6}"#.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(r#"[{}"\\a]{0,3}"#, inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn every_json_object_passes(
            fields in proptest::collection::btree_map(r#"[{}"\\a]{0,3}"#, json_value(), 0..4)
        ) {
            let line = serde_json::Value::Object(fields.into_iter().collect()).to_string();
            proptest::prop_assert_eq!(object_line(&line), Ok(()), "{}", line);
        }

        // What the check is for: lines that pass it, joined into a write body's array, parse (if at
        // all) as exactly one element per line.
        // Objects written whole or broken across two lines, at any character.
        #[test]
        fn passing_lines_stay_one_element_each(
            objects in proptest::collection::vec((json_value(), 0..64usize), 1..6)
        ) {
            let mut lines = Vec::new();
            for (value, cut) in objects {
                let text = serde_json::json!({"v": value}).to_string();
                let cut = text.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(text.len());
                lines.push(text[..cut].to_owned());
                lines.push(text[cut..].to_owned());
            }
            let passing: Vec<&str> =
                lines.iter().map(String::as_str).filter(|l| object_line(l).is_ok()).collect();
            let body = format!("[{}]", passing.join(","));
            if let Ok(elements) = serde_json::from_str::<Vec<serde::de::IgnoredAny>>(&body) {
                proptest::prop_assert_eq!(elements.len(), passing.len());
            }
        }
    }

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
