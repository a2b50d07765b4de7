//! Per-point validation (CONTRACT §2): turns a [`WirePoint`] into a [`Point`] or says which rule failed.
//!
//! Cardinality limits are not checked here: they depend on what is already stored, so backends enforce
//! them at write time and report `CARDINALITY_EXCEEDED` per point.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ErrorCode;
use crate::point::{Dimensions, Point};
use crate::time::{MAX_TIMESTAMP, MIN_TIMESTAMP, TimestampMs, parse_timestamp_str};
use crate::wire::{WireDimensions, WirePoint, WireScalar};

/// The only reserved dimension key: backends that store the tenant beside the dimensions use it.
pub const RESERVED_TENANT_KEY: &str = "_tenant_id";

/// Limits that validation enforces; defaults are the contract's.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationRules {
    /// Longest metric name, in characters.
    pub max_name_len: usize,
    /// Most dimensions on one point.
    pub max_dimensions: usize,
    /// Longest dimension key, in characters.
    pub max_key_len: usize,
    /// Longest dimension value, in characters.
    pub max_value_len: usize,
    /// How far in the past a timestamp may be.
    pub max_past: Duration,
    /// How far in the future a timestamp may be (clock skew).
    pub max_future: Duration,
    /// An admin's backfill (`POST /api/v1/write?backfill=true`): `max_past` gives way to each metric's
    /// retention, so a point is accepted back to the start of what its metric keeps, and no further
    /// (an older one would be deleted by the next retention pass).
    pub backfill: Option<Backfill>,
}

/// The retention of each metric, for a backfill's window ([`ValidationRules::backfill`]).
#[derive(Clone)]
pub struct Backfill(Arc<dyn Fn(&str) -> Duration + Send + Sync>);

impl Backfill {
    /// A backfill whose window for `metric` is `retention(metric)`.
    pub fn new(retention: impl Fn(&str) -> Duration + Send + Sync + 'static) -> Self {
        Self(Arc::new(retention))
    }

    /// How far back a point of `metric` may be.
    pub fn retention(&self, metric: &str) -> Duration {
        (self.0)(metric)
    }
}

impl fmt::Debug for Backfill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Backfill(..)")
    }
}

impl PartialEq for Backfill {
    /// The same function; two closures are never compared by what they answer.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self {
            max_name_len: 256,
            max_dimensions: 20,
            max_key_len: 128,
            max_value_len: 256,
            max_past: Duration::from_secs(7 * 86_400),
            max_future: Duration::from_secs(3_600),
            backfill: None,
        }
    }
}

/// Why a point was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct PointError {
    /// The contract's code.
    pub code: ErrorCode,
    /// A human-readable reason naming the offending field.
    pub message: String,
}

