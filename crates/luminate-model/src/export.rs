//! export: what `POST /api/v1/export` asks for and what a backend streams back — the request and its
//! checks ([`ExportRequest`] → [`ExportPlan`]), the batches of points a store hands out
//! ([`ExportBatch`], in an [`ExportStream`]), and their encoding as JSON lines in the write route's
//! point shape, so that an export imports back unchanged.
//!
//! The filters are the query language's ([`crate::filter`]): a dimension equals a value or any of a
//! list, a missing dimension is `""`. Owns no I/O: how a backend reads its points, and how the server
//! streams the lines, are theirs.

use std::collections::BTreeMap;
use std::pin::Pin;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess};

use crate::filter::{Filter, FilterValue, check_filters};
use crate::json::{self, FromObject};
use crate::query::{QueryError, QueryLimits, TimeRangeRequest, resolve_time_range};
use crate::store::StoreError;
use crate::time::TimestampMs;
use crate::validate::{ValidationRules, validate_metric_name};

/// Points a backend puts in one batch at most: large enough that per-batch costs vanish, small enough
/// that the few batches in flight between a store and the HTTP body stay a few MiB.
pub const EXPORT_BATCH_POINTS: usize = 32_768;

/// The request body of `POST /api/v1/export`, exactly as sent: a JSON object, no field twice, no
/// filter key twice, no other field.
#[derive(Debug, Clone, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)] // fields are documented in docs/api.md
pub struct ExportRequest {
    pub metric_name: Option<String>,
    pub time_range: Option<TimeRangeRequest>,
    #[serde(default, deserialize_with = "filters")]
    pub filters: BTreeMap<String, FilterValue>,
}

fn filters<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, FilterValue>, D::Error> {
    json::unique_keys(d, "filters")
}

impl<'de> FromObject<'de> for ExportRequest {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Self::deserialize(MapAccessDeserializer::new(map))
    }
}

impl<'de> Deserialize<'de> for ExportRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json::deserialize_object(d)
    }
}

/// A checked export: the points of `metric` (every metric of the tenant when `None`) with a timestamp
/// in `[start, end)` whose series match every filter.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPlan {
    /// The metric, or all of them.
    pub metric: Option<String>,
    /// Inclusive start, Unix ms.
    pub start: TimestampMs,
    /// Exclusive end, Unix ms.
    pub end: TimestampMs,
    /// Filters sorted by key, one per key; all must hold.
    pub filters: Vec<Filter>,
}

impl ExportPlan {
    /// Checks a request and resolves it against `now`: `timeRange` as a query's (required, `start`
    /// before `end`, `relative` ending now) but with no longest range — an export streams, so a long
    /// range costs time, not memory; `filters` as a query's (`limits.max_value_len` bounds a value).
    pub fn from_request(
        req: ExportRequest,
        now: TimestampMs,
        limits: &QueryLimits,
    ) -> Result<Self, QueryError> {
        if let Some(name) = &req.metric_name {
            validate_metric_name(name, &ValidationRules::default()).map_err(|e| QueryError {
                code: e.code,
                message: format!("metricName: {}", e.message),
            })?;
        }
        let (start, end) = resolve_time_range(req.time_range, now)?;
        let filters = check_filters(req.filters, limits.max_value_len)?;
        Ok(Self {
            metric: req.metric_name,
            start,
            end,
            filters,
        })
    }

    /// True when a point with these dimensions (sorted by key) passes every filter.
    pub fn matches<'a>(&self, dims: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> bool {
        self.filters.iter().all(|f| {
            let value = dims
                .clone()
                .find(|(k, _)| *k == f.key())
                .map_or("", |(_, v)| v);
            f.values()
                .binary_search_by(|v| v.as_str().cmp(value))
                .is_ok()
        })
    }
}

/// A byte range of a batch's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// One series' run in a batch: its name and pairs (ranges of `text` and `pairs`) and where its points
/// end in the point columns.
#[derive(Debug, Clone, Copy)]
struct SeriesEntry {
    name: Span,
    pairs_end: u32,
    points_end: u32,
}

/// Exported points, grouped in runs of one series each: every string in one buffer and the points in
/// two columns, so that a batch of [`EXPORT_BATCH_POINTS`] costs a handful of allocations whatever its
/// number of series. A series may come in several runs, in one batch or across batches (a long one is
/// cut at the batch's size; a backend may also hand out a series' points in pieces).
#[derive(Debug, Clone, Default)]
pub struct ExportBatch {
    text: String,
    series: Vec<SeriesEntry>,
    pairs: Vec<(Span, Span)>,
    timestamps: Vec<TimestampMs>,
    values: Vec<f64>,
}

/// One run of a series in an [`ExportBatch`].
#[derive(Debug, Clone, Copy)]
pub struct ExportRun<'a> {
    /// Metric name.
    pub name: &'a str,
    /// Timestamps (Unix ms), one per value.
    pub timestamps: &'a [TimestampMs],
    /// Values.
    pub values: &'a [f64],
    text: &'a str,
    pairs: &'a [(Span, Span)],
}

