//! The `data` of Prometheus' query answers, written straight into a string: `resultType` and `result`
//! with timestamps as seconds and values as strings, as `promtool` and Grafana read them. Series are in
//! label order.

use std::fmt::Write;

use crate::labels::Labels;
use crate::value::{Steps, Value, format_timestamp, push_float};

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    // Label values and numbers seldom need escaping: copied whole when none does.
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn metric(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (k, v)) in labels.pairs().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, k);
        out.push(':');
        json_string(out, v);
    }
    out.push('}');
}

/// `[t,"v"]`, with `t` already written as seconds (a range answer writes each step's once).
fn sample(out: &mut String, t: &str, v: f64) {
    out.push('[');
    out.push_str(t);
    out.push_str(",\"");
    // A float's text (digits, `.`, `-`, `+Inf`, `NaN`) needs no escaping.
    push_float(out, v);
    out.push_str("\"]");
}

/// The `data` of an instant query's answer at `t`.
pub fn instant(value: &Value, t: i64) -> String {
    let mut out = String::new();
    match value {
        Value::Scalar(v) => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            sample(
                &mut out,
                &format_timestamp(t),
                v.first().copied().unwrap_or(f64::NAN),
            );
        }
        Value::String(s) => {
            out.push_str(r#"{"resultType":"string","result":["#);
            out.push_str(&format_timestamp(t));
            out.push(',');
            json_string(&mut out, s);
            out.push(']');
        }
        Value::Vector(series) => {
            let t = format_timestamp(t);
            out.push_str(r#"{"resultType":"vector","result":["#);
            let mut first = true;
            for s in series {
                let Some(Some(v)) = s.values.first() else {
                    continue;
                };
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(r#"{"metric":"#);
                metric(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                sample(&mut out, &t, *v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                metric(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, (ts, v)) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    sample(&mut out, &format_timestamp(*ts), *v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// The `data` of a range query's answer: always a matrix; a scalar is one series without labels.
pub fn range(value: &Value, steps: &Steps) -> String {
    let mut out = String::from(r#"{"resultType":"matrix","result":["#);
    // Every series' values are at the same steps: each step's time is written once.
    let times: Vec<String> = steps.times().map(format_timestamp).collect();
    let write_series = |out: &mut String,
                        first: &mut bool,
                        labels: &Labels,
                        values: &mut dyn Iterator<Item = (usize, f64)>| {
        let mut values = values.peekable();
        if values.peek().is_none() {
            return;
        }
        if !*first {
            out.push(',');
        }
        *first = false;
        out.push_str(r#"{"metric":"#);
        metric(out, labels);
        out.push_str(r#","values":["#);
        for (j, (i, v)) in values.enumerate() {
            if j > 0 {
                out.push(',');
            }
            sample(out, &times[i], v);
        }
        out.push_str("]}");
    };
    let mut first = true;
    match value {
        Value::Scalar(v) => write_series(
            &mut out,
            &mut first,
            &Labels::default(),
            &mut v.iter().copied().enumerate(),
        ),
        Value::Vector(series) => {
            for s in series {
                write_series(
                    &mut out,
                    &mut first,
                    &s.labels,
                    &mut s
                        .values
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| (i, v))),
                );
            }
        }
        Value::String(_) | Value::Matrix(_) => {}
    }
    out.push_str("]}");
    out
}