impl PointError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// True when `s` matches `^[a-zA-Z_][a-zA-Z0-9_]*$`.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A metric name or dimension key from an ingest protocol, in Luminate's pattern: every `:` (Prometheus
/// recording rules, `job:http_requests:rate5m`) and every `.` (OpenTelemetry, `http.server.duration`)
/// becomes `_`. Nothing else changes, so a name still outside the pattern after this (a leading digit, a
/// `-`, a non-ASCII letter) is rejected by validation as any other. The translation is not one-to-one:
/// `a:b`, `a.b` and `a_b` are one metric, whose points are all those of the three (docs/ingest.md).
/// Every protocol translates through this one function, so the rule is the same for all of them.
pub fn protocol_name(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b == b':' || b == b'.') {
        Cow::Owned(name.replace([':', '.'], "_"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Checks a metric name (also used by query and admin routes).
pub fn validate_metric_name(name: &str, rules: &ValidationRules) -> Result<(), PointError> {
    if name.is_empty() || name.len() > rules.max_name_len || !is_identifier(name) {
        return Err(PointError::new(
            ErrorCode::InvalidMetricName,
            format!(
                "metric name {name:?} must match ^[a-zA-Z_][a-zA-Z0-9_]*$ and be 1-{} characters",
                rules.max_name_len
            ),
        ));
    }
    Ok(())
}

/// Checks one dimension key.
pub fn validate_dimension_key(key: &str, rules: &ValidationRules) -> Result<(), PointError> {
    if key == RESERVED_TENANT_KEY {
        return Err(PointError::new(
            ErrorCode::InvalidDimension,
            format!("dimension key {RESERVED_TENANT_KEY:?} is reserved"),
        ));
    }
    if key.is_empty() || key.len() > rules.max_key_len || !is_identifier(key) {
        return Err(PointError::new(
            ErrorCode::InvalidDimension,
            format!(
                "dimension key {key:?} must match ^[a-zA-Z_][a-zA-Z0-9_]*$ and be 1-{} characters",
                rules.max_key_len
            ),
        ));
    }
    Ok(())
}

/// Checks one dimension value (already valid UTF-8: it arrived as a Rust string).
pub fn validate_dimension_value(
    key: &str,
    value: &str,
    rules: &ValidationRules,
) -> Result<(), PointError> {
    // Nearly every value is ASCII: then characters are bytes and the control characters are C0 and DEL,
    // which one pass over the bytes finds.
    let (chars, control) = if value.is_ascii() {
        let control = value.bytes().any(|b| b < 0x20 || b == 0x7f);
        (value.len(), control)
    } else {
        (value.chars().count(), value.chars().any(char::is_control))
    };
    if chars == 0 || chars > rules.max_value_len {
        return Err(PointError::new(
            ErrorCode::InvalidDimension,
            format!(
                "value of dimension {key:?} must be 1-{} characters, got {chars}",
                rules.max_value_len
            ),
        ));
    }
    if control {
        return Err(PointError::new(
            ErrorCode::InvalidDimension,
            format!("value of dimension {key:?} contains a control character"),
        ));
    }
    Ok(())
}

/// Checks the dimensions and leaves them in `out` sorted by key. A key given twice is an error: a JSON
/// object with a repeated key has no one meaning, and keeping either value would store a point the
/// client did not unambiguously send.
fn check_dimensions<'p>(
    dims: &'p WireDimensions<'_>,
    rules: &ValidationRules,
    out: &mut Vec<(&'p str, &'p str)>,
) -> Result<(), PointError> {
    out.clear();
    let pairs = match dims {
        WireDimensions::None => return Ok(()),
        WireDimensions::NotAnObject(kind) => {
            return Err(PointError::new(
                ErrorCode::InvalidDimension,
                format!("dimensions must be an object of strings, got {kind}"),
            ));
        }
        WireDimensions::Pairs(pairs) => pairs,
    };
    if pairs.len() > rules.max_dimensions {
        return Err(PointError::new(
            ErrorCode::DimensionLimitExceeded,
            format!(
                "{} dimensions exceed the limit of {}",
                pairs.len(),
                rules.max_dimensions
            ),
        ));
    }
    for (key, value) in pairs {
        validate_dimension_key(key, rules)?;
        let WireScalar::Str(value) = value else {
            return Err(PointError::new(
                ErrorCode::InvalidDimension,
                format!(
                    "value of dimension {key:?} must be a string, got {}",
                    value.kind()
                ),
            ));
        };
        validate_dimension_value(key, value, rules)?;
        out.push((key.as_ref(), value.as_ref()));
    }
    // Sorted, a repeated key is two neighbours: one pass over at most `max_dimensions` pairs.
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(pair) = out.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(PointError::new(
            ErrorCode::InvalidDimension,
            format!("dimension key {:?} is repeated", pair[0].0),
        ));
    }
    Ok(())
}

fn validate_timestamp(
    ts: &WireScalar<'_>,
    metric: &str,
    now: TimestampMs,
    rules: &ValidationRules,
) -> Result<TimestampMs, PointError> {
    let ms = match ts {
        WireScalar::Int(ms) => *ms,
        WireScalar::Str(s) => parse_timestamp_str(s)
            .map_err(|e| PointError::new(ErrorCode::InvalidTimestamp, e.to_string()))?,
        other => {
            return Err(PointError::new(
                ErrorCode::InvalidTimestamp,
                format!(
                    "timestamp must be integer Unix milliseconds or an RFC 3339 string, got {}",
                    other.kind()
                ),
            ));
        }
    };
    // Saturating, and inside the bounds every timestamp must keep, whatever the rules say: a point
    // never carries a timestamp that later arithmetic (buckets, partitions) could overflow on.
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let past = match &rules.backfill {
        Some(backfill) => backfill.retention(metric),
        None => rules.max_past,
    };
    let earliest = now
        .saturating_sub(millis(past))
        .clamp(MIN_TIMESTAMP, MAX_TIMESTAMP);
    let latest = now
        .saturating_add(millis(rules.max_future))
        .clamp(MIN_TIMESTAMP, MAX_TIMESTAMP);
    if rules.backfill.is_some() && ms < earliest {
        return Err(PointError::new(
            ErrorCode::InvalidTimestamp,
            format!(
                "timestamp {ms} is older than the retention of metric {metric:?} ({}s, so before \
                 {earliest}): a backfilled point there would be deleted by the next retention pass",
                past.as_secs()
            ),
        ));
    }
    if ms < earliest || ms > latest {
        return Err(PointError::new(
            ErrorCode::InvalidTimestamp,
            format!(
                "timestamp {ms} is outside the accepted window [{earliest}, {latest}] (now - {}s, now + {}s)",
                rules.max_past.as_secs(),
                rules.max_future.as_secs()
            ),
        ));
    }
    Ok(ms)
}

fn validate_value(value: &WireScalar<'_>) -> Result<f64, PointError> {
    let v = match value {
        WireScalar::Int(i) => *i as f64,
        WireScalar::Float(f) => *f,
        other => {
            return Err(PointError::new(
                ErrorCode::InvalidValue,
                format!("value must be a JSON number, got {}", other.kind()),
            ));
        }
    };
    if !v.is_finite() {
        return Err(PointError::new(
            ErrorCode::InvalidValue,
            "value must be finite",
        ));
    }
    Ok(v)
}

/// A point that passed every rule, its strings still borrowed from the [`WirePoint`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckedPoint<'p> {
    /// Metric name.
    pub name: &'p str,
    /// Unix milliseconds.
    pub timestamp: TimestampMs,
    /// A finite value.
    pub value: f64,
}