impl<'a> ExportRun<'a> {
    /// The (key, value) pairs, sorted by key.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone + use<'a> {
        let text = self.text;
        self.pairs.iter().map(move |(k, v)| {
            (
                &text[k.start as usize..k.end as usize],
                &text[v.start as usize..v.end as usize],
            )
        })
    }
}

impl ExportBatch {
    /// An empty batch with room for `points`.
    pub fn with_capacity(points: usize) -> Self {
        Self {
            text: String::new(),
            series: Vec::new(),
            pairs: Vec::new(),
            timestamps: Vec::with_capacity(points),
            values: Vec::with_capacity(points),
        }
    }

    fn span(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    /// Starts a run of the series `name` with `pairs` (sorted by key, keys unique); the points pushed
    /// next belong to it.
    pub fn start_series<'s>(
        &mut self,
        name: &str,
        pairs: impl Iterator<Item = (&'s str, &'s str)>,
    ) {
        let name = self.span(name);
        for (k, v) in pairs {
            let pair = (self.span(k), self.span(v));
            self.pairs.push(pair);
        }
        self.series.push(SeriesEntry {
            name,
            pairs_end: self.pairs.len() as u32,
            points_end: self.timestamps.len() as u32,
        });
    }

    /// Appends a point to the run started last (a point pushed before any run is dropped).
    pub fn push(&mut self, timestamp: TimestampMs, value: f64) {
        if let Some(last) = self.series.last_mut() {
            self.timestamps.push(timestamp);
            self.values.push(value);
            last.points_end += 1;
        }
    }

    /// Appends points to the run started last.
    pub fn extend(&mut self, timestamps: &[TimestampMs], values: &[f64]) {
        if let Some(last) = self.series.last_mut() {
            self.timestamps.extend_from_slice(timestamps);
            self.values.extend_from_slice(values);
            last.points_end = self.timestamps.len() as u32;
        }
    }

    /// Points in the batch.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True when the batch holds no point.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Bytes of text the batch holds: with [`ExportBatch::len`], what bounds its memory.
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }

    /// The runs, in the order they were started (runs without points included).
    pub fn runs(&self) -> impl Iterator<Item = ExportRun<'_>> {
        let (mut pairs_start, mut points_start) = (0usize, 0usize);
        self.series.iter().map(move |s| {
            let run = ExportRun {
                name: &self.text[s.name.start as usize..s.name.end as usize],
                timestamps: &self.timestamps[points_start..s.points_end as usize],
                values: &self.values[points_start..s.points_end as usize],
                text: &self.text,
                pairs: &self.pairs[pairs_start..s.pairs_end as usize],
            };
            pairs_start = s.pairs_end as usize;
            points_start = s.points_end as usize;
            run
        })
    }

    /// Appends the batch's points to `out` as JSON lines in the write route's point shape,
    /// `{"name":"m","timestamp":1764928800000,"value":1.5,"dimensions":{"k":"v"}}` — a body of
    /// `{"metrics": [...]}` of these lines writes the same points back. Values are written as the
    /// shortest decimal that reads back as the same `f64`.
    pub fn write_json_lines(&self, out: &mut Vec<u8>) {
        let mut ints = itoa::Buffer::new();
        let mut floats = zmij::Buffer::new();
        let mut prefix = Vec::new();
        let mut suffix = Vec::new();
        for run in self.runs() {
            if run.timestamps.is_empty() {
                continue;
            }
            // The text before the timestamp and after the value is the same for every point of a run.
            prefix.clear();
            prefix.extend_from_slice(b"{\"name\":");
            json_string(&mut prefix, run.name);
            prefix.extend_from_slice(b",\"timestamp\":");
            suffix.clear();
            suffix.extend_from_slice(b",\"dimensions\":{");
            for (i, (k, v)) in run.pairs().enumerate() {
                if i > 0 {
                    suffix.push(b',');
                }
                json_string(&mut suffix, k);
                suffix.push(b':');
                json_string(&mut suffix, v);
            }
            suffix.extend_from_slice(b"}}\n");
            for (t, v) in run.timestamps.iter().zip(run.values) {
                out.extend_from_slice(&prefix);
                out.extend_from_slice(ints.format(*t).as_bytes());
                out.extend_from_slice(b",\"value\":");
                out.extend_from_slice(floats.format(*v).as_bytes());
                out.extend_from_slice(&suffix);
            }
        }
    }
}

