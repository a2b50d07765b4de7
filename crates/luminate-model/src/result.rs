//! Query and discovery results, serialized exactly as CONTRACT §4–5 shows them.

use serde::Serialize;

use crate::point::Dimensions;
use crate::time::TimestampMs;

/// A group's identity: its groupBy values in groupBy order (a missing dimension is `""`).
/// Keys compare as the list of values, byte-wise, which is the contract's group order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GroupKey(pub Vec<(String, String)>);

impl GroupKey {
    /// The key of `dims` under `group_by`.
    pub fn of(dims: &Dimensions, group_by: &[String]) -> Self {
        Self(
            group_by
                .iter()
                .map(|k| (k.clone(), dims.get_or_empty(k).to_owned()))
                .collect(),
        )
    }

    /// Byte-wise comparison of the value lists (keys are the same groupBy for both sides).
    pub fn cmp_values(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .iter()
            .map(|(_, v)| v.as_bytes())
            .cmp(other.0.iter().map(|(_, v)| v.as_bytes()))
    }
}

impl Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// One raw point of a range query.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangePoint {
    /// Unix ms.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub timestamp: TimestampMs,
    /// The stored value.
    pub value: f64,
    /// The series' dimensions.
    pub dimensions: Dimensions,
}

/// One bucket of an aggregate query with an interval.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketValue {
    /// Bucket start, Unix ms (epoch-aligned).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub timestamp: TimestampMs,
    /// The aggregation over the bucket.
    pub value: f64,
    /// Points in the bucket.
    pub count: u64,
}

/// One group of an aggregate query.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateGroup {
    /// The group.
    pub group_key: GroupKey,
    /// The aggregation over the whole range.
    pub value: f64,
    /// Points in the whole range.
    pub count: u64,
    /// Per-bucket values, ordered by timestamp, when the query has an interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<BucketValue>>,
}

/// One bucket of a rate query.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatePoint {
    /// Bucket start, Unix ms.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub timestamp: TimestampMs,
    /// Summed increase over the group's series divided by the interval in seconds.
    pub rate: f64,
}

/// One group of a rate query.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateGroup {
    /// The group (`{}` without groupBy).
    pub group_key: GroupKey,
    /// Buckets with at least one increase sample, ordered by timestamp.
    pub points: Vec<RatePoint>,
}

/// The answer to a query. The server adds `queryType` and `executionTimeMs` when serializing.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// Raw points ordered by (timestamp, series, value).
    Range {
        /// The points.
        results: Vec<RangePoint>,
        /// More points matched than `limit`.
        truncated: bool,
    },
    /// Groups ordered by value descending, then group key.
    Aggregate {
        /// The groups.
        results: Vec<AggregateGroup>,
        /// More groups existed than `limit`.
        truncated: bool,
    },
    /// Groups ordered by group key.
    Rate {
        /// The groups.
        results: Vec<RateGroup>,
        /// More groups existed than `limit`.
        truncated: bool,
    },
}

impl QueryResult {
    /// `range`, `aggregate` or `rate`.
    pub fn query_type(&self) -> &'static str {
        match self {
            Self::Range { .. } => "range",
            Self::Aggregate { .. } => "aggregate",
            Self::Rate { .. } => "rate",
        }
    }

    /// Whether a limit cut the answer.
    pub fn truncated(&self) -> bool {
        match self {
            Self::Range { truncated, .. }
            | Self::Aggregate { truncated, .. }
            | Self::Rate { truncated, .. } => *truncated,
        }
    }

    /// Number of data points in the answer (for result-size metrics).
    pub fn point_count(&self) -> usize {
        match self {
            Self::Range { results, .. } => results.len(),
            Self::Aggregate { results, .. } => results
                .iter()
                .map(|g| g.points.as_ref().map_or(1, Vec::len))
                .sum(),
            Self::Rate { results, .. } => results.iter().map(|g| g.points.len()).sum(),
        }
    }

    /// The JSON body of CONTRACT §4, serialized straight from the result (no intermediate
    /// `serde_json::Value` tree: a 10 000-point range answer built one spent most of its time in
    /// allocation).
    pub fn response(&self, execution_time_ms: u64) -> QueryResponse<'_> {
        QueryResponse {
            query_type: self.query_type(),
            results: match self {
                Self::Range { results, .. } => Results::Range(results),
                Self::Aggregate { results, .. } => Results::Aggregate(results),
                Self::Rate { results, .. } => Results::Rate(results),
            },
            truncated: self.truncated(),
            execution_time_ms,
            partial: None,
            warnings: None,
        }
    }

    /// [`Self::response`] as a JSON value (tests and tools).
    pub fn to_json(&self, execution_time_ms: u64) -> serde_json::Value {
        serde_json::to_value(self.response(execution_time_ms)).unwrap_or(serde_json::Value::Null)
    }
}