/// Validates one point against every rule of CONTRACT §2 except cardinality, without copying a string:
/// its dimensions are left in `dims`, sorted by key with unique keys (a buffer the caller reuses).
pub fn check_point<'p>(
    wire: &'p WirePoint<'_>,
    now: TimestampMs,
    rules: &ValidationRules,
    dims: &mut Vec<(&'p str, &'p str)>,
) -> Result<CheckedPoint<'p>, PointError> {
    let name = match &wire.name {
        WireScalar::Str(s) => s.as_ref(),
        other => {
            return Err(PointError::new(
                ErrorCode::InvalidMetricName,
                format!("name must be a string, got {}", other.kind()),
            ));
        }
    };
    validate_metric_name(name, rules)?;
    check_dimensions(&wire.dimensions, rules, dims)?;
    let timestamp = validate_timestamp(&wire.timestamp, name, now, rules)?;
    let value = validate_value(&wire.value)?;
    Ok(CheckedPoint {
        name,
        timestamp,
        value,
    })
}

/// Validates one point (see [`check_point`]) into an owned [`Point`].
pub fn validate_point(
    wire: &WirePoint<'_>,
    now: TimestampMs,
    rules: &ValidationRules,
) -> Result<Point, PointError> {
    let mut dims = Vec::new();
    let p = check_point(wire, now, rules, &mut dims)?;
    Ok(Point {
        name: p.name.to_owned(),
        timestamp: p.timestamp,
        value: p.value,
        dimensions: Dimensions::from_pairs(
            dims.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: TimestampMs = 1_800_000_000_000;

    fn point(
        name: &str,
        dims: Vec<(String, WireScalar<'static>)>,
        ts: WireScalar<'static>,
        value: WireScalar<'static>,
    ) -> WirePoint<'static> {
        WirePoint {
            name: WireScalar::Str(name.to_owned().into()),
            timestamp: ts,
            value,
            dimensions: WireDimensions::Pairs(
                dims.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            ),
        }
    }

    fn ok_point(name: &str) -> WirePoint<'static> {
        point(name, vec![], WireScalar::Int(NOW), WireScalar::Float(1.0))
    }

    fn with_dims(dims: Vec<(String, String)>) -> WirePoint<'static> {
        point(
            "m",
            dims.into_iter()
                .map(|(k, v)| (k, WireScalar::Str(v.into())))
                .collect(),
            WireScalar::Int(NOW),
            WireScalar::Int(1),
        )
    }

    fn code(wire: WirePoint<'_>) -> Option<ErrorCode> {
        validate_point(&wire, NOW, &ValidationRules::default())
            .err()
            .map(|e| e.code)
    }

    #[test]
    fn protocol_names_translate_colons_and_dots_only() {
        assert_eq!(
            protocol_name("job:http_requests:rate5m"),
            "job_http_requests_rate5m"
        );
        assert_eq!(
            protocol_name("http.server.duration"),
            "http_server_duration"
        );
        assert!(matches!(
            protocol_name("plain_name"),
            Cow::Borrowed("plain_name")
        ));
        // Only `:` and `.` change: what is still outside the pattern stays so, and validation rejects it.
        assert_eq!(protocol_name("a-b.c"), "a-b_c");
        assert_eq!(
            code(ok_point(&protocol_name("9:x"))),
            Some(ErrorCode::InvalidMetricName)
        );
    }

    #[test]
    fn metric_name_rules_and_boundaries() {
        assert_eq!(code(ok_point("api_latency")), None);
        assert_eq!(code(ok_point("_x9")), None);
        assert_eq!(code(ok_point(&"a".repeat(256))), None);
        assert_eq!(
            code(ok_point(&"a".repeat(257))),
            Some(ErrorCode::InvalidMetricName)
        );
        for bad in ["", "9abc", "a-b", "a.b", "a b", "é"] {
            assert_eq!(
                code(ok_point(bad)),
                Some(ErrorCode::InvalidMetricName),
                "{bad:?}"
            );
        }
        let mut wire = ok_point("x");
        wire.name = WireScalar::Int(3);
        assert_eq!(code(wire), Some(ErrorCode::InvalidMetricName));
    }

    #[test]
    fn dimension_key_boundaries_and_reserved() {
        assert_eq!(code(with_dims(vec![("k".repeat(128), "v".into())])), None);
        assert_eq!(
            code(with_dims(vec![("k".repeat(129), "v".into())])),
            Some(ErrorCode::InvalidDimension)
        );
        assert_eq!(
            code(with_dims(vec![("_tenant_id".into(), "t".into())])),
            Some(ErrorCode::InvalidDimension)
        );
        assert_eq!(
            code(with_dims(vec![("1k".into(), "v".into())])),
            Some(ErrorCode::InvalidDimension)
        );
        assert_eq!(
            code(with_dims(vec![("".into(), "v".into())])),
            Some(ErrorCode::InvalidDimension)
        );
    }

    #[test]
    fn dimension_value_boundaries_and_control_characters() {
        assert_eq!(code(with_dims(vec![("k".into(), "v".repeat(256))])), None);
        // Characters, not bytes: 256 two-byte characters are allowed.
        assert_eq!(code(with_dims(vec![("k".into(), "é".repeat(256))])), None);
        assert_eq!(
            code(with_dims(vec![("k".into(), "v".repeat(257))])),
            Some(ErrorCode::InvalidDimension)
        );
        assert_eq!(
            code(with_dims(vec![("k".into(), "".into())])),
            Some(ErrorCode::InvalidDimension)
        );
        for ctl in ["a\nb", "a\tb", "\u{0}", "x\u{7f}", "\u{9f}"] {
            assert_eq!(
                code(with_dims(vec![("k".into(), ctl.into())])),
                Some(ErrorCode::InvalidDimension),
                "{ctl:?}"
            );
        }
        let wire = point(
            "m",
            vec![("k".into(), WireScalar::Int(1))],
            WireScalar::Int(NOW),
            WireScalar::Int(1),
        );
        assert_eq!(code(wire), Some(ErrorCode::InvalidDimension));
        let mut wire = ok_point("m");
        wire.dimensions = WireDimensions::NotAnObject("array");
        assert_eq!(code(wire), Some(ErrorCode::InvalidDimension));
    }

    #[test]
    fn dimensions_come_out_sorted() {
        let wire = with_dims(vec![
            ("z".into(), "1".into()),
            ("a".into(), "x".into()),
            ("m".into(), "2".into()),
        ]);
        let mut dims = Vec::new();
        check_point(&wire, NOW, &ValidationRules::default(), &mut dims).unwrap();
        assert_eq!(dims, vec![("a", "x"), ("m", "2"), ("z", "1")]);
    }

    #[test]
    fn a_repeated_dimension_key_is_invalid_dimension_naming_it() {
        for pairs in [
            vec![("a", "x"), ("a", "y")],
            vec![("a", "x"), ("a", "x")],
            vec![("z", "1"), ("a", "x"), ("m", "2"), ("z", "3")],
        ] {
            let wire = with_dims(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            );
            let e = validate_point(&wire, NOW, &ValidationRules::default()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidDimension, "{pairs:?}");
            let key = pairs[0].0;
            assert_eq!(e.message, format!("dimension key {key:?} is repeated"));
        }
    }

    #[test]
    fn at_most_twenty_dimensions() {
        let dims = |n: usize| {
            (0..n)
                .map(|i| (format!("k{i}"), "v".to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(code(with_dims(dims(20))), None);
        assert_eq!(
            code(with_dims(dims(21))),
            Some(ErrorCode::DimensionLimitExceeded)
        );
    }

    #[test]
    fn timestamp_window_both_bounds_inclusive() {
        let rules = ValidationRules::default();
        let past = NOW - rules.max_past.as_millis() as i64;
        let future = NOW + rules.max_future.as_millis() as i64;
        let at = |ts: i64| point("m", vec![], WireScalar::Int(ts), WireScalar::Int(1));
        assert_eq!(code(at(past)), None);
        assert_eq!(code(at(past - 1)), Some(ErrorCode::InvalidTimestamp));
        assert_eq!(code(at(future)), None);
        assert_eq!(code(at(future + 1)), Some(ErrorCode::InvalidTimestamp));
        let rfc = point(
            "m",
            vec![],
            WireScalar::Str(crate::time::format_rfc3339(NOW).into()),
            WireScalar::Int(1),
        );
        assert_eq!(validate_point(&rfc, NOW, &rules).unwrap().timestamp, NOW);
        assert_eq!(
            code(point(
                "m",
                vec![],
                WireScalar::Str("soon".into()),
                WireScalar::Int(1)
            )),
            Some(ErrorCode::InvalidTimestamp)
        );
        assert_eq!(
            code(point(
                "m",
                vec![],
                WireScalar::Float(1.5),
                WireScalar::Int(1)
            )),
            Some(ErrorCode::InvalidTimestamp)
        );
        assert_eq!(
            code(point("m", vec![], WireScalar::Missing, WireScalar::Int(1))),
            Some(ErrorCode::InvalidTimestamp)
        );
    }

    #[test]
    fn configurable_window() {
        let rules = ValidationRules {
            max_past: Duration::from_secs(60),
            max_future: Duration::from_secs(1),
            ..Default::default()
        };
        let at = |ts: i64| point("m", vec![], WireScalar::Int(ts), WireScalar::Int(1));
        assert!(validate_point(&at(NOW - 60_000), NOW, &rules).is_ok());
        assert!(validate_point(&at(NOW - 60_001), NOW, &rules).is_err());
        assert!(validate_point(&at(NOW + 1_001), NOW, &rules).is_err());
    }

    #[test]
    fn a_backfill_reaches_back_to_each_metrics_retention_and_no_further() {
        let day = 86_400_000;
        let rules = ValidationRules {
            backfill: Some(Backfill::new(|metric| {
                Duration::from_secs(if metric == "short" {
                    86_400
                } else {
                    90 * 86_400
                })
            })),
            ..Default::default()
        };
        let at = |name: &str, ts: i64| point(name, vec![], WireScalar::Int(ts), WireScalar::Int(1));
        // 30 days back: past the 7-day window, inside a 90-day retention.
        assert!(validate_point(&at("long", NOW - 30 * day), NOW, &rules).is_ok());
        assert!(validate_point(&at("long", NOW - 90 * day), NOW, &rules).is_ok());
        let err = validate_point(&at("long", NOW - 90 * day - 1), NOW, &rules).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTimestamp);
        assert_eq!(
            err.message,
            format!(
                "timestamp {} is older than the retention of metric \"long\" (7776000s, so before {}): \
                 a backfilled point there would be deleted by the next retention pass",
                NOW - 90 * day - 1,
                NOW - 90 * day
            )
        );
        // Each metric its own: one day back is the edge of "short".
        assert!(validate_point(&at("short", NOW - day), NOW, &rules).is_ok());
        assert!(validate_point(&at("short", NOW - 2 * day), NOW, &rules).is_err());
        // The future is bounded as without a backfill.
        assert!(validate_point(&at("long", NOW + 3_600_001), NOW, &rules).is_err());
        // Without it, the 7-day window.
        let plain = ValidationRules::default();
        assert!(validate_point(&at("long", NOW - 30 * day), NOW, &plain).is_err());
    }

    #[test]
    fn values_must_be_finite_numbers() {
        let with_value = |v: WireScalar<'static>| point("m", vec![], WireScalar::Int(NOW), v);
        assert_eq!(
            code(with_value(WireScalar::Float(f64::NAN))),
            Some(ErrorCode::InvalidValue)
        );
        assert_eq!(
            code(with_value(WireScalar::Float(f64::INFINITY))),
            Some(ErrorCode::InvalidValue)
        );
        assert_eq!(
            code(with_value(WireScalar::Float(f64::NEG_INFINITY))),
            Some(ErrorCode::InvalidValue)
        );
        assert_eq!(
            code(with_value(WireScalar::Str("NaN".into()))),
            Some(ErrorCode::InvalidValue)
        );
        assert_eq!(
            code(with_value(WireScalar::Str("1.5".into()))),
            Some(ErrorCode::InvalidValue)
        );
        assert_eq!(
            code(with_value(WireScalar::Missing)),
            Some(ErrorCode::InvalidValue)
        );
        assert_eq!(
            code(with_value(WireScalar::Other("null"))),
            Some(ErrorCode::InvalidValue)
        );
        let p = validate_point(
            &with_value(WireScalar::Float(-0.5)),
            NOW,
            &ValidationRules::default(),
        )
        .unwrap();
        assert_eq!(p.value, -0.5);
    }
}
