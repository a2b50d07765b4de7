//! The query model (CONTRACT §4): the JSON request, its checks, and what it becomes — a [`QueryPlan`]
//! that backends run over points, or a [`DimensionValuesPlan`] answered like the discovery route
//! (together a [`PlannedQuery`]).
//!
//! Parsing resolves everything relative (ranges ending now, default limits and timeouts) so that a plan
//! is a complete, backend-independent description of the answer.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess};

use crate::error::ErrorCode;
use crate::filter::{Filter, FilterValue, check_filters};
use crate::json::{self, FromObject};
use crate::time::{MIN_TIMESTAMP, TimestampMs, parse_duration, parse_timestamp_json};
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
    /// Longest filter value and `listDimensionValues` prefix, in characters: the longest dimension
    /// value a point may carry, so a longer one could match nothing.
    pub max_value_len: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(10),
            max_timeout: Duration::from_secs(30),
            max_time_range: Duration::from_secs(90 * 86_400),
            max_result_points: 10_000,
            max_group_by_cardinality: 1_000,
            max_value_len: ValidationRules::default().max_value_len,
        }
    }
}

/// Default `limit` of aggregate and rate queries.
pub const DEFAULT_GROUP_LIMIT: usize = 100;
/// Smallest bucket interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Default `limit` of `listDimensionValues` and of the discovery route's values.
pub const DEFAULT_VALUES_LIMIT: usize = 100;
/// Largest `limit` of `listDimensionValues` and of the discovery route's values.
pub const MAX_VALUES_LIMIT: usize = 1_000;

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

/// The request body of `POST /api/v1/query`, exactly as sent: a JSON object (not an array of its
/// fields), no field twice, no filter key twice. `dimension` and `prefix` belong to
/// `listDimensionValues` only.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)] // fields are documented by CONTRACT §4
pub struct QueryRequest {
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(range|aggregate|rate|listDimensionValues)$")
    )]
    pub query_type: String,
    pub metric_name: String,
    pub time_range: Option<TimeRangeRequest>,
    #[serde(default, deserialize_with = "filters")]
    pub filters: BTreeMap<String, FilterValue>,
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(avg|sum|count|min|max|p50|p95|p99|integral)$")
    )]
    pub aggregation: Option<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    pub interval: Option<String>,
    pub limit: Option<u64>,
    pub timeout: Option<String>,
    pub dimension: Option<String>,
    pub prefix: Option<String>,
}

/// `timeRange`: either `start` and `end`, or `relative`; a JSON object.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TimeRangeRequest {
    pub start: Option<serde_json::Value>,
    pub end: Option<serde_json::Value>,
    pub relative: Option<String>,
}

fn filters<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, FilterValue>, D::Error> {
    json::unique_keys(d, "filters")
}

// The derived functions are inherent (`remote = "Self"`); these reach them only through an object.
impl<'de> FromObject<'de> for QueryRequest {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Self::deserialize(MapAccessDeserializer::new(map))
    }
}

impl<'de> Deserialize<'de> for QueryRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json::deserialize_object(d)
    }
}

impl<'de> FromObject<'de> for TimeRangeRequest {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Self::deserialize(MapAccessDeserializer::new(map))
    }
}

impl<'de> Deserialize<'de> for TimeRangeRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json::deserialize_object(d)
    }
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
    /// Filters sorted by key, one per key; all must hold.
    pub filters: Vec<Filter>,
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

pub(crate) fn invalid(message: impl Into<String>) -> QueryError {
    QueryError {
        code: ErrorCode::InvalidQuery,
        message: message.into(),
    }
}

pub(crate) fn over_limit(message: impl Into<String>) -> QueryError {
    QueryError {
        code: ErrorCode::QueryLimitExceeded,
        message: message.into(),
    }
}

fn field_duration(field: &str, text: &str) -> Result<Duration, QueryError> {
    parse_duration(text).map_err(|e| invalid(format!("{field}: {e}")))
}

fn check_metric_name(name: &str) -> Result<(), QueryError> {
    validate_metric_name(name, &ValidationRules::default()).map_err(|e| QueryError {
        code: e.code,
        message: format!("metricName: {}", e.message),
    })
}

