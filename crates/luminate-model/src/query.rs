//! The query model (CONTRACT §4): the JSON request, its checks, and the [`QueryPlan`] that backends run.
//!
//! Parsing resolves everything relative (ranges ending now, default limits and timeouts) so that a plan
//! is a complete, backend-independent description of the answer.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ErrorCode;
use crate::time::{TimestampMs, parse_duration, parse_timestamp_json};
use crate::validate::{ValidationRules, is_identifier, validate_metric_name};

/// Query limits; defaults are the contract's.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLimits {
    /// Timeout when the request gives none.
    pub default_timeout: Duration,
    /// Largest timeout a request may ask for.
    pub max_timeout: Duration,
    /// Longest `[start, end)` a query may cover.
    pub max_time_range: Duration,
    /// Default and largest `limit` of a range query.
    pub max_result_points: usize,
    /// Largest `limit` of an aggregate or rate query (groups returned, not computed).
    pub max_group_by_cardinality: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(10),
            max_timeout: Duration::from_secs(30),
            max_time_range: Duration::from_secs(90 * 86_400),
            max_result_points: 10_000,
            max_group_by_cardinality: 1_000,
        }
    }
}

/// Default `limit` of aggregate and rate queries.
pub const DEFAULT_GROUP_LIMIT: usize = 100;
/// Smallest bucket interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The nine aggregations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the names are the contract's
pub enum Aggregation {
    Avg,
    Sum,
    Count,
    Min,
    Max,
    P50,
    P95,
    P99,
    Integral,
}

impl Aggregation {
    /// All aggregations, in contract order.
    pub const ALL: [Aggregation; 9] = [
        Self::Avg,
        Self::Sum,
        Self::Count,
        Self::Min,
        Self::Max,
        Self::P50,
        Self::P95,
        Self::P99,
        Self::Integral,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Sum => "sum",
            Self::Count => "count",
            Self::Min => "min",
            Self::Max => "max",
            Self::P50 => "p50",
            Self::P95 => "p95",
            Self::P99 => "p99",
            Self::Integral => "integral",
        }
    }

    /// Parses the wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// For percentiles, the quantile as a fraction in hundredths (50, 95, 99).
    pub fn percentile(self) -> Option<u32> {
        match self {
            Self::P50 => Some(50),
            Self::P95 => Some(95),
            Self::P99 => Some(99),
            _ => None,
        }
    }
}

/// The request body of `POST /api/v1/query`, exactly as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)] // fields are documented by CONTRACT §4
pub struct QueryRequest {
    pub query_type: String,
    pub metric_name: String,
    pub time_range: Option<TimeRangeRequest>,
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
    pub aggregation: Option<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    pub interval: Option<String>,
    pub limit: Option<u64>,
    pub timeout: Option<String>,
}

/// `timeRange`: either `start` and `end`, or `relative`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TimeRangeRequest {
    pub start: Option<serde_json::Value>,
    pub end: Option<serde_json::Value>,
    pub relative: Option<String>,
}

/// What a query computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QueryKind {
    /// Raw points.
    Range,
    /// One value per group (and per bucket with an interval).
    Aggregate(Aggregation),
    /// Per-second increase per group and bucket.
    Rate,
}

/// A checked, fully resolved query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    /// What to compute.
    pub kind: QueryKind,
    /// The metric.
    pub metric: String,
    /// Inclusive start, Unix ms.
    pub start: TimestampMs,
    /// Exclusive end, Unix ms.
    pub end: TimestampMs,
    /// Equality filters sorted by key; all must hold.
    pub filters: Vec<(String, String)>,
    /// Dimensions to group by, in request order (the order of group keys).
    pub group_by: Vec<String>,
    /// Bucket width in ms; required for rate.
    pub interval_ms: Option<i64>,
    /// Most points (range) or groups (aggregate, rate) returned.
    pub limit: usize,
    /// How long the query may run.
    pub timeout: Duration,
}

/// A query the contract does not accept.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    /// `INVALID_QUERY`, `QUERY_LIMIT_EXCEEDED` or `INVALID_METRIC_NAME`.
    pub code: ErrorCode,
    /// What is wrong, naming the field.
    pub message: String,
}

fn invalid(message: impl Into<String>) -> QueryError {
    QueryError {
        code: ErrorCode::InvalidQuery,
        message: message.into(),
    }
}

fn over_limit(message: impl Into<String>) -> QueryError {
    QueryError {
        code: ErrorCode::QueryLimitExceeded,
        message: message.into(),
    }
}

fn field_duration(field: &str, text: &str) -> Result<Duration, QueryError> {
    parse_duration(text).map_err(|e| invalid(format!("{field}: {e}")))
}

