//! Byte encodings of dataset points, written by hand into a `Vec<u8>` because encoding ten million points
//! through `serde_json` or `format!` would make the client, not the server, the thing being measured.
//!
//! - Luminate's write body: `{"metrics":[{"name", "timestamp", "value", "dimensions"}, ...]}`.
//! - Prometheus remote write 1.0 (`prometheus.WriteRequest`, protobuf, before snappy): one `TimeSeries`
//!   per sample with the full label set, `__name__` first and the rest sorted by name, which is how
//!   Prometheus' queue manager sends samples. Written with a few lines of protobuf below, sharing
//!   nothing with the server's decoder.
//! - OTLP (`ExportMetricsServiceRequest`): one resource and scope, one metric per body (`api_latency` a
//!   gauge of doubles, `requests_total` a cumulative monotonic sum of integers), the dimensions as data
//!   point attributes; built from `opentelemetry-proto`'s messages, as an SDK's exporter does.
//! - Prometheus text exposition with millisecond timestamps, which VictoriaMetrics imports at
//!   `/api/v1/import/prometheus`.
//! - Tab-separated rows for ClickHouse (`FORMAT TabSeparated`): metric, customer_id, endpoint, region,
//!   status_code, timestamp (Unix ms), value; a dimension a metric does not have is the empty string,
//!   which is also how Luminate groups and filters a missing dimension.
//!
//! No dimension value contains a character any of these formats would need to escape (`"`, `\`, tab,
//! newline): the dimension tables in `dataset` are fixed ASCII.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};

use super::dataset::{
    COUNTER_METRIC, CounterPoint, ENDPOINTS, LATENCY_METRIC, LatencyPoint, REGIONS, STATUS_CODES,
};

/// Appends the decimal digits of `n`.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends a signed integer.
pub fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends tenths as a decimal with one digit after the point (`1234` → `123.4`).
pub fn push_tenths(out: &mut Vec<u8>, tenths: u32) {
    push_u64(out, (tenths / 10) as u64);
    out.push(b'.');
    out.push(b'0' + (tenths % 10) as u8);
}

/// A dataset point in the terms every format needs.
#[derive(Debug, Clone, Copy)]
pub enum Row {
    /// An `api_latency` point.
    Latency(LatencyPoint),
    /// A `requests_total` point.
    Counter(CounterPoint),
}

impl Row {
    /// `(key, value)` dimensions in key order (the order Luminate sorts series by).
    fn dimensions(&self) -> ([&'static str; 4], [&'static str; 4], usize) {
        match self {
            Row::Latency(p) => (
                ["customer_id", "endpoint", "region", "status_code"],
                [
                    "",
                    ENDPOINTS[p.endpoint()],
                    REGIONS[p.region()],
                    STATUS_CODES[p.status()],
                ],
                4,
            ),
            Row::Counter(p) => (
                ["endpoint", "region", "status_code", ""],
                [
                    ENDPOINTS[p.endpoint()],
                    REGIONS[p.region()],
                    STATUS_CODES[p.status()],
                    "",
                ],
                3,
            ),
        }
    }

    fn metric(&self) -> &'static str {
        match self {
            Row::Latency(_) => LATENCY_METRIC,
            Row::Counter(_) => COUNTER_METRIC,
        }
    }

    fn timestamp(&self) -> i64 {
        match self {
            Row::Latency(p) => p.timestamp,
            Row::Counter(p) => p.timestamp,
        }
    }

    fn push_value(&self, out: &mut Vec<u8>) {
        match self {
            Row::Latency(p) => push_tenths(out, p.tenths),
            Row::Counter(p) => push_u64(out, p.value),
        }
    }

    /// The value as a double: tenths divided by ten (correctly rounded, so the same double as parsing
    /// the JSON body's `123.4`), or the counter's integer.
    fn value_f64(&self) -> f64 {
        match self {
            Row::Latency(p) => f64::from(p.tenths) / 10.0,
            Row::Counter(p) => p.value as f64,
        }
    }

    /// `(key, value)` pairs of the dimensions, the customer id written out.
    fn dimension_pairs(&self) -> impl Iterator<Item = (&'static str, String)> {
        let (keys, values, n) = self.dimensions();
        (0..n).map(move |i| {
            let value = if keys[i] == "customer_id" {
                let mut id = Vec::with_capacity(12);
                self.push_customer(&mut id);
                String::from_utf8_lossy(&id).into_owned()
            } else {
                values[i].to_owned()
            };
            (keys[i], value)
        })
    }

    /// Appends the customer id (`cust_N`) of a latency point; nothing for a counter point.
    fn push_customer(&self, out: &mut Vec<u8>) {
        if let Row::Latency(p) = self {
            out.extend_from_slice(b"cust_");
            push_u64(out, p.customer as u64 + 1);
        }
    }
}

/// Builds one write body: `start`, then [`push_json_point`] for each point, then `finish`.
pub fn start_write_body(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"metrics\":[");
}

/// Closes a write body.
pub fn finish_write_body(out: &mut Vec<u8>) {
    out.extend_from_slice(b"]}");
}