fn resolve_timeout(text: Option<&str>, limits: &QueryLimits) -> Result<Duration, QueryError> {
    let Some(text) = text else {
        return Ok(limits.default_timeout);
    };
    let d = field_duration("timeout", text)?;
    if d > limits.max_timeout {
        return Err(over_limit(format!(
            "timeout {text} exceeds max_query_timeout of {}",
            crate::time::format_duration(limits.max_timeout)
        )));
    }
    Ok(d)
}

/// What a request of `POST /api/v1/query` asks for, checked and resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum PlannedQuery {
    /// A range, aggregate or rate query over points.
    Points(QueryPlan),
    /// `listDimensionValues`.
    DimensionValues(DimensionValuesPlan),
}

impl PlannedQuery {
    /// Checks a request of any query type and resolves it against `now` and the limits.
    pub fn from_request(
        req: QueryRequest,
        now: TimestampMs,
        limits: &QueryLimits,
    ) -> Result<Self, QueryError> {
        if req.query_type == LIST_DIMENSION_VALUES {
            DimensionValuesPlan::from_request(req, limits).map(Self::DimensionValues)
        } else {
            QueryPlan::from_request(req, now, limits).map(Self::Points)
        }
    }
}

/// The `queryType` of a [`DimensionValuesPlan`].
pub const LIST_DIMENSION_VALUES: &str = "listDimensionValues";

/// A checked `listDimensionValues` query: the values of one dimension of a metric, by stored points
/// descending then value, as the discovery route lists them (every stored point counts: the query
/// takes no time range).
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionValuesPlan {
    /// The metric.
    pub metric: String,
    /// The dimension key whose values are listed.
    pub dimension: String,
    /// Only values starting with it (`""`: all).
    pub prefix: String,
    /// Most values returned.
    pub limit: usize,
    /// How long the listing may run.
    pub timeout: Duration,
}

impl DimensionValuesPlan {
    /// Checks a `listDimensionValues` request: `metricName`, `dimension`, and optionally `limit`
    /// (default [`DEFAULT_VALUES_LIMIT`], at most [`MAX_VALUES_LIMIT`]), `prefix` and `timeout`; any
    /// other field is refused, naming it, rather than ignored.
    pub fn from_request(req: QueryRequest, limits: &QueryLimits) -> Result<Self, QueryError> {
        if req.query_type != LIST_DIMENSION_VALUES {
            return Err(invalid(format!(
                "queryType: {:?} is not {LIST_DIMENSION_VALUES}",
                req.query_type
            )));
        }
        check_metric_name(&req.metric_name)?;
        if req.time_range.is_some() {
            return Err(invalid(
                "timeRange: listDimensionValues counts every stored point of the metric, as the \
                 discovery route does, and cannot be narrowed to a time range",
            ));
        }
        if !req.filters.is_empty()
            || req.aggregation.is_some()
            || !req.group_by.is_empty()
            || req.interval.is_some()
        {
            return Err(invalid(
                "listDimensionValues takes metricName, dimension, limit, prefix and timeout: \
                 filters, aggregation, groupBy and interval do not apply",
            ));
        }
        let dimension = req
            .dimension
            .ok_or_else(|| invalid("dimension is required for listDimensionValues queries"))?;
        if !is_identifier(&dimension) {
            return Err(invalid(format!(
                "dimension: {dimension:?} is not a valid dimension key"
            )));
        }
        let prefix = req.prefix.unwrap_or_default();
        if prefix.chars().count() > limits.max_value_len {
            return Err(invalid(format!(
                "prefix: longer than the longest dimension value ({} characters)",
                limits.max_value_len
            )));
        }
        let limit = match req.limit {
            None => DEFAULT_VALUES_LIMIT,
            Some(0) => return Err(invalid("limit must be at least 1")),
            Some(n) if n > MAX_VALUES_LIMIT as u64 => {
                return Err(over_limit(format!(
                    "limit {n} exceeds the maximum of {MAX_VALUES_LIMIT} values"
                )));
            }
            Some(n) => n as usize,
        };
        Ok(Self {
            metric: req.metric_name,
            dimension,
            prefix,
            limit,
            timeout: resolve_timeout(req.timeout.as_deref(), limits)?,
        })
    }
}