/// The JSON body of a query answer (CONTRACT §4), borrowing the result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResponse<'a> {
    query_type: &'static str,
    results: Results<'a>,
    truncated: bool,
    execution_time_ms: u64,
    /// `true` when part of the stored data could not be read (docs/api.md, *Partial answers*);
    /// absent from a whole answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    partial: Option<bool>,
    /// Why the answer is partial, one sentence per cause; absent from a whole answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

impl QueryResponse<'_> {
    /// The response flagged partial for `warnings` (the backend's `QueryContext::warnings`); left
    /// whole when there are none.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        if !warnings.is_empty() {
            self.partial = Some(true);
            self.warnings = Some(warnings);
        }
        self
    }
}

/// The `results` array of each query type.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Results<'a> {
    Range(&'a [RangePoint]),
    Aggregate(&'a [AggregateGroup]),
    Rate(&'a [RateGroup]),
}

/// A dimension value with the number of stored points carrying it (discovery).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueCount {
    /// The value.
    pub value: String,
    /// Stored points with this value.
    pub points: u64,
}

/// The answer to a `listDimensionValues` query: values as discovery orders them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimensionValuesResult {
    /// At most the query's `limit` values.
    pub values: Vec<ValueCount>,
    /// More values matched than `limit`.
    pub truncated: bool,
}

impl DimensionValuesResult {
    /// The answer from what a store listed when asked for `limit + 1` values (the extra one tells
    /// `truncated`); an unknown metric (`None`) has no values, as any query of it has no points.
    pub fn from_listed(listed: Option<Vec<ValueCount>>, limit: usize) -> Self {
        let mut values = listed.unwrap_or_default();
        let truncated = values.len() > limit;
        values.truncate(limit);
        Self { values, truncated }
    }

    /// The JSON body: `{"queryType": "listDimensionValues", "results": [{"value", "points"}],
    /// "truncated", "executionTimeMs"}`, shaped like the other query types' answers.
    pub fn response(&self, execution_time_ms: u64) -> DimensionValuesResponse<'_> {
        DimensionValuesResponse {
            query_type: crate::query::LIST_DIMENSION_VALUES,
            results: &self.values,
            truncated: self.truncated,
            execution_time_ms,
        }
    }
}

/// The JSON body of a `listDimensionValues` answer, borrowing the result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionValuesResponse<'a> {
    query_type: &'static str,
    results: &'a [ValueCount],
    truncated: bool,
    execution_time_ms: u64,
}

/// Distinct values of one dimension key (cardinality explorer).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyCardinality {
    /// Dimension key.
    pub key: String,
    /// Distinct values among stored series.
    pub distinct_values: u64,
}

/// Series count of one metric and distinct values per dimension key, largest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricCardinality {
    /// Metric name.
    pub metric: String,
    /// Series with at least one stored point.
    pub series: u64,
    /// Per key, by distinct values descending, ties by key.
    pub dimensions: Vec<KeyCardinality>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_key_serializes_in_group_by_order() {
        let key = GroupKey(vec![("z".into(), "1".into()), ("a".into(), "".into())]);
        assert_eq!(serde_json::to_string(&key).unwrap(), r#"{"z":"1","a":""}"#);
    }

    #[test]
    fn dimension_values_answer_is_cut_at_the_limit() {
        let listed = |n: u64| {
            Some(
                (0..n)
                    .map(|i| ValueCount {
                        value: format!("v{i}"),
                        points: 9 - i,
                    })
                    .collect(),
            )
        };
        let r = DimensionValuesResult::from_listed(listed(3), 2);
        assert_eq!(
            serde_json::to_value(r.response(4)).unwrap(),
            serde_json::json!({"queryType": "listDimensionValues", "truncated": true, "executionTimeMs": 4,
                "results": [{"value": "v0", "points": 9}, {"value": "v1", "points": 8}]})
        );
        assert!(!DimensionValuesResult::from_listed(listed(2), 2).truncated);
        assert_eq!(
            DimensionValuesResult::from_listed(None, 2),
            DimensionValuesResult {
                values: vec![],
                truncated: false
            }
        );
    }

    #[test]
    fn aggregate_json_shape() {
        let r = QueryResult::Aggregate {
            results: vec![AggregateGroup {
                group_key: GroupKey::default(),
                value: 1.5,
                count: 2,
                points: None,
            }],
            truncated: false,
        };
        assert_eq!(
            r.to_json(3),
            serde_json::json!({"queryType": "aggregate", "results": [{"groupKey": {}, "value": 1.5, "count": 2}], "truncated": false, "executionTimeMs": 3})
        );
    }
}
