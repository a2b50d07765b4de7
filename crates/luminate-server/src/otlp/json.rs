//! OTLP/JSON, read leniently into `opentelemetry-proto`'s messages: 64-bit integers as a string or a
//! number, enums as their number or name, doubles also as `"NaN"`/`"Infinity"`, unknown fields ignored,
//! and field names in lowerCamelCase (the spec's) or snake_case. The crate's own `with-serde` is not
//! used: it drops `Metric.data` and string `asInt` (opentelemetry-rust#3527).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::metrics::v1 as metrics;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};
use serde_json::Value;

use crate::error::ApiError;

/// Parses a body (`400` when it is not an `ExportMetricsServiceRequest`).
pub fn parse(body: &[u8]) -> Result<ExportMetricsServiceRequest, ApiError> {
    let request: Request = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("malformed OTLP/JSON body: {e}")))?;
    Ok(request.into_proto())
}

fn invalid<E: serde::de::Error>(what: &str, v: &Value) -> E {
    E::custom(format!("expected {what}, found {v}"))
}

/// A `uint64`/`fixed64` as a number or a decimal string.
fn u64_any<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(0),
        Value::Number(n) => n.as_u64().ok_or_else(|| invalid("an unsigned integer", &v)),
        Value::String(s) => s.parse().map_err(|_| invalid("an unsigned integer", &v)),
        _ => Err(invalid("an unsigned integer", &v)),
    }
}

/// An `int32`/`sint32` as a number or a decimal string.
fn i32_any<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(0);
    }
    i32::try_from(i64_value::<D::Error>(&v)?).map_err(|_| invalid("a 32-bit integer", &v))
}

fn i64_value<E: serde::de::Error>(v: &Value) -> Result<i64, E> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| invalid("an integer", v)),
        Value::String(s) => s.parse().map_err(|_| invalid("an integer", v)),
        _ => Err(invalid("an integer", v)),
    }
}

fn f64_value<E: serde::de::Error>(v: &Value) -> Result<f64, E> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| invalid("a number", v)),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.parse().map_err(|_| invalid("a number", v)),
        },
        _ => Err(invalid("a number", v)),
    }
}

/// A `double` as a number or `"NaN"`, `"Infinity"`, `"-Infinity"` (or a decimal string).
fn f64_any<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(0.0);
    }
    f64_value(&v)
}

fn f64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    f64_value(&v).map(Some)
}

fn i64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    i64_value(&v).map(Some)
}

fn u64_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    let values = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    values
        .iter()
        .map(|v| u64_any(v.clone()).map_err(|e| serde::de::Error::custom(e.to_string())))
        .collect()
}

fn f64_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let values = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    values.iter().map(f64_value).collect()
}