impl QueryPlan {
    /// Checks a range, aggregate or rate request and resolves it against `now` and the limits
    /// (`listDimensionValues` is [`DimensionValuesPlan`]'s; [`PlannedQuery`] takes every type).
    pub fn from_request(
        req: QueryRequest,
        now: TimestampMs,
        limits: &QueryLimits,
    ) -> Result<Self, QueryError> {
        check_metric_name(&req.metric_name)?;
        if req.dimension.is_some() || req.prefix.is_some() {
            return Err(invalid(format!(
                "dimension and prefix apply only to {LIST_DIMENSION_VALUES} queries"
            )));
        }

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
            LIST_DIMENSION_VALUES => {
                return Err(invalid(format!(
                    "queryType: {LIST_DIMENSION_VALUES} lists dimension values; it is not a query over points"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "queryType: unknown {other:?}; expected range, aggregate, rate or {LIST_DIMENSION_VALUES}"
                )));
            }
        };

        let (start, end) = resolve_time_range(req.time_range, now)?;
        // `start < end`, both within the bounds of `time`: the difference is positive and fits.
        let span = Duration::from_millis(end.abs_diff(start));
        if span > limits.max_time_range {
            return Err(over_limit(format!(
                "time range of {} exceeds max_query_time_range of {}",
                crate::time::format_duration(span),
                crate::time::format_duration(limits.max_time_range)
            )));
        }

        let filters = check_filters(req.filters, limits.max_value_len)?;
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
                // At most `time::MAX_DURATION`, so always representable; checked all the same.
                Some(i64::try_from(d.as_millis()).map_err(|_| {
                    invalid(format!(
                        "interval: {text} is too long to count in milliseconds"
                    ))
                })?)
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

        let timeout = resolve_timeout(req.timeout.as_deref(), limits)?;

        Ok(Self {
            kind,
            metric: req.metric_name,
            start,
            end,
            filters,
            group_by: req.group_by,
            interval_ms,
            limit,
            timeout,
        })
    }
}