/// Appends one point object of a write body (`first` says whether a comma is needed before it).
pub fn push_json_point(out: &mut Vec<u8>, row: &Row, first: bool) {
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"name\":\"");
    out.extend_from_slice(row.metric().as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":");
    push_i64(out, row.timestamp());
    out.extend_from_slice(b",\"value\":");
    row.push_value(out);
    out.extend_from_slice(b",\"dimensions\":{");
    let (keys, values, n) = row.dimensions();
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(keys[i].as_bytes());
        out.extend_from_slice(b"\":\"");
        if keys[i] == "customer_id" {
            row.push_customer(out);
        } else {
            out.extend_from_slice(values[i].as_bytes());
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"}}");
}

/// Appends one Prometheus text line: `name{k="v",...} value timestamp_ms`.
pub fn push_prometheus_line(out: &mut Vec<u8>, row: &Row) {
    out.extend_from_slice(row.metric().as_bytes());
    out.push(b'{');
    let (keys, values, n) = row.dimensions();
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(keys[i].as_bytes());
        out.extend_from_slice(b"=\"");
        if keys[i] == "customer_id" {
            row.push_customer(out);
        } else {
            out.extend_from_slice(values[i].as_bytes());
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"} ");
    row.push_value(out);
    out.push(b' ');
    push_i64(out, row.timestamp());
    out.push(b'\n');
}

/// Appends one ClickHouse TSV row: metric, customer_id, endpoint, region, status_code, timestamp, value.
pub fn push_tsv_row(out: &mut Vec<u8>, row: &Row) {
    out.extend_from_slice(row.metric().as_bytes());
    out.push(b'\t');
    row.push_customer(out);
    let (keys, values, n) = row.dimensions();
    for column in ["endpoint", "region", "status_code"] {
        out.push(b'\t');
        if let Some(i) = (0..n).find(|&i| keys[i] == column) {
            out.extend_from_slice(values[i].as_bytes());
        }
    }
    out.push(b'\t');
    push_i64(out, row.timestamp());
    out.push(b'\t');
    row.push_value(out);
    out.push(b'\n');
}

