//! VictoriaMetrics' JSON-lines export (`/api/v1/export`, `vmctl`): one series per line,
//! `{"metric":{"__name__":"m","job":"a"},"values":[1,2.5],"timestamps":[1700000000000,1700000015000]}`,
//! timestamps in Unix ms. Labels map as remote write's do (docs/ingest.md): `__name__` is the name,
//! other `__` labels and empty values are dropped, `:` and `.` become `_`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use luminate_model::validate::protocol_name;
use serde::Deserialize;

use super::{Decoded, Decoder as LineDecoder};
use crate::cli::points::{Timestamp, Unsendable, encode, finite};

/// The decoder (stateless).
pub struct Decoder;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Series {
    metric: BTreeMap<String, String>,
    values: Vec<serde_json::Value>,
    timestamps: Vec<i64>,
}

/// Whether a line is a VictoriaMetrics series rather than a Luminate point.
pub fn looks_like(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
        v.get("metric").is_some_and(serde_json::Value::is_object)
            && v.get("values").is_some()
            && v.get("timestamps").is_some()
    })
}

impl LineDecoder for Decoder {
    fn line(&mut self, line: &str, out: &mut Vec<Result<String, Unsendable>>) -> Decoded {
        if line.trim().is_empty() {
            return Decoded::Points;
        }
        let series: Series = match serde_json::from_str(line) {
            Ok(series) => series,
            Err(e) => {
                return Decoded::Bad(format!(
                    "not a VictoriaMetrics series ({{\"metric\", \"values\", \"timestamps\"}}): {e}"
                ));
            }
        };
        if series.values.len() != series.timestamps.len() {
            return Decoded::Bad(format!(
                "{} values but {} timestamps",
                series.values.len(),
                series.timestamps.len()
            ));
        }
        let Some(name) = series.metric.get("__name__") else {
            return Decoded::Bad("the series has no __name__".into());
        };
        let name = protocol_name(name);
        let dims: Vec<(Cow<'_, str>, Cow<'_, str>)> = series
            .metric
            .iter()
            .filter(|(k, v)| !k.starts_with("__") && !v.is_empty())
            .map(|(k, v)| (protocol_name(k), Cow::Borrowed(v.as_str())))
            .collect();
        for (value, ts) in series.values.iter().zip(&series.timestamps) {
            // VictoriaMetrics writes NaN and ±Inf as strings (`"NaN"`, `"Inf"`).
            let value = match value {
                serde_json::Value::Number(n) => n
                    .as_f64()
                    .ok_or_else(|| format!("value {n} is not a number")),
                serde_json::Value::String(s) => s
                    .parse::<f64>()
                    .map_err(|_| format!("value {s:?} is not a number")),
                other => Err(format!("value {other} is not a number")),
            }
            .map_err(Unsendable::Invalid);
            out.push(
                value
                    .and_then(finite)
                    .map(|v| encode(&name, &Timestamp::Ms(*ts), v, &dims)),
            );
        }
        Decoded::Points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_becomes_its_points() {
        let line = r#"{"metric":{"__name__":"http:req","job":"a","__meta":"x","empty":""},"values":[1,2.5,"NaN"],"timestamps":[10,20,30]}"#;
        assert!(looks_like(line));
        assert!(!looks_like(r#"{"name":"m","timestamp":1,"value":1}"#));
        let mut out = Vec::new();
        assert!(matches!(Decoder.line(line, &mut out), Decoded::Points));
        assert_eq!(
            out[0].as_deref().unwrap(),
            r#"{"name":"http_req","timestamp":10,"value":1.0,"dimensions":{"job":"a"}}"#
        );
        assert_eq!(
            out[1].as_deref().unwrap(),
            r#"{"name":"http_req","timestamp":20,"value":2.5,"dimensions":{"job":"a"}}"#
        );
        assert!(matches!(out[2], Err(Unsendable::NonFinite(v)) if v.is_nan()));
        let mut out = Vec::new();
        assert!(
            matches!(Decoder.line(r#"{"metric":{"__name__":"m"},"values":[1],"timestamps":[]}"#, &mut out), Decoded::Bad(e) if e.contains("1 values but 0 timestamps"))
        );
    }
}