/// `[start, end)` of a request's `timeRange` (`relative` ends at `now`).
pub(crate) fn resolve_time_range(
    range: Option<TimeRangeRequest>,
    now: TimestampMs,
) -> Result<(TimestampMs, TimestampMs), QueryError> {
    let range = range.ok_or_else(|| invalid("timeRange is required"))?;
    let (start, end) = match (range.start, range.end, range.relative) {
        (None, None, Some(rel)) => {
            let d = field_duration("timeRange.relative", &rel)?;
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            // Clamped to the epoch, so a plan's start is always a valid timestamp (nothing is stored
            // before it); a relative range longer than the limit is still refused below.
            (now.saturating_sub(ms).max(MIN_TIMESTAMP), now)
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
    use crate::time::MAX_DURATION_MS;
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
                Filter::equals("customer_id", "c1"),
                Filter::equals("region", "eu")
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

    fn rate_over(field: &str, value: serde_json::Value) -> Result<QueryPlan, QueryError> {
        let mut body = json!({"queryType": "rate", "metricName": "m", "interval": "1m",
            "timeRange": {"relative": "1h"}});
        match field {
            "interval" | "timeout" => body[field] = value,
            _ => body["timeRange"] = value,
        }
        plan(body)
    }

    #[test]
    fn durations_that_cannot_be_represented_are_invalid_query_naming_the_field() {
        for (field, value, named) in [
            // u64::MAX - 59 999 ms: as i64 this was an interval of -60 s and negative rates.
            ("interval", json!("18446744073709491616ms"), "interval"),
            ("interval", json!("18446744073709551615ms"), "interval"),
            ("interval", json!("99999999999999999999d"), "interval"),
            ("interval", json!("36501d"), "interval"),
            ("timeout", json!("18446744073709551615ms"), "timeout"),
            ("timeout", json!("99999999999999999999s"), "timeout"),
            (
                "timeRange",
                json!({"relative": "99999999999999999999d"}),
                "timeRange.relative",
            ),
            (
                "timeRange",
                json!({"relative": "18446744073709491616ms"}),
                "timeRange.relative",
            ),
        ] {
            let e = rate_over(field, value.clone()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidQuery, "{value}: {}", e.message);
            assert!(
                e.message.starts_with(&format!("{named}: "))
                    && e.message.contains("longer than the maximum"),
                "{value}: {}",
                e.message
            );
        }
        // Representable but over a limit: the limit's code, as before.
        assert_eq!(
            rate_over("timeout", json!("36500d")).unwrap_err().code,
            ErrorCode::QueryLimitExceeded
        );
        assert_eq!(
            rate_over("timeRange", json!({"relative": "36500d"}))
                .unwrap_err()
                .code,
            ErrorCode::QueryLimitExceeded
        );
        // An interval longer than the range is pointless but harmless: one bucket.
        assert_eq!(
            rate_over("interval", json!("36500d")).unwrap().interval_ms,
            Some(MAX_DURATION_MS as i64)
        );
    }

    #[test]
    fn timestamps_out_of_range_are_invalid_query_naming_the_field() {
        for (start, end, named) in [
            (json!(i64::MIN), json!(NOW), "timeRange.start"),
            (json!(-1), json!(NOW), "timeRange.start"),
            (json!("-9223372036854775808"), json!(NOW), "timeRange.start"),
            (json!("0000-01-01T00:00:00Z"), json!(NOW), "timeRange.start"),
            (json!(NOW), json!(i64::MAX), "timeRange.end"),
            (json!(NOW), json!(u64::MAX), "timeRange.end"),
            (json!(NOW), json!("99999999999999999999"), "timeRange.end"),
            (json!(NOW), json!("9999-12-31T23:59:59Z"), "timeRange.end"),
            (
                json!(NOW),
                json!("2262-04-11T23:47:16.855Z"),
                "timeRange.end",
            ),
        ] {
            let e = plan(json!({"queryType": "range", "metricName": "m",
                "timeRange": {"start": start, "end": end}}))
            .unwrap_err();
            assert_eq!(
                e.code,
                ErrorCode::InvalidQuery,
                "{start} {end}: {}",
                e.message
            );
            assert!(
                e.message.starts_with(&format!("{named}: ")) && e.message.contains("out of range"),
                "{}",
                e.message
            );
        }
        // The whole accepted range is one (over-long) range, not an overflow.
        let e = plan(json!({"queryType": "range", "metricName": "m",
            "timeRange": {"start": MIN_TIMESTAMP, "end": crate::time::MAX_TIMESTAMP}}))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::QueryLimitExceeded, "{}", e.message);
    }

    fn parse(text: &str) -> Result<QueryRequest, String> {
        serde_json::from_str::<QueryRequest>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_repeated_filter_key_is_refused_by_name() {
        let e = parse(
            r#"{"queryType":"range","metricName":"m","timeRange":{"relative":"1h"},
                "filters":{"k":"a","j":"c","k":"b"}}"#,
        )
        .unwrap_err();
        assert!(e.starts_with(r#"filters: key "k" is repeated"#), "{e}");
        let ok =
            parse(r#"{"queryType":"range","metricName":"m","filters":{"k":"a","j":"b"}}"#).unwrap();
        assert_eq!(ok.filters.len(), 2);
    }

    #[test]
    fn a_repeated_field_is_refused() {
        for (text, field) in [
            (
                r#"{"queryType":"range","queryType":"rate","metricName":"m"}"#,
                "queryType",
            ),
            (
                r#"{"queryType":"range","metricName":"m","interval":"1m","interval":"-1ms"}"#,
                "interval",
            ),
            (
                r#"{"queryType":"range","metricName":"m","timeRange":{"relative":"1h","relative":"2h"}}"#,
                "relative",
            ),
            (
                r#"{"queryType":"range","metricName":"m","filters":{},"filters":{}}"#,
                "filters",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.contains(&format!("duplicate field `{field}`")),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn arrays_in_place_of_objects_are_refused() {
        for text in [
            r#"["range", "m", {"relative": "1h"}]"#,
            r#"["range", "m"]"#,
            r#"{"queryType":"range","metricName":"m","timeRange":[null, null, "1h"]}"#,
            r#"{"queryType":"range","metricName":"m","timeRange":[1, 2]}"#,
            r#"{"queryType":"range","metricName":"m","filters":[["k","v"]]}"#,
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.starts_with("invalid type: sequence, expected "),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn a_filter_value_may_be_a_list_of_values() {
        let p = plan(
            json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"},
            "filters": {"region": ["us", "", "eu", "us"], "customer_id": "c1"}}),
        )
        .unwrap();
        assert_eq!(
            p.filters,
            vec![
                Filter::equals("customer_id", "c1"),
                Filter::any_of("region", ["", "eu", "us"])
            ]
        );
        let e = plan(
            json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"},
            "filters": {"region": []}}),
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                ErrorCode::InvalidQuery,
                r#"filters: "region" has an empty list of values; give at least one"#
            )
        );
        let e =
            parse(r#"{"queryType":"range","metricName":"m","filters":{"k":["a",1]}}"#).unwrap_err();
        assert!(
            e.starts_with("invalid type: integer `1`, expected a string"),
            "{e}"
        );
    }

    fn values_plan(body: serde_json::Value) -> Result<PlannedQuery, QueryError> {
        let req: QueryRequest = serde_json::from_value(body).map_err(|e| invalid(e.to_string()))?;
        PlannedQuery::from_request(req, NOW, &QueryLimits::default())
    }

    #[test]
    fn list_dimension_values_is_a_query_type() {
        assert_eq!(
            values_plan(
                json!({"queryType": "listDimensionValues", "metricName": "api_latency",
                "dimension": "customer_id", "limit": 5, "prefix": "cust_1", "timeout": "2s"})
            ),
            Ok(PlannedQuery::DimensionValues(DimensionValuesPlan {
                metric: "api_latency".into(),
                dimension: "customer_id".into(),
                prefix: "cust_1".into(),
                limit: 5,
                timeout: Duration::from_secs(2),
            }))
        );
        assert_eq!(
            values_plan(
                json!({"queryType": "listDimensionValues", "metricName": "m", "dimension": "k"})
            ),
            Ok(PlannedQuery::DimensionValues(DimensionValuesPlan {
                metric: "m".into(),
                dimension: "k".into(),
                prefix: String::new(),
                limit: DEFAULT_VALUES_LIMIT,
                timeout: Duration::from_secs(10),
            }))
        );
        let points = values_plan(
            json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}}),
        );
        assert!(matches!(points, Ok(PlannedQuery::Points(_))), "{points:?}");
    }

    #[test]
    fn list_dimension_values_refuses_what_it_cannot_honour() {
        let with = |k: &str, v: serde_json::Value| {
            let mut b =
                json!({"queryType": "listDimensionValues", "metricName": "m", "dimension": "k"});
            b[k] = v;
            values_plan(b).unwrap_err()
        };
        for (field, value, code, starts) in [
            (
                "timeRange",
                json!({"relative": "1h"}),
                ErrorCode::InvalidQuery,
                "timeRange: listDimensionValues counts every stored point",
            ),
            (
                "filters",
                json!({"a": "b"}),
                ErrorCode::InvalidQuery,
                "listDimensionValues takes metricName, dimension, limit, prefix and timeout",
            ),
            (
                "groupBy",
                json!(["a"]),
                ErrorCode::InvalidQuery,
                "listDimensionValues takes",
            ),
            (
                "aggregation",
                json!("sum"),
                ErrorCode::InvalidQuery,
                "listDimensionValues takes",
            ),
            (
                "interval",
                json!("1m"),
                ErrorCode::InvalidQuery,
                "listDimensionValues takes",
            ),
            (
                "dimension",
                json!("a-b"),
                ErrorCode::InvalidQuery,
                r#"dimension: "a-b" is not a valid dimension key"#,
            ),
            (
                "limit",
                json!(0),
                ErrorCode::InvalidQuery,
                "limit must be at least 1",
            ),
            (
                "limit",
                json!(1001),
                ErrorCode::QueryLimitExceeded,
                "limit 1001 exceeds the maximum of 1000 values",
            ),
            (
                "prefix",
                json!("x".repeat(257)),
                ErrorCode::InvalidQuery,
                "prefix: longer than the longest dimension value (256 characters)",
            ),
            (
                "timeout",
                json!("31s"),
                ErrorCode::QueryLimitExceeded,
                "timeout 31s exceeds max_query_timeout",
            ),
            (
                "metricName",
                json!("9m"),
                ErrorCode::InvalidMetricName,
                "metricName: ",
            ),
        ] {
            let e = with(field, value);
            assert_eq!(e.code, code, "{field}: {}", e.message);
            assert!(e.message.starts_with(starts), "{field}: {}", e.message);
        }
        let range: QueryRequest =
            serde_json::from_value(json!({"queryType": "range", "metricName": "m"})).unwrap();
        assert_eq!(
            DimensionValuesPlan::from_request(range, &QueryLimits::default())
                .unwrap_err()
                .message,
            r#"queryType: "range" is not listDimensionValues"#
        );
        let e = values_plan(json!({"queryType": "listDimensionValues", "metricName": "m"}))
            .unwrap_err();
        assert_eq!(
            e.message,
            "dimension is required for listDimensionValues queries"
        );
        assert!(
            values_plan(
                json!({"queryType": "listDimensionValues", "metricName": "m", "dimension": "k",
                "prefix": "x".repeat(256)})
            )
            .is_ok()
        );
        // The fields of listDimensionValues do not leak into the other query types.
        for field in ["dimension", "prefix"] {
            let mut b =
                json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}});
            b[field] = json!("k");
            let e = values_plan(b).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (
                    ErrorCode::InvalidQuery,
                    "dimension and prefix apply only to listDimensionValues queries"
                )
            );
        }
    }

    /// Extreme values in every time field of a query: a clean error, or a plan whose times are inside
    /// the bounds and consistent with each other — never a panic, never a wrapped number.
    mod extremes {
        use proptest::prelude::*;

        use super::*;
        use crate::time::MAX_TIMESTAMP;

        fn duration_text() -> impl Strategy<Value = String> {
            let number = prop_oneof![
                Just(u64::MAX.to_string()),
                Just((u64::MAX - 59_999).to_string()),
                Just(i64::MAX.to_string()),
                Just(MAX_DURATION_MS.to_string()),
                Just("0".to_owned()),
                Just("-1".to_owned()),
                Just("1.5".to_owned()),
                any::<u64>().prop_map(|n| n.to_string()),
                (0u64..5_000).prop_map(|n| n.to_string()),
                "[0-9]{1,40}",
            ];
            let unit = prop::sample::select(vec!["ms", "s", "m", "h", "d", "w", "", "y"]);
            (number, unit).prop_map(|(n, u)| format!("{n}{u}"))
        }

        fn timestamp_json() -> impl Strategy<Value = serde_json::Value> {
            prop_oneof![
                Just(json!(i64::MIN)),
                Just(json!(i64::MAX)),
                Just(json!(u64::MAX)),
                Just(json!(-1)),
                Just(json!(0)),
                Just(json!(MAX_TIMESTAMP)),
                Just(json!(1.5)),
                Just(json!("9999-12-31T23:59:59Z")),
                Just(json!("0000-01-01T00:00:00Z")),
                Just(json!("99999999999999999999")),
                any::<i64>().prop_map(|n| json!(n)),
                (NOW - 200 * 86_400_000..NOW + 86_400_000).prop_map(|n| json!(n)),
                (NOW - 200 * 86_400_000..NOW + 86_400_000).prop_map(|n| json!(n.to_string())),
            ]
        }

        fn time_range() -> impl Strategy<Value = serde_json::Value> {
            prop_oneof![
                duration_text().prop_map(|r| json!({"relative": r})),
                (timestamp_json(), timestamp_json())
                    .prop_map(|(s, e)| json!({"start": s, "end": e})),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn plan_times_are_bounded_and_consistent(
                range in time_range(),
                interval in duration_text(),
                timeout in prop::option::of(duration_text()),
            ) {
                let limits = QueryLimits::default();
                let mut body = json!({"queryType": "rate", "metricName": "m",
                    "timeRange": range, "interval": interval});
                if let Some(t) = &timeout {
                    body["timeout"] = json!(t);
                }
                match plan(body) {
                    Ok(p) => {
                        prop_assert!(MIN_TIMESTAMP <= p.start && p.start < p.end);
                        prop_assert!(p.end <= MAX_TIMESTAMP.max(NOW));
                        prop_assert!(Duration::from_millis(p.end.abs_diff(p.start)) <= limits.max_time_range);
                        let iv = p.interval_ms.expect("rate has an interval");
                        prop_assert!(iv >= 1_000 && iv as u64 <= MAX_DURATION_MS);
                        prop_assert_eq!(Ok(Duration::from_millis(iv as u64)), parse_duration(&interval));
                        prop_assert!(p.timeout > Duration::ZERO && p.timeout <= limits.max_timeout);
                    }
                    Err(e) => prop_assert!(
                        matches!(e.code, ErrorCode::InvalidQuery | ErrorCode::QueryLimitExceeded),
                        "{:?}", e
                    ),
                }
            }
        }
    }
}