/// Appends `s` as a JSON string: quotes, and escapes for `"`, `\` and control characters.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// The batches of one export, in the order the backend reads them. Ends after the last batch, or with
/// an error (the export stops there). Dropping it stops the backend's work: a client that goes away
/// cancels its export.
pub type ExportStream =
    Pin<Box<dyn futures_core::Stream<Item = Result<ExportBatch, StoreError>> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::query::invalid;
    use crate::wire::{BodyFormat, decode_write_batch};
    use serde_json::json;

    const NOW: TimestampMs = 1_800_000_000_000;

    fn plan(body: serde_json::Value) -> Result<ExportPlan, QueryError> {
        let req: ExportRequest =
            serde_json::from_value(body).map_err(|e| invalid(e.to_string()))?;
        ExportPlan::from_request(req, NOW, &QueryLimits::default())
    }

    #[test]
    fn a_request_resolves_its_range_and_filters() {
        let p = plan(json!({"metricName": "m", "timeRange": {"relative": "1h"},
            "filters": {"region": ["us", "eu"], "host": "a"}}))
        .unwrap();
        assert_eq!(p.metric.as_deref(), Some("m"));
        assert_eq!((p.start, p.end), (NOW - 3_600_000, NOW));
        assert_eq!(
            p.filters,
            vec![
                Filter::equals("host", "a"),
                Filter::any_of("region", ["eu", "us"])
            ]
        );
        // No metric: all of them. No longest range.
        let p = plan(json!({"timeRange": {"start": 0, "end": NOW}})).unwrap();
        assert_eq!((p.metric, p.start, p.end), (None, 0, NOW));
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        for (body, code, message) in [
            (
                json!({"metricName": "m"}),
                ErrorCode::InvalidQuery,
                "timeRange is required",
            ),
            (
                json!({"timeRange": {"start": 10, "end": 5}}),
                ErrorCode::InvalidQuery,
                "timeRange: start (10) must be before end (5)",
            ),
            (
                json!({"timeRange": {"start": "yesterday", "end": 5}}),
                ErrorCode::InvalidQuery,
                "timeRange.start:",
            ),
            (
                json!({"timeRange": {"relative": "1h"}, "filters": {"k": []}}),
                ErrorCode::InvalidQuery,
                "filters: \"k\" has an empty list of values",
            ),
            (
                json!({"timeRange": {"relative": "1h"}, "limit": 5}),
                ErrorCode::InvalidQuery,
                "unknown field `limit`",
            ),
            (
                json!({"metricName": "9m", "timeRange": {"relative": "1h"}}),
                ErrorCode::InvalidMetricName,
                "metricName:",
            ),
        ] {
            let e = plan(body.clone()).unwrap_err();
            assert_eq!(e.code, code, "{body}");
            assert!(e.message.contains(message), "{body}: {}", e.message);
        }
    }

    #[test]
    fn filters_match_as_queries_do() {
        let p = plan(json!({"timeRange": {"relative": "1h"},
            "filters": {"a": ["x", ""], "b": "y"}}))
        .unwrap();
        assert!(p.matches([("a", "x"), ("b", "y")].into_iter()));
        assert!(p.matches([("b", "y")].into_iter()));
        assert!(!p.matches([("a", "z"), ("b", "y")].into_iter()));
        assert!(!p.matches([("a", "x")].into_iter()));
    }

    #[test]
    fn json_lines_write_back_the_same_points() {
        let mut batch = ExportBatch::with_capacity(4);
        batch.start_series("m", [("k", "a \"quoted\"\\ é"), ("z", "1")].into_iter());
        batch.extend(&[NOW - 2, NOW - 1], &[1.0, -0.1]);
        batch.start_series("other", std::iter::empty());
        batch.push(NOW, 1.5e300);
        batch.push(NOW, 5e-324);
        let mut out = Vec::new();
        batch.write_json_lines(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            format!(
                r#"{{"name":"m","timestamp":{},"value":1.0,"dimensions":{{"k":"a \"quoted\"\\ é","z":"1"}}}}"#,
                NOW - 2
            )
        );
        let body = format!("{{\"metrics\":[{}]}}", text.trim_end().replace('\n', ","));
        let mut rules = ValidationRules::default();
        rules.max_past = std::time::Duration::from_secs(100 * 365 * 86_400);
        rules.max_future = rules.max_past;
        // The lines go back in as they are, too (`Content-Type: application/x-ndjson`).
        let as_lines = decode_write_batch(
            text,
            BodyFormat::JsonLines,
            crate::time::now_ms(),
            &rules,
            100,
        );
        let as_lines: Vec<_> = as_lines
            .unwrap()
            .points
            .iter()
            .map(|p| p.to_point())
            .collect();
        let decoded =
            decode_write_batch(body, BodyFormat::Json, crate::time::now_ms(), &rules, 100).unwrap();
        let got: Vec<_> = decoded.points.iter().map(|p| p.to_point()).collect();
        assert_eq!(as_lines, got);
        let want: Vec<(&str, TimestampMs, f64, usize)> = vec![
            ("m", NOW - 2, 1.0, 2),
            ("m", NOW - 1, -0.1, 2),
            ("other", NOW, 1.5e300, 0),
            ("other", NOW, 5e-324, 0),
        ];
        assert_eq!(got.len(), 4, "{:?}", decoded.rejections);
        for (p, (name, t, v, dims)) in got.iter().zip(want) {
            assert_eq!(
                (
                    p.name.as_str(),
                    p.timestamp,
                    p.value.to_bits(),
                    p.dimensions.len()
                ),
                (name, t, v.to_bits(), dims)
            );
        }
        assert_eq!(got[0].dimensions.get("k"), Some("a \"quoted\"\\ é"));
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = Vec::new();
        json_string(&mut out, "a\u{1}b\tc");
        assert_eq!(out, br#""a\u0001b\tc""#);
    }
}