impl QueryPlan {
    /// Checks a request and resolves it against `now` and the limits.
    pub fn from_request(
        req: QueryRequest,
        now: TimestampMs,
        limits: &QueryLimits,
    ) -> Result<Self, QueryError> {
        validate_metric_name(&req.metric_name, &ValidationRules::default()).map_err(|e| {
            QueryError {
                code: e.code,
                message: format!("metricName: {}", e.message),
            }
        })?;

        let aggregation = req
            .aggregation
            .as_deref()
            .map(|a| Aggregation::parse(a).ok_or_else(|| invalid(format!(
                "aggregation: unknown {a:?}; expected one of avg, sum, count, min, max, p50, p95, p99, integral"
            ))))
            .transpose()?;
        let kind = match req.query_type.as_str() {
            "range" => {
                if aggregation.is_some() || !req.group_by.is_empty() || req.interval.is_some() {
                    return Err(invalid(
                        "range queries return raw points: aggregation, groupBy and interval do not apply",
                    ));
                }
                QueryKind::Range
            }
            "aggregate" => QueryKind::Aggregate(
                aggregation
                    .ok_or_else(|| invalid("aggregation is required for aggregate queries"))?,
            ),
            "rate" => {
                if aggregation.is_some() {
                    return Err(invalid(
                        "rate queries compute per-second increase: aggregation does not apply",
                    ));
                }
                if req.interval.is_none() {
                    return Err(invalid("interval is required for rate queries"));
                }
                QueryKind::Rate
            }
            other => {
                return Err(invalid(format!(
                    "queryType: unknown {other:?}; expected range, aggregate or rate"
                )));
            }
        };

        let (start, end) = resolve_time_range(req.time_range, now)?;
        let span = Duration::from_millis((end - start) as u64);
        if span > limits.max_time_range {
            return Err(over_limit(format!(
                "time range of {} exceeds max_query_time_range of {}",
                crate::time::format_duration(span),
                crate::time::format_duration(limits.max_time_range)
            )));
        }

        for (key, value) in &req.filters {
            if !is_identifier(key) {
                return Err(invalid(format!(
                    "filters: {key:?} is not a valid dimension key"
                )));
            }
            if value.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "filters: value of {key:?} contains a control character"
                )));
            }
        }
        for (i, key) in req.group_by.iter().enumerate() {
            if !is_identifier(key) {
                return Err(invalid(format!(
                    "groupBy: {key:?} is not a valid dimension key"
                )));
            }
            if req.group_by[..i].contains(key) {
                return Err(invalid(format!("groupBy: {key:?} is repeated")));
            }
        }

        let interval_ms = match req.interval.as_deref() {
            None => None,
            Some(text) => {
                let d = field_duration("interval", text)?;
                if d < MIN_INTERVAL {
                    return Err(invalid(format!(
                        "interval: {text} is shorter than the minimum of 1s"
                    )));
                }
                Some(d.as_millis() as i64)
            }
        };

        let (default_limit, max_limit, limit_name) = match kind {
            QueryKind::Range => (
                limits.max_result_points,
                limits.max_result_points,
                "max_result_points",
            ),
            _ => (
                DEFAULT_GROUP_LIMIT.min(limits.max_group_by_cardinality),
                limits.max_group_by_cardinality,
                "max_group_by_cardinality",
            ),
        };
        let limit = match req.limit {
            None => default_limit,
            Some(0) => return Err(invalid("limit must be at least 1")),
            Some(n) if n > max_limit as u64 => {
                return Err(over_limit(format!(
                    "limit {n} exceeds {limit_name} of {max_limit}"
                )));
            }
            Some(n) => n as usize,
        };

        let timeout = match req.timeout.as_deref() {
            None => limits.default_timeout,
            Some(text) => {
                let d = field_duration("timeout", text)?;
                if d > limits.max_timeout {
                    return Err(over_limit(format!(
                        "timeout {text} exceeds max_query_timeout of {}",
                        crate::time::format_duration(limits.max_timeout)
                    )));
                }
                d
            }
        };

        Ok(Self {
            kind,
            metric: req.metric_name,
            start,
            end,
            filters: req.filters.into_iter().collect(),
            group_by: req.group_by,
            interval_ms,
            limit,
            timeout,
        })
    }
}

