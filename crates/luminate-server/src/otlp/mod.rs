//! OTLP/HTTP metrics bodies (`ExportMetricsServiceRequest`, protobuf or JSON) and their mapping to
//! validated points (docs/ingest.md, "OpenTelemetry"). Owns no HTTP: the route ([`crate::routes::otlp`])
//! picks the encoding from the `Content-Type` and answers.
//!
//! Both encodings are read into `opentelemetry-proto`'s messages (JSON through the lenient structs of
//! [`json`]), so there is one mapping:
//!
//! - gauge and sum data points → one point each (a cumulative monotonic sum is a running total, a delta
//!   sum an increment, a non-monotonic sum a gauge value; the value is stored as sent);
//! - histogram → `<name>_bucket{le}` (cumulative counts, `+Inf` last), `<name>_sum` (when sent) and
//!   `<name>_count`; exponential histogram → the same, its bucket bounds computed from the scale
//!   ([`exponential`]); summary → `<name>{quantile}`, `<name>_sum`, `<name>_count`;
//! - points flagged "no recorded value", NaN/±Inf and exemplars are counted by their [`DropReason`],
//!   never stored silently.
//!
//! Names and keys go through [`protocol_name`] (`.` → `_`); data point attributes are dimensions and
//! resource attributes are added only when their key is in the allowlist. Each point is then validated as a
//! JSON one (at most 20 dimensions, name rules, time window).

mod exponential;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod json;

use std::borrow::Cow;

use luminate_model::validate::{PointError, protocol_name};
use luminate_model::{ErrorCode, ValidationRules};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, exponential_histogram_data_point, metric, number_data_point,
};

use crate::error::ApiError;
use crate::remote_write::{Decoded, DropReason, Mapper, v1::Sample};

/// The resource attributes promoted to dimensions unless `otlp.promote_resource_attributes` says
/// otherwise: the ones that name a service and where it runs. Others (the Python SDK's random
/// `service.instance.id`, `telemetry.sdk.*`, ...) would make a new series per process.
pub const DEFAULT_PROMOTED_RESOURCE_ATTRIBUTES: [&str; 4] = [
    "service.name",
    "service.namespace",
    "deployment.environment",
    "host.name",
];

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE_MASK`.
const NO_RECORDED_VALUE: u32 = 1;

/// A decoded body, with the number of OTLP data points not stored (each counts once, however many
/// points it would have made): the `rejected_data_points` of the answer.
#[derive(Debug, Default)]
pub struct Export {
    /// Points and what was not kept, as for remote write.
    pub decoded: Decoded,
    /// OTLP data points of which something was rejected or dropped (exemplars aside).
    pub rejected_data_points: u64,
}

/// Decodes a protobuf `ExportMetricsServiceRequest` and maps it (a body that is not one is `400`).
pub fn decode_protobuf(
    body: &[u8],
    now: i64,
    rules: &ValidationRules,
    max_batch: usize,
    promoted: &[String],
) -> Result<Export, ApiError> {
    use prost::Message;
    let request = ExportMetricsServiceRequest::decode(body)
        .map_err(|e| ApiError::invalid_request(format!("malformed protobuf body: {e}")))?;
    Ok(map(&request, now, rules, max_batch, promoted))
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest` and maps it.
pub fn decode_json(
    body: &[u8],
    now: i64,
    rules: &ValidationRules,
    max_batch: usize,
    promoted: &[String],
) -> Result<Export, ApiError> {
    let request = json::parse(body)?;
    Ok(map(&request, now, rules, max_batch, promoted))
}

