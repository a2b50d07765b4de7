//! One line of the Prometheus text exposition format (and of OpenMetrics text, which shares its sample
//! syntax): `name{label="value",...} value [timestamp]`, comments, blank lines and OpenMetrics' `# EOF`.
//! The name may instead be the `__name__` label, `{__name__="up", job="a"} 1 1700000000000`, as
//! `promtool tsdb dump` writes series.
//!
//! Owns the syntax only: a sample's name, labels (escapes `\\`, `\"`, `\n` undone), value (a float,
//! `NaN`, `+Inf`, `-Inf`) and timestamp token as written. What the timestamp means (milliseconds in
//! Prometheus text, seconds in OpenMetrics) and how names map onto Luminate's points is the caller's.
//! The input is untrusted (files given to `luminate import`, arguments of `luminate write`): every
//! malformed line is an error naming what is wrong, never a panic (`fuzz/fuzz_targets/exposition.rs`).

use std::borrow::Cow;

/// A parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    /// Empty or only blanks.
    Blank,
    /// `# ...` (`# HELP`, `# TYPE`, `# UNIT` included: samples are imported whatever their type).
    Comment,
    /// OpenMetrics' `# EOF`.
    Eof,
    /// A sample.
    Sample(Sample<'a>),
}

/// A sample line's parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The metric name as written (`:` included), before the braces or as the `__name__` label.
    pub name: Cow<'a, str>,
    /// Labels in the order written, values unescaped, `__name__` taken out; no name twice.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    /// The value (may be NaN or infinite: the caller decides what to do with those).
    pub value: f64,
    /// The timestamp token as written, if any.
    pub timestamp: Option<&'a str>,
}

/// Parses one line (without its line terminator).
pub fn parse_line(line: &str) -> Result<Line<'_>, String> {
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    if line.is_empty() {
        return Ok(Line::Blank);
    }
    if let Some(comment) = line.strip_prefix('#') {
        return Ok(if comment.trim() == "EOF" {
            Line::Eof
        } else {
            Line::Comment
        });
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let written = &line[..name_end];
    let mut rest = &line[name_end..];
    if (written.is_empty() && !rest.starts_with('{'))
        || written.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!(
            "expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or '{{' at the start of {:?}",
            shorten(line)
        ));
    }
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        rest = parse_labels(inside, &mut labels)?;
    }
    let labelled = labels
        .iter()
        .position(|(k, _)| *k == "__name__")
        .map(|i| labels.remove(i).1);
    let name = match (written, labelled) {
        ("", Some(name)) if !name.is_empty() => name,
        ("", _) => {
            return Err("the sample has no name: before '{' or as the __name__ label".into());
        }
        (_, Some(_)) => {
            return Err(format!(
                "the sample {written:?} also has a __name__ label: give the name once"
            ));
        }
        (written, None) => Cow::Borrowed(written),
    };
    let mut tokens = rest.split([' ', '\t']).filter(|t| !t.is_empty());
    let value_text = tokens
        .next()
        .ok_or_else(|| format!("sample {name:?} has no value"))?;
    let value = parse_value(value_text)?;
    let timestamp = match tokens.next() {
        // OpenMetrics exemplar after the value: `# {trace_id="..."} 1.0`; ignored.
        Some("#") | None => None,
        Some(ts) => {
            match tokens.next() {
                None | Some("#") => {}
                Some(extra) => return Err(format!("unexpected {extra:?} after the timestamp")),
            }
            Some(ts)
        }
    };
    Ok(Line::Sample(Sample {
        name,
        labels,
        value,
        timestamp,
    }))
}

/// Parses `k="v",...}` (after the `{`); returns what follows the `}`.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut Vec<(&'a str, Cow<'a, str>)>,
) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let key_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label set: missing '}'")?;
        let key = &rest[..key_end];
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) at {:?}",
                shorten(rest)
            ));
        }
        rest = rest[key_end..].trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {key:?}"))?
            .trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' to open the value of label {key:?}"))?;
        let (value, after) = parse_quoted(rest)
            .ok_or_else(|| format!("unterminated value of label {key:?}: missing '\"'"))?;
        if labels.iter().any(|(k, _)| *k == key) {
            return Err(format!("label {key:?} is repeated"));
        }
        labels.push((key, value?));
        rest = after.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!(
                "expected ',' or '}}' after the value of label {key:?}"
            ));
        }
    }
}