fn resolve_time_range(
    range: Option<TimeRangeRequest>,
    now: TimestampMs,
) -> Result<(TimestampMs, TimestampMs), QueryError> {
    let range = range.ok_or_else(|| invalid("timeRange is required"))?;
    let (start, end) = match (range.start, range.end, range.relative) {
        (None, None, Some(rel)) => {
            let d = field_duration("timeRange.relative", &rel)?;
            (now.saturating_sub(d.as_millis() as i64), now)
        }
        (Some(start), Some(end), None) => {
            let start = parse_timestamp_json(&start)
                .map_err(|e| invalid(format!("timeRange.start: {e}")))?;
            let end =
                parse_timestamp_json(&end).map_err(|e| invalid(format!("timeRange.end: {e}")))?;
            (start, end)
        }
        (_, _, Some(_)) => {
            return Err(invalid(
                "timeRange: give either relative or start and end, not both",
            ));
        }
        _ => {
            return Err(invalid(
                "timeRange: both start and end are required (or relative)",
            ));
        }
    };
    if start >= end {
        return Err(invalid(format!(
            "timeRange: start ({start}) must be before end ({end})"
        )));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: TimestampMs = 1_800_000_000_000;

    fn plan(body: serde_json::Value) -> Result<QueryPlan, QueryError> {
        let req: QueryRequest = serde_json::from_value(body).map_err(|e| invalid(e.to_string()))?;
        QueryPlan::from_request(req, NOW, &QueryLimits::default())
    }

    fn code(body: serde_json::Value) -> Option<ErrorCode> {
        plan(body).err().map(|e| e.code)
    }

    #[test]
    fn full_aggregate_request() {
        let p = plan(json!({
            "queryType": "aggregate", "metricName": "api_latency",
            "timeRange": {"start": "2027-01-15T07:00:00Z", "end": 1_800_000_000_000i64},
            "filters": {"region": "eu", "customer_id": "c1"}, "aggregation": "p95",
            "groupBy": ["endpoint"], "interval": "1m", "limit": 5, "timeout": "2s"
        }))
        .unwrap();
        assert_eq!(p.kind, QueryKind::Aggregate(Aggregation::P95));
        assert_eq!(p.start, NOW - 3_600_000); // NOW is 2027-01-15T08:00:00Z
        assert_eq!(p.end, NOW);
        assert_eq!(
            p.filters,
            vec![
                ("customer_id".into(), "c1".into()),
                ("region".into(), "eu".into())
            ]
        );
        assert_eq!(p.group_by, vec!["endpoint".to_owned()]);
        assert_eq!(p.interval_ms, Some(60_000));
        assert_eq!(p.limit, 5);
        assert_eq!(p.timeout, Duration::from_secs(2));
    }

    #[test]
    fn relative_range_and_defaults() {
        let p =
            plan(json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}}))
                .unwrap();
        assert_eq!((p.start, p.end), (NOW - 3_600_000, NOW));
        assert_eq!(p.limit, 10_000);
        assert_eq!(p.timeout, Duration::from_secs(10));
        let p = plan(json!({"queryType": "aggregate", "metricName": "m", "aggregation": "sum", "timeRange": {"relative": "2w"}})).unwrap();
        assert_eq!(p.limit, 100);
        assert_eq!(p.start, NOW - 14 * 86_400_000);
    }

    #[test]
    fn every_aggregation_parses() {
        for a in Aggregation::ALL {
            let p = plan(json!({"queryType": "aggregate", "metricName": "m", "aggregation": a.as_str(), "timeRange": {"relative": "1h"}})).unwrap();
            assert_eq!(p.kind, QueryKind::Aggregate(a));
        }
    }

    #[test]
    fn bad_requests_are_invalid_query() {
        let base = || json!({"queryType": "aggregate", "metricName": "m", "aggregation": "avg", "timeRange": {"relative": "1h"}});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        assert_eq!(
            code(with("queryType", json!("histogram"))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("aggregation", json!("median"))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("timeRange", json!({"start": 10, "end": 10}))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("timeRange", json!({"start": 11, "end": 10}))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("timeRange", json!({"start": 10}))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("timeRange", json!({"relative": "1h", "start": 1}))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("timeRange", json!({"relative": "an hour"}))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("interval", json!("500ms"))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(code(with("limit", json!(0))), Some(ErrorCode::InvalidQuery));
        assert_eq!(
            code(with("groupBy", json!(["a", "a"]))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("groupBy", json!(["a-b"]))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("unknownField", json!(1))),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(with("metricName", json!("9bad"))),
            Some(ErrorCode::InvalidMetricName)
        );
        let mut no_range = base();
        no_range.as_object_mut().unwrap().remove("timeRange");
        assert_eq!(code(no_range), Some(ErrorCode::InvalidQuery));
        assert_eq!(
            code(json!({"queryType": "rate", "metricName": "m", "timeRange": {"relative": "1h"}})),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(
                json!({"queryType": "aggregate", "metricName": "m", "timeRange": {"relative": "1h"}})
            ),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            code(
                json!({"queryType": "range", "metricName": "m", "aggregation": "avg", "timeRange": {"relative": "1h"}})
            ),
            Some(ErrorCode::InvalidQuery)
        );
    }

    #[test]
    fn limits_are_enforced_and_named() {
        let limited = |k: &str, v: serde_json::Value| {
            let mut b = json!({"queryType": "aggregate", "metricName": "m", "aggregation": "avg", "timeRange": {"relative": "1h"}});
            b[k] = v;
            plan(b).unwrap_err()
        };
        let e = limited("timeRange", json!({"relative": "91d"}));
        assert_eq!(e.code, ErrorCode::QueryLimitExceeded);
        assert!(e.message.contains("max_query_time_range"), "{}", e.message);
        assert!(
            plan(
                json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "90d"}})
            )
            .is_ok()
        );
        let e = limited("limit", json!(1001));
        assert_eq!(e.code, ErrorCode::QueryLimitExceeded);
        assert!(e.message.contains("max_group_by_cardinality"));
        assert_eq!(
            limited("timeout", json!("31s")).code,
            ErrorCode::QueryLimitExceeded
        );
        let e = plan(json!({"queryType": "range", "metricName": "m", "limit": 10_001, "timeRange": {"relative": "1h"}})).unwrap_err();
        assert!(e.message.contains("max_result_points"));
    }
}