/// `AggregationTemporality` as its number or its name.
fn temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| invalid("an aggregation temporality", &v)),
        Value::String(s) => metrics::AggregationTemporality::from_str_name(s)
            .map(|t| t as i32)
            .or_else(|| s.parse().ok())
            .ok_or_else(|| invalid("an aggregation temporality", &v)),
        _ => Err(invalid("an aggregation temporality", &v)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Request {
    #[serde(alias = "resource_metrics")]
    resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceMetrics {
    resource: Option<Resource>,
    #[serde(alias = "scope_metrics")]
    scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Resource {
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScopeMetrics {
    metrics: Vec<Metric>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyValue {
    key: String,
    value: Option<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AnyValue {
    #[serde(alias = "string_value")]
    string_value: Option<String>,
    #[serde(alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(alias = "int_value")]
    int_value: Option<Value>,
    #[serde(alias = "double_value")]
    double_value: Option<Value>,
    #[serde(alias = "array_value")]
    array_value: Option<Values>,
    #[serde(alias = "kvlist_value")]
    kvlist_value: Option<KeyValues>,
    /// Base64 in OTLP/JSON; kept as the text sent.
    #[serde(alias = "bytes_value")]
    bytes_value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Values {
    values: Vec<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyValues {
    values: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Metric {
    name: String,
    gauge: Option<Points<NumberPoint>>,
    sum: Option<Points<NumberPoint>>,
    histogram: Option<Points<HistogramPoint>>,
    #[serde(alias = "exponential_histogram")]
    exponential_histogram: Option<Points<ExponentialPoint>>,
    summary: Option<Points<SummaryPoint>>,
}

#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Points<P> {
    #[serde(alias = "data_points")]
    data_points: Vec<P>,
    #[serde(alias = "aggregation_temporality", deserialize_with = "temporality")]
    aggregation_temporality: i32,
    #[serde(alias = "is_monotonic")]
    is_monotonic: bool,
}

impl<P> Default for Points<P> {
    fn default() -> Self {
        Self {
            data_points: Vec::new(),
            aggregation_temporality: 0,
            is_monotonic: false,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NumberPoint {
    attributes: Vec<KeyValue>,
    #[serde(alias = "time_unix_nano", deserialize_with = "u64_any")]
    time_unix_nano: u64,
    #[serde(alias = "as_double", deserialize_with = "f64_opt")]
    as_double: Option<f64>,
    #[serde(alias = "as_int", deserialize_with = "i64_opt")]
    as_int: Option<i64>,
    flags: u32,
    exemplars: Vec<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct HistogramPoint {
    attributes: Vec<KeyValue>,
    #[serde(alias = "time_unix_nano", deserialize_with = "u64_any")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "u64_any")]
    count: u64,
    #[serde(deserialize_with = "f64_opt")]
    sum: Option<f64>,
    #[serde(alias = "bucket_counts", deserialize_with = "u64_list")]
    bucket_counts: Vec<u64>,
    #[serde(alias = "explicit_bounds", deserialize_with = "f64_list")]
    explicit_bounds: Vec<f64>,
    flags: u32,
    exemplars: Vec<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ExponentialPoint {
    attributes: Vec<KeyValue>,
    #[serde(alias = "time_unix_nano", deserialize_with = "u64_any")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "u64_any")]
    count: u64,
    #[serde(deserialize_with = "f64_opt")]
    sum: Option<f64>,
    #[serde(deserialize_with = "i32_any")]
    scale: i32,
    #[serde(alias = "zero_count", deserialize_with = "u64_any")]
    zero_count: u64,
    #[serde(alias = "zero_threshold", deserialize_with = "f64_any")]
    zero_threshold: f64,
    positive: Option<ExponentialBuckets>,
    negative: Option<ExponentialBuckets>,
    flags: u32,
    exemplars: Vec<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ExponentialBuckets {
    #[serde(deserialize_with = "i32_any")]
    offset: i32,
    #[serde(alias = "bucket_counts", deserialize_with = "u64_list")]
    bucket_counts: Vec<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SummaryPoint {
    attributes: Vec<KeyValue>,
    #[serde(alias = "time_unix_nano", deserialize_with = "u64_any")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "u64_any")]
    count: u64,
    #[serde(deserialize_with = "f64_any")]
    sum: f64,
    #[serde(alias = "quantile_values")]
    quantile_values: Vec<Quantile>,
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Quantile {
    #[serde(deserialize_with = "f64_any")]
    quantile: f64,
    #[serde(deserialize_with = "f64_any")]
    value: f64,
}

/// An exemplar's place: only counted (see [`crate::remote_write::DropReason::Exemplar`]).
fn exemplars(n: usize) -> Vec<metrics::Exemplar> {
    vec![metrics::Exemplar::default(); n]
}

impl Request {
    fn into_proto(self) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: self
                .resource_metrics
                .into_iter()
                .map(|rm| metrics::ResourceMetrics {
                    resource: rm.resource.map(|r| ProtoResource {
                        attributes: key_values(r.attributes),
                        ..Default::default()
                    }),
                    scope_metrics: rm
                        .scope_metrics
                        .into_iter()
                        .map(|sm| metrics::ScopeMetrics {
                            metrics: sm.metrics.into_iter().map(Metric::into_proto).collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }
}

fn key_values(kvs: Vec<KeyValue>) -> Vec<common::KeyValue> {
    kvs.into_iter()
        .map(|kv| common::KeyValue {
            key: kv.key,
            value: kv.value.map(AnyValue::into_proto),
            ..Default::default()
        })
        .collect()
}

impl AnyValue {
    fn into_proto(self) -> common::AnyValue {
        use common::any_value::Value as V;
        let value = if let Some(s) = self.string_value {
            Some(V::StringValue(s))
        } else if let Some(b) = self.bool_value {
            Some(V::BoolValue(b))
        } else if let Some(i) = self
            .int_value
            .as_ref()
            .and_then(|v| i64_value::<serde_json::Error>(v).ok())
        {
            Some(V::IntValue(i))
        } else if let Some(d) = self
            .double_value
            .as_ref()
            .and_then(|v| f64_value::<serde_json::Error>(v).ok())
        {
            Some(V::DoubleValue(d))
        } else if let Some(a) = self.array_value {
            Some(V::ArrayValue(common::ArrayValue {
                values: a.values.into_iter().map(AnyValue::into_proto).collect(),
            }))
        } else if let Some(l) = self.kvlist_value {
            Some(V::KvlistValue(common::KeyValueList {
                values: key_values(l.values),
            }))
        } else {
            self.bytes_value.map(V::StringValue)
        };
        common::AnyValue { value }
    }
}

impl Metric {
    fn into_proto(self) -> metrics::Metric {
        use metrics::metric::Data;
        let data = if let Some(g) = self.gauge {
            Some(Data::Gauge(metrics::Gauge {
                data_points: g
                    .data_points
                    .into_iter()
                    .map(NumberPoint::into_proto)
                    .collect(),
            }))
        } else if let Some(s) = self.sum {
            Some(Data::Sum(metrics::Sum {
                data_points: s
                    .data_points
                    .into_iter()
                    .map(NumberPoint::into_proto)
                    .collect(),
                aggregation_temporality: s.aggregation_temporality,
                is_monotonic: s.is_monotonic,
            }))
        } else if let Some(h) = self.histogram {
            Some(Data::Histogram(metrics::Histogram {
                data_points: h
                    .data_points
                    .into_iter()
                    .map(|p| metrics::HistogramDataPoint {
                        attributes: key_values(p.attributes),
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        bucket_counts: p.bucket_counts,
                        explicit_bounds: p.explicit_bounds,
                        flags: p.flags,
                        exemplars: exemplars(p.exemplars.len()),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: h.aggregation_temporality,
            }))
        } else if let Some(e) = self.exponential_histogram {
            let buckets = |b: Option<ExponentialBuckets>| {
                b.map(|b| metrics::exponential_histogram_data_point::Buckets {
                    offset: b.offset,
                    bucket_counts: b.bucket_counts,
                })
            };
            Some(Data::ExponentialHistogram(metrics::ExponentialHistogram {
                data_points: e
                    .data_points
                    .into_iter()
                    .map(|p| metrics::ExponentialHistogramDataPoint {
                        attributes: key_values(p.attributes),
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        scale: p.scale,
                        zero_count: p.zero_count,
                        zero_threshold: p.zero_threshold,
                        positive: buckets(p.positive),
                        negative: buckets(p.negative),
                        flags: p.flags,
                        exemplars: exemplars(p.exemplars.len()),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: e.aggregation_temporality,
            }))
        } else {
            self.summary.map(|s| {
                Data::Summary(metrics::Summary {
                    data_points: s
                        .data_points
                        .into_iter()
                        .map(|p| metrics::SummaryDataPoint {
                            attributes: key_values(p.attributes),
                            time_unix_nano: p.time_unix_nano,
                            count: p.count,
                            sum: p.sum,
                            quantile_values: p
                                .quantile_values
                                .into_iter()
                                .map(|q| metrics::summary_data_point::ValueAtQuantile {
                                    quantile: q.quantile,
                                    value: q.value,
                                })
                                .collect(),
                            flags: p.flags,
                            ..Default::default()
                        })
                        .collect(),
                })
            })
        };
        metrics::Metric {
            name: self.name,
            data,
            ..Default::default()
        }
    }
}

impl NumberPoint {
    fn into_proto(self) -> metrics::NumberDataPoint {
        use metrics::number_data_point::Value as V;
        let value = match (self.as_double, self.as_int) {
            (Some(d), _) => Some(V::AsDouble(d)),
            (None, Some(i)) => Some(V::AsInt(i)),
            (None, None) => None,
        };
        metrics::NumberDataPoint {
            attributes: key_values(self.attributes),
            time_unix_nano: self.time_unix_nano,
            flags: self.flags,
            exemplars: exemplars(self.exemplars.len()),
            value,
            ..Default::default()
        }
    }
}