/// A quoted value's content (after the opening quote) and what follows the closing quote; `None` when
/// the quote is not closed. The inner result is an error for an unknown escape.
#[allow(clippy::type_complexity)] // one private helper
fn parse_quoted(text: &str) -> Option<(Result<Cow<'_, str>, String>, &str)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
                continue;
            }
            b'"' => break,
            _ => i += 1,
        }
    }
    if i >= bytes.len() {
        return None;
    }
    let raw = &text[..i];
    let after = &text[i + 1..];
    if !escaped {
        return Some((Ok(Cow::Borrowed(raw)), after));
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            other => {
                return Some((
                    Err(format!(
                        "unknown escape \\{} in a label value (\\\\, \\\" and \\n are defined)",
                        other.map(String::from).unwrap_or_default()
                    )),
                    after,
                ));
            }
        }
    }
    Some((Ok(Cow::Owned(out)), after))
}

/// A sample value: a decimal or exponent float, `NaN`, `+Inf`, `-Inf` (any case, as Go's ParseFloat).
fn parse_value(text: &str) -> Result<f64, String> {
    let ok = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        || matches!(
            text.trim_start_matches(['+', '-'])
                .to_ascii_lowercase()
                .as_str(),
            "nan" | "inf" | "infinity"
        );
    match text.parse::<f64>() {
        Ok(v) if ok => Ok(v),
        _ => Err(format!("value {:?} is not a number", shorten(text))),
    }
}

fn shorten(text: &str) -> &str {
    match text.char_indices().nth(60) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str) -> Sample<'_> {
        match parse_line(line) {
            Ok(Line::Sample(s)) => s,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn samples_with_labels_escapes_timestamps_and_exemplars() {
        let s =
            sample(r#"http_requests_total{method="post",path="/a\"b\\c\nd",} 1027 1395066363000"#);
        assert_eq!(s.name, "http_requests_total");
        let dumped = sample(
            r#"{__name__="up", instance="localhost:9090", job="prometheus"} 1 1700000000000"#,
        );
        assert_eq!((dumped.name.as_ref(), dumped.labels.len()), ("up", 2));
        assert_eq!(
            dumped.labels[0],
            ("instance", Cow::Borrowed("localhost:9090"))
        );
        assert_eq!(
            s.labels,
            vec![
                ("method", Cow::Borrowed("post")),
                ("path", Cow::Owned::<str>("/a\"b\\c\nd".to_owned())),
            ]
        );
        assert_eq!(s.value, 1027.0);
        assert_eq!(s.timestamp, Some("1395066363000"));

        let s = sample("job:up:sum 1.5e3");
        assert_eq!(
            (s.name.as_ref(), s.labels.len(), s.value, s.timestamp),
            ("job:up:sum", 0, 1500.0, None)
        );
        let s = sample(r#"rpc_seconds{quantile="0.5"} NaN"#);
        assert!(s.value.is_nan());
        assert_eq!(sample(r#"b_bucket{le="+Inf"} +Inf"#).value, f64::INFINITY);
        assert_eq!(sample("x -Inf 5").value, f64::NEG_INFINITY);
        let s = sample(r#"foo_total{a="b"} 17.0 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67"#);
        assert_eq!((s.value, s.timestamp), (17.0, Some("1520879607.789")));
        assert_eq!(sample("foo 1 # {a=\"b\"} 2").timestamp, None);
        assert_eq!(sample("  x{ a = \"1\" , b=\"2\" }\t3  ").labels.len(), 2);
    }

    #[test]
    fn comments_blanks_and_eof() {
        assert_eq!(parse_line("").unwrap(), Line::Blank);
        assert_eq!(parse_line("  \r").unwrap(), Line::Blank);
        assert_eq!(parse_line("# TYPE x histogram").unwrap(), Line::Comment);
        assert_eq!(parse_line("# EOF").unwrap(), Line::Eof);
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let err = |line: &str| parse_line(line).unwrap_err();
        assert!(err("1abc 2").contains("metric name"));
        assert!(err("x").contains("has no value"));
        assert!(err("x abc").contains("not a number"));
        assert!(err("x 0x10").contains("not a number"));
        assert!(err("x 1 2 3").contains("after the timestamp"));
        assert!(err(r#"x{a="1" 2"#).contains("expected ','"));
        assert!(err(r#"x{a="1"#).contains("unterminated value"));
        assert!(err(r#"x{a=1} 2"#).contains("to open the value"));
        assert!(err(r#"x{a="1",a="2"} 2"#).contains("repeated"));
        assert!(err(r#"x{a="\t"} 2"#).contains("unknown escape"));
        assert!(err(r#"x{a="1""#).contains("expected ','"));
        assert!(err("x{").contains("missing '}'"));
        assert!(err(r#"{a="1"} 2"#).contains("has no name"));
        assert!(err(r#"{__name__=""} 2"#).contains("has no name"));
        assert!(err(r#"x{__name__="y"} 2"#).contains("give the name once"));
        assert!(err("{} 2").contains("has no name"));
        assert!(err(r#"x{a="\"#).contains("unterminated"));
    }
}