/// A string for an attribute value: scalars as text, arrays and maps as JSON-like text, bytes as hex. A
/// string value is borrowed (the common case: no allocation per attribute).
fn attribute_text(value: &AnyValue) -> Cow<'_, str> {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s),
        None => Cow::Borrowed(""),
        Some(any_value::Value::BoolValue(b)) => Cow::Owned(b.to_string()),
        Some(any_value::Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(any_value::Value::DoubleValue(d)) => Cow::Owned(d.to_string()),
        Some(any_value::Value::BytesValue(b)) => {
            Cow::Owned(b.iter().map(|x| format!("{x:02x}")).collect())
        }
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<Cow<'_, str>> = a.values.iter().map(attribute_text).collect();
            Cow::Owned(format!("[{}]", items.join(",")))
        }
        Some(any_value::Value::KvlistValue(l)) => {
            let items: Vec<String> = l
                .values
                .iter()
                .map(|kv| {
                    format!(
                        "{}={}",
                        kv.key,
                        kv.value.as_ref().map(attribute_text).unwrap_or_default()
                    )
                })
                .collect();
            Cow::Owned(format!("{{{}}}", items.join(",")))
        }
        Some(_) => Cow::Borrowed(""),
    }
}

/// The labels of a data point: promoted resource attributes, then its own (which win on a clash).
/// Attributes named `__…` are left out, as remote write leaves out such labels: `__name__` among them
/// would otherwise rename the metric. Strings are borrowed from the request where they can be.
fn labels<'a>(
    resource: &'a [(String, String)],
    attributes: &'a [KeyValue],
) -> Vec<(&'a str, Cow<'a, str>)> {
    let mut out: Vec<(&str, Cow<'_, str>)> = attributes
        .iter()
        .filter(|kv| !kv.key.starts_with("__"))
        .map(|kv| {
            let value = kv.value.as_ref().map(attribute_text).unwrap_or_default();
            (kv.key.as_str(), value)
        })
        .collect();
    for (k, v) in resource {
        if !out.iter().any(|(key, _)| key == k) {
            out.push((k, Cow::Borrowed(v)));
        }
    }
    out
}

/// Unix nanoseconds to milliseconds.
fn millis(nanos: u64) -> i64 {
    (nanos / 1_000_000) as i64
}

/// Formats a bucket bound or quantile as Prometheus does (`0.5`, `10`, `+Inf`): the shortest decimal
/// that reads back as the same double, never an exponent, `-0` as `0`.
fn bound(value: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

/// One series of `labels` plus `extra`, named `name`, with one sample.
fn emit(
    mapper: &mut Mapper<'_>,
    name: &str,
    labels: &[(&str, Cow<'_, str>)],
    extra: Option<(&str, &str)>,
    timestamp: i64,
    value: f64,
) {
    let all = std::iter::once(("__name__", name))
        .chain(labels.iter().map(|(k, v)| (*k, v.as_ref())))
        .chain(extra);
    mapper.series(all, &[Sample { value, timestamp }]);
}

/// Maps a request to points (see the module doc).
pub fn map(
    request: &ExportMetricsServiceRequest,
    now: i64,
    rules: &ValidationRules,
    max_batch: usize,
    promoted: &[String],
) -> Export {
    let mut mapper = Mapper::new(now, rules, max_batch);
    let mut rejected = 0u64;
    for resource_metrics in &request.resource_metrics {
        let resource: Vec<(String, String)> = resource_metrics
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .filter(|kv| promoted.contains(&kv.key))
            .map(|kv| {
                let value = kv.value.as_ref().map(attribute_text).unwrap_or_default();
                (kv.key.clone(), value.into_owned())
            })
            .collect();
        for scope in &resource_metrics.scope_metrics {
            for metric in &scope.metrics {
                let name = protocol_name(&metric.name).into_owned();
                rejected += map_metric(&mut mapper, &name, &resource, metric.data.as_ref());
            }
        }
    }
    Export {
        decoded: mapper.finish(),
        rejected_data_points: rejected,
    }
}

/// Maps one metric's data points; returns how many of them were not stored in full.
fn map_metric(
    mapper: &mut Mapper<'_>,
    name: &str,
    resource: &[(String, String)],
    data: Option<&metric::Data>,
) -> u64 {
    let mut rejected = 0;
    match data {
        None => {}
        Some(metric::Data::Gauge(g)) => {
            for p in &g.data_points {
                point(mapper, &mut rejected, |m| number(m, name, resource, p));
            }
        }
        Some(metric::Data::Sum(s)) => {
            for p in &s.data_points {
                point(mapper, &mut rejected, |m| number(m, name, resource, p));
            }
        }
        Some(metric::Data::Histogram(h)) => {
            for p in &h.data_points {
                point(mapper, &mut rejected, |m| {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        return m.drop(DropReason::NoRecordedValue, 1);
                    }
                    if !p.bucket_counts.is_empty()
                        && p.bucket_counts.len() != p.explicit_bounds.len() + 1
                    {
                        return m.reject(
                            name,
                            PointError {
                                code: ErrorCode::InvalidValue,
                                message: format!(
                                    "histogram {name:?} has {} bucket counts for {} bounds (needs bounds + 1)",
                                    p.bucket_counts.len(),
                                    p.explicit_bounds.len()
                                ),
                            },
                        );
                    }
                    let buckets = p
                        .bucket_counts
                        .iter()
                        .enumerate()
                        .scan(0u64, |total, (i, n)| {
                            *total = total.saturating_add(*n);
                            let upper = p.explicit_bounds.get(i).copied().unwrap_or(f64::INFINITY);
                            Some((upper, *total))
                        });
                    let labels = labels(resource, &p.attributes);
                    let ts = millis(p.time_unix_nano);
                    histogram_series(m, name, &labels, ts, buckets, p.sum, p.count);
                    m.drop(DropReason::Exemplar, p.exemplars.len());
                });
            }
        }
        Some(metric::Data::Summary(s)) => {
            for p in &s.data_points {
                point(mapper, &mut rejected, |m| {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        return m.drop(DropReason::NoRecordedValue, 1);
                    }
                    let labels = labels(resource, &p.attributes);
                    let ts = millis(p.time_unix_nano);
                    for q in &p.quantile_values {
                        let quantile = bound(q.quantile);
                        emit(m, name, &labels, Some(("quantile", &quantile)), ts, q.value);
                    }
                    emit(m, &format!("{name}_sum"), &labels, None, ts, p.sum);
                    emit(
                        m,
                        &format!("{name}_count"),
                        &labels,
                        None,
                        ts,
                        p.count as f64,
                    );
                });
            }
        }
        Some(metric::Data::ExponentialHistogram(e)) => {
            for p in &e.data_points {
                point(mapper, &mut rejected, |m| {
                    exponential_histogram(m, name, resource, p)
                });
            }
        }
    }
    rejected
}

/// An exponential histogram data point: `le` buckets as for an explicit-bucket one
/// ([`exponential::cumulative`]), `_sum` (when sent) and `_count`.
fn exponential_histogram(
    m: &mut Mapper<'_>,
    name: &str,
    resource: &[(String, String)],
    p: &ExponentialHistogramDataPoint,
) {
    if p.flags & NO_RECORDED_VALUE != 0 {
        return m.drop(DropReason::NoRecordedValue, 1);
    }
    let (positive_offset, positive) = side(p.positive.as_ref());
    let (negative_offset, negative) = side(p.negative.as_ref());
    let Some(buckets) = exponential::cumulative(&exponential::Buckets {
        scale: p.scale,
        zero_count: p.zero_count,
        zero_threshold: p.zero_threshold,
        positive_offset,
        positive,
        negative_offset,
        negative,
    }) else {
        return m.reject(
            name,
            PointError {
                code: ErrorCode::InvalidValue,
                message: format!(
                    "exponential histogram {name:?} has scale {}, outside {}..={}",
                    p.scale,
                    exponential::SCALES.start(),
                    exponential::SCALES.end()
                ),
            },
        );
    };
    let labels = labels(resource, &p.attributes);
    let ts = millis(p.time_unix_nano);
    histogram_series(m, name, &labels, ts, buckets, p.sum, p.count);
    m.drop(DropReason::Exemplar, p.exemplars.len());
}

/// A histogram's series, as Prometheus has them: `<name>_bucket{le}` per (upper bound, cumulative
/// count), `<name>_sum` when sent, and `<name>_count`. Both histogram kinds come here.
fn histogram_series(
    m: &mut Mapper<'_>,
    name: &str,
    labels: &[(&str, Cow<'_, str>)],
    ts: i64,
    cumulative: impl IntoIterator<Item = (f64, u64)>,
    sum: Option<f64>,
    count: u64,
) {
    let bucket = format!("{name}_bucket");
    for (upper, total) in cumulative {
        let le = bound(upper);
        emit(m, &bucket, labels, Some(("le", &le)), ts, total as f64);
    }
    if let Some(sum) = sum {
        emit(m, &format!("{name}_sum"), labels, None, ts, sum);
    }
    emit(m, &format!("{name}_count"), labels, None, ts, count as f64);
}

/// The offset and counts of one side of an exponential histogram (none sent: no buckets).
fn side(buckets: Option<&exponential_histogram_data_point::Buckets>) -> (i32, &[u64]) {
    buckets.map_or((0, &[]), |b| (b.offset, b.bucket_counts.as_slice()))
}

/// Maps one data point with `f`, counting it in `rejected` when anything of it was not stored.
fn point<'r>(mapper: &mut Mapper<'r>, rejected: &mut u64, f: impl FnOnce(&mut Mapper<'r>)) {
    let before = mapper.not_stored();
    f(mapper);
    if mapper.not_stored() > before {
        *rejected += 1;
    }
}

/// A gauge or sum data point.
fn number(
    mapper: &mut Mapper<'_>,
    name: &str,
    resource: &[(String, String)],
    p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint,
) {
    let value = match p.value {
        _ if p.flags & NO_RECORDED_VALUE != 0 => None,
        Some(number_data_point::Value::AsDouble(d)) => Some(d),
        Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
        None => None,
    };
    let Some(value) = value else {
        return mapper.drop(DropReason::NoRecordedValue, 1);
    };
    let labels = labels(resource, &p.attributes);
    emit(mapper, name, &labels, None, millis(p.time_unix_nano), value);
    mapper.drop(DropReason::Exemplar, p.exemplars.len());
}

#[cfg(test)]
mod tests {
    use luminate_model::time::now_ms;
    use opentelemetry_proto::tonic::metrics::v1::{
        AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
        ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric::Data,
        summary_data_point::ValueAtQuantile,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn metric(name: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            data: Some(data),
            ..Default::default()
        }
    }

    fn number(
        ts_ms: i64,
        value: number_data_point::Value,
        attrs: Vec<KeyValue>,
    ) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attrs,
            time_unix_nano: ts_ms as u64 * 1_000_000 + 123,
            value: Some(value),
            ..Default::default()
        }
    }

    fn promoted() -> Vec<String> {
        DEFAULT_PROMOTED_RESOURCE_ATTRIBUTES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    /// Every stored point as `name{k=v,...} ts value`, sorted.
    fn points(export: &Export) -> Vec<String> {
        let mut out: Vec<String> = export
            .decoded
            .batches
            .iter()
            .flat_map(|b| b.iter())
            .map(|p| {
                let dims: Vec<String> = p.pairs().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "{}{{{}}} {} {}",
                    p.name,
                    dims.join(","),
                    p.timestamp,
                    p.value
                )
            })
            .collect();
        out.sort();
        out
    }

    fn run(request: &ExportMetricsServiceRequest) -> Export {
        map(
            request,
            now_ms(),
            &ValidationRules::default(),
            10_000,
            &promoted(),
        )
    }

    #[test]
    fn gauge_and_sums_become_points_with_dotted_names_translated_and_allowlisted_resource() {
        let t = now_ms();
        let req = request(
            vec![
                kv("service.name", "checkout"),
                kv("service.instance.id", "x1"),
            ],
            vec![
                metric(
                    "queue.depth",
                    Data::Gauge(Gauge {
                        data_points: vec![number(
                            t,
                            number_data_point::Value::AsInt(42),
                            vec![kv("queue", "q1")],
                        )],
                    }),
                ),
                metric(
                    "orders.placed",
                    Data::Sum(Sum {
                        data_points: vec![number(
                            t,
                            number_data_point::Value::AsDouble(7.5),
                            vec![kv("region", "eu")],
                        )],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    }),
                ),
            ],
        );
        let export = run(&req);
        assert_eq!(
            points(&export),
            [
                format!("orders_placed{{region=eu,service_name=checkout}} {t} 7.5"),
                format!("queue_depth{{queue=q1,service_name=checkout}} {t} 42"),
            ]
        );
        assert_eq!(export.rejected_data_points, 0);
    }

    #[test]
    fn attributes_named_like_prometheus_internals_neither_rename_nor_label_the_point() {
        let t = now_ms();
        let req = request(
            vec![],
            vec![metric(
                "jobs.done",
                Data::Gauge(Gauge {
                    data_points: vec![number(
                        t,
                        number_data_point::Value::AsInt(3),
                        vec![
                            kv("__name__", "other"),
                            kv("__meta", "x"),
                            kv("queue", "q1"),
                        ],
                    )],
                }),
            )],
        );
        let export = run(&req);
        assert_eq!(points(&export), [format!("jobs_done{{queue=q1}} {t} 3")]);
        assert_eq!(export.rejected_data_points, 0);
    }

    #[test]
    fn histogram_becomes_cumulative_buckets_sum_and_count_and_summary_quantiles() {
        let t = now_ms();
        let histogram = HistogramDataPoint {
            time_unix_nano: t as u64 * 1_000_000,
            count: 3,
            sum: Some(333.0),
            bucket_counts: vec![1, 1, 1],
            explicit_bounds: vec![5.0, 50.0],
            ..Default::default()
        };
        let summary = SummaryDataPoint {
            time_unix_nano: t as u64 * 1_000_000,
            count: 4,
            sum: 10.0,
            quantile_values: vec![ValueAtQuantile {
                quantile: 0.5,
                value: 2.0,
            }],
            ..Default::default()
        };
        let req = request(
            vec![],
            vec![
                metric(
                    "lat",
                    Data::Histogram(Histogram {
                        data_points: vec![histogram],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    }),
                ),
                metric(
                    "rpc",
                    Data::Summary(Summary {
                        data_points: vec![summary],
                    }),
                ),
            ],
        );
        assert_eq!(
            points(&run(&req)),
            [
                format!("lat_bucket{{le=+Inf}} {t} 3"),
                format!("lat_bucket{{le=50}} {t} 2"),
                format!("lat_bucket{{le=5}} {t} 1"),
                format!("lat_count{{}} {t} 3"),
                format!("lat_sum{{}} {t} 333"),
                format!("rpc_count{{}} {t} 4"),
                format!("rpc_sum{{}} {t} 10"),
                format!("rpc{{quantile=0.5}} {t} 2"),
            ]
        );
    }

    #[test]
    fn exponential_histogram_becomes_le_buckets_from_negative_through_zero_to_inf() {
        use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogram;
        use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
        let t = now_ms();
        // Scale 1 (base √2). Recorded: -3 (negative index 3: [-4, -2√2)), 0, 1.2 (index 0: (1, √2]),
        // 1.9 and 2 (index 1: (√2, 2]), 2.5 (index 2: (2, 2√2]). Sorted as text below.
        let point = ExponentialHistogramDataPoint {
            attributes: vec![kv("route", "/a")],
            time_unix_nano: t as u64 * 1_000_000,
            count: 6,
            sum: Some(4.6),
            scale: 1,
            zero_count: 1,
            positive: Some(Buckets {
                offset: 0,
                bucket_counts: vec![1, 2, 1],
            }),
            negative: Some(Buckets {
                offset: 3,
                bucket_counts: vec![1],
            }),
            ..Default::default()
        };
        let req = request(
            vec![],
            vec![metric(
                "rpc.latency",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![point],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                }),
            )],
        );
        let expected = [
            format!("rpc_latency_bucket{{le=+Inf,route=/a}} {t} 6"),
            format!("rpc_latency_bucket{{le=-2.8284271247461903,route=/a}} {t} 1"),
            format!("rpc_latency_bucket{{le=0,route=/a}} {t} 2"),
            format!("rpc_latency_bucket{{le=1.4142135623730951,route=/a}} {t} 3"),
            format!("rpc_latency_bucket{{le=2,route=/a}} {t} 5"),
            format!("rpc_latency_bucket{{le=2.8284271247461903,route=/a}} {t} 6"),
            format!("rpc_latency_count{{route=/a}} {t} 6"),
            format!("rpc_latency_sum{{route=/a}} {t} 4.6"),
        ];
        let export = run(&req);
        assert_eq!(points(&export), expected);
        assert_eq!(export.rejected_data_points, 0);

        // The same point in OTLP/JSON (int32 as a number or a string, 64-bit counts as strings).
        let ns = (t as u64 * 1_000_000).to_string();
        let body = serde_json::json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "rpc.latency", "exponentialHistogram": {"aggregationTemporality": 1,
                "dataPoints": [{"timeUnixNano": ns, "count": "6", "sum": 4.6, "scale": 1,
                    "zeroCount": "1", "attributes": [{"key": "route", "value": {"stringValue": "/a"}}],
                    "positive": {"bucketCounts": ["1", "2", "1"]},
                    "negative": {"offset": "3", "bucketCounts": [1]}}]}}
        ]}]}]});
        let req = json::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(points(&run(&req)), expected);
    }

    #[test]
    fn non_finite_no_recorded_value_bad_buckets_and_too_many_dimensions_are_counted_not_stored() {
        let t = now_ms();
        let mut no_value = number(t, number_data_point::Value::AsDouble(1.0), vec![]);
        no_value.flags = NO_RECORDED_VALUE;
        let many: Vec<KeyValue> = (0..21).map(|i| kv(&format!("k{i}"), "v")).collect();
        let bad_histogram = HistogramDataPoint {
            time_unix_nano: t as u64 * 1_000_000,
            bucket_counts: vec![1, 2],
            explicit_bounds: vec![1.0, 2.0],
            ..Default::default()
        };
        let mut req = request(
            vec![],
            vec![
                metric(
                    "g",
                    Data::Gauge(Gauge {
                        data_points: vec![
                            number(t, number_data_point::Value::AsDouble(f64::NAN), vec![]),
                            no_value,
                            number(t, number_data_point::Value::AsDouble(1.0), many),
                            number(t, number_data_point::Value::AsDouble(2.0), vec![]),
                        ],
                    }),
                ),
                metric("e", Data::ExponentialHistogram(Default::default())),
                metric(
                    "h",
                    Data::Histogram(Histogram {
                        data_points: vec![bad_histogram],
                        aggregation_temporality: 2,
                    }),
                ),
            ],
        );
        if let Some(Data::ExponentialHistogram(e)) =
            &mut req.resource_metrics[0].scope_metrics[0].metrics[1].data
        {
            // Scale 21 is past the spec's 20: the bounds are not computed.
            e.data_points = vec![
                ExponentialHistogramDataPoint {
                    scale: 21,
                    ..Default::default()
                };
                2
            ];
        }
        let export = run(&req);
        assert_eq!(points(&export), [format!("g{{}} {t} 2")]);
        assert_eq!(export.rejected_data_points, 6);
        let drops = export.decoded.drops;
        assert_eq!(drops.get(DropReason::NonFinite), 1);
        assert_eq!(drops.get(DropReason::NoRecordedValue), 1);
        let codes: Vec<ErrorCode> = export
            .decoded
            .rejections
            .iter()
            .map(|r| r.error.code)
            .collect();
        assert_eq!(
            codes,
            [
                ErrorCode::DimensionLimitExceeded,
                ErrorCode::InvalidValue,
                ErrorCode::InvalidValue,
                ErrorCode::InvalidValue
            ]
        );
    }

    #[test]
    fn json_reads_ints_as_strings_or_numbers_and_enums_as_names_or_numbers() {
        let t = now_ms();
        let ns = t as u64 * 1_000_000;
        let body = serde_json::json!({"resourceMetrics": [{
            "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "h1"}}]},
            "scopeMetrics": [{"metrics": [
                {"name": "a", "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                    "isMonotonic": true,
                    "dataPoints": [{"asInt": "9007199254740993", "timeUnixNano": ns.to_string()}]}},
                {"name": "b", "sum": {"aggregationTemporality": 1,
                    "dataPoints": [{"asInt": 5, "timeUnixNano": ns,
                        "attributes": [{"key": "n", "value": {"intValue": "7"}}]}]}},
                {"name": "c", "histogram": {"dataPoints": [{"timeUnixNano": ns.to_string(),
                    "count": "2", "sum": 3.5, "bucketCounts": ["1", 1], "explicitBounds": [1]}]}},
                {"name": "d", "gauge": {"dataPoints": [{"asDouble": "Infinity", "timeUnixNano": ns}]}},
                {"name": "e", "exponentialHistogram": {"dataPoints": [{"scale": 1}]}}
            ]}]
        }]});
        let req = json::parse(body.to_string().as_bytes()).unwrap();
        let export = run(&req);
        assert_eq!(
            points(&export),
            [
                format!("a{{host_name=h1}} {t} 9007199254740992"),
                format!("b{{host_name=h1,n=7}} {t} 5"),
                format!("c_bucket{{host_name=h1,le=+Inf}} {t} 2"),
                format!("c_bucket{{host_name=h1,le=1}} {t} 1"),
                format!("c_count{{host_name=h1}} {t} 2"),
                format!("c_sum{{host_name=h1}} {t} 3.5"),
            ]
        );
        assert_eq!(export.rejected_data_points, 2);
        for bad in [&b"{"[..], br#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "gauge": {"dataPoints": [{"timeUnixNano": "soon"}]}}]}]}]}"#] {
            assert_eq!(json::parse(bad).unwrap_err().code, ErrorCode::InvalidRequest);
        }
    }

    /// A histogram body with one byte changed at `at` (mod its length) to `to`.
    fn mutated(at: usize, to: u8) -> Vec<u8> {
        use prost::Message;
        let t = now_ms();
        let mut body = request(
            vec![kv("service.name", "s")],
            vec![metric(
                "h",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: t as u64 * 1_000_000,
                        count: 2,
                        sum: Some(1.0),
                        bucket_counts: vec![1, 1],
                        explicit_bounds: vec![0.5],
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                }),
            )],
        )
        .encode_to_vec();
        let i = at % body.len();
        body[i] = to;
        body
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Arbitrary bytes, to both decoders: an error or points, never a panic.
        #[test]
        fn random_bodies_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let rules = ValidationRules::default();
            let _ = decode_protobuf(&bytes, now_ms(), &rules, 100, &promoted());
            let _ = decode_json(&bytes, now_ms(), &rules, 100, &promoted());
        }

        /// A valid protobuf body with one byte changed.
        #[test]
        fn mutated_protobuf_never_panics(at in 0usize..4096, to in proptest::prelude::any::<u8>()) {
            let _ = decode_protobuf(&mutated(at, to), now_ms(), &ValidationRules::default(), 100, &promoted());
        }
    }
}
