//! Byte encodings of dataset points, written by hand into a `Vec<u8>` because encoding ten million points
//! through `serde_json` or `format!` would make the client, not the server, the thing being measured.
//!
//! - Luminate's write body: `{"metrics":[{"name", "timestamp", "value", "dimensions"}, ...]}`.
//! - Prometheus text exposition with millisecond timestamps, which VictoriaMetrics imports at
//!   `/api/v1/import/prometheus`.
//! - Tab-separated rows for ClickHouse (`FORMAT TabSeparated`): metric, customer_id, endpoint, region,
//!   status_code, timestamp (Unix ms), value; a dimension a metric does not have is the empty string,
//!   which is also how Luminate groups and filters a missing dimension.
//!
//! No dimension value contains a character any of these formats would need to escape (`"`, `\`, tab,
//! newline): the dimension tables in `dataset` are fixed ASCII.

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