/// Protobuf wire type of a length-delimited field.
const LEN: u8 = 2;

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field: key, length, bytes.
fn push_len_field(out: &mut Vec<u8>, field: u8, data: &[u8]) {
    out.push(field << 3 | LEN);
    push_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A `prometheus.Label {name = 1, value = 2}` as field 1 of a `TimeSeries`.
fn push_label(series: &mut Vec<u8>, label: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    label.clear();
    push_len_field(label, 1, name);
    push_len_field(label, 2, value);
    push_len_field(series, 1, label);
}

/// Appends one `TimeSeries` (field 1 of a remote write 1.0 `WriteRequest`) with the row's labels and
/// its one sample. `scratch` is reused between calls.
pub fn push_remote_write_series(out: &mut Vec<u8>, row: &Row, scratch: &mut RemoteWriteScratch) {
    let RemoteWriteScratch {
        series,
        label,
        customer,
    } = scratch;
    // `label` holds each label, then the sample: both are written whole before the next is begun.
    series.clear();
    push_label(series, label, b"__name__", row.metric().as_bytes());
    let (keys, values, n) = row.dimensions();
    for i in 0..n {
        let value = if keys[i] == "customer_id" {
            customer.clear();
            row.push_customer(customer);
            customer.as_slice()
        } else {
            values[i].as_bytes()
        };
        push_label(series, label, keys[i].as_bytes(), value);
    }
    // `prometheus.Sample {double value = 1; int64 timestamp = 2}`.
    label.clear();
    label.push(1 << 3 | 1);
    label.extend_from_slice(&row.value_f64().to_le_bytes());
    label.push(2 << 3);
    push_varint(label, row.timestamp() as u64);
    push_len_field(series, 2, label);
    push_len_field(out, 1, series);
}

/// Buffers [`push_remote_write_series`] reuses.
#[derive(Debug, Default)]
pub struct RemoteWriteScratch {
    series: Vec<u8>,
    label: Vec<u8>,
    customer: Vec<u8>,
}

/// The OTLP request of `rows`, which must all be of one metric (the first row's).
pub fn otlp_request(rows: &[Row]) -> ExportMetricsServiceRequest {
    let data_points: Vec<NumberDataPoint> = rows
        .iter()
        .map(|row| NumberDataPoint {
            attributes: row
                .dimension_pairs()
                .map(|(key, value)| KeyValue {
                    key: key.to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(value)),
                    }),
                    ..Default::default()
                })
                .collect(),
            time_unix_nano: row.timestamp() as u64 * 1_000_000,
            value: Some(match row {
                Row::Latency(_) => number_data_point::Value::AsDouble(row.value_f64()),
                Row::Counter(p) => number_data_point::Value::AsInt(p.value as i64),
            }),
            ..Default::default()
        })
        .collect();
    let (name, data) = match rows.first() {
        Some(row @ Row::Counter(_)) => (
            row.metric(),
            metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
        ),
        _ => (LATENCY_METRIC, metric::Data::Gauge(Gauge { data_points })),
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.to_owned(),
                    data: Some(data),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency() -> Row {
        Row::Latency(LatencyPoint {
            timestamp: 1_800_000_000_123,
            customer: 41,
            combination: 123, // endpoint 3, region 1, status 1
            tenths: 1_005,
        })
    }

    fn counter() -> Row {
        Row::Counter(CounterPoint {
            timestamp: 1_800_000_000_000,
            series: 205, // region 0, endpoint 1, status index 2 → "500"
            value: 977,
        })
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn numbers() {
        assert_eq!(text(|o| push_u64(o, 0)), "0");
        assert_eq!(text(|o| push_u64(o, u64::MAX)), u64::MAX.to_string());
        assert_eq!(text(|o| push_i64(o, -42)), "-42");
        assert_eq!(text(|o| push_i64(o, i64::MIN)), i64::MIN.to_string());
        assert_eq!(text(|o| push_tenths(o, 7)), "0.7");
        assert_eq!(text(|o| push_tenths(o, 12_340)), "1234.0");
    }

    #[test]
    fn write_body_is_the_api_json() {
        let body = text(|o| {
            start_write_body(o);
            push_json_point(o, &latency(), true);
            push_json_point(o, &counter(), false);
            finish_write_body(o);
        });
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(
            parsed,
            serde_json::json!({"metrics": [
                {"name": "api_latency", "timestamp": 1_800_000_000_123_i64, "value": 100.5,
                 "dimensions": {"customer_id": "cust_42", "endpoint": "/api/v1/invoices",
                                "region": "us-east-1", "status_code": "201"}},
                {"name": "requests_total", "timestamp": 1_800_000_000_000_i64, "value": 977,
                 "dimensions": {"endpoint": "/api/v1/orders", "region": "eu-west-1", "status_code": "500"}},
            ]})
        );
    }

    /// The points the server's JSON write path reads from `rows` (through `serde_json`, not the server).
    fn json_points(rows: &[Row]) -> Vec<luminate_model::Point> {
        let body = text(|o| {
            start_write_body(o);
            for (i, row) in rows.iter().enumerate() {
                push_json_point(o, row, i == 0);
            }
            finish_write_body(o);
        });
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        parsed["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| luminate_model::Point {
                name: m["name"].as_str().expect("name").to_owned(),
                timestamp: m["timestamp"].as_i64().expect("timestamp"),
                value: m["value"].as_f64().expect("value"),
                dimensions: luminate_model::Dimensions::from_pairs(
                    m["dimensions"]
                        .as_object()
                        .expect("dimensions")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned())),
                ),
            })
            .collect()
    }

    #[test]
    fn remote_write_and_otlp_bodies_decode_to_the_json_bodys_points() {
        use luminate_server::{otlp, remote_write};
        let now = 1_800_000_100_000;
        let rules = luminate_model::ValidationRules::default();
        let latency = [
            latency(),
            Row::Latency(LatencyPoint {
                timestamp: 1_800_000_000_124,
                customer: 99_999,
                combination: 999,
                tenths: 3,
            }),
        ];
        let counters = [counter()];
        for rows in [&latency[..], &counters[..]] {
            let expected = json_points(rows);
            let mut proto = Vec::new();
            let mut scratch = RemoteWriteScratch::default();
            for row in rows {
                push_remote_write_series(&mut proto, row, &mut scratch);
            }
            let decoded =
                remote_write::decode(remote_write::Version::V1, &proto, now, &rules, 100).unwrap();
            let got: Vec<_> = decoded.batches.iter().flat_map(|b| b.to_points()).collect();
            assert_eq!(got, expected, "remote write");
            assert_eq!(decoded.drops.total(), 0);

            let body = prost::Message::encode_to_vec(&otlp_request(rows));
            let export = otlp::decode_protobuf(&body, now, &rules, 100, &[]).unwrap();
            let got: Vec<_> = export
                .decoded
                .batches
                .iter()
                .flat_map(|b| b.to_points())
                .collect();
            assert_eq!(got, expected, "OTLP");
            assert_eq!(export.rejected_data_points, 0);
        }
    }

    #[test]
    fn peer_formats() {
        assert_eq!(
            text(|o| push_prometheus_line(o, &latency())),
            "api_latency{customer_id=\"cust_42\",endpoint=\"/api/v1/invoices\",region=\"us-east-1\",\
             status_code=\"201\"} 100.5 1800000000123\n"
        );
        assert_eq!(
            text(|o| push_prometheus_line(o, &counter())),
            "requests_total{endpoint=\"/api/v1/orders\",region=\"eu-west-1\",status_code=\"500\"} 977 \
             1800000000000\n"
        );
        assert_eq!(
            text(|o| push_tsv_row(o, &latency())),
            "api_latency\tcust_42\t/api/v1/invoices\tus-east-1\t201\t1800000000123\t100.5\n"
        );
        assert_eq!(
            text(|o| push_tsv_row(o, &counter())),
            "requests_total\t\t/api/v1/orders\teu-west-1\t500\t1800000000000\t977\n"
        );
    }
}
