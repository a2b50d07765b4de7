//! End-to-end API scenarios against the real binary, each run on the embedded engine and on ClickHouse
//! (`embedded::…` and `clickhouse::…`): every route with the seed's example data and hand-computed
//! answers, the write route's limits and error answers, idempotent retries, deletes, and query timeouts.
//! The answers are the same on both: that is the contract.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

on_each_backend!(
    every_route_answers_the_seed_example_exactly,
    partial_and_total_write_failures_name_each_point,
    write_limits_and_encodings,
    query_and_discovery_errors,
    idempotent_retry_returns_the_first_response_and_stores_once,
    admin_delete_before_removes_older_points,
    query_past_its_timeout_answers_504_and_the_server_stays_up,
    long_answers_are_gzipped_for_clients_that_take_it
);

use std::io::Write;

use common::{Backend, gunzip, now_ms, point};
use serde_json::{Value, json};

/// Start of a minute at least 30 minutes ago, so buckets are predictable and every point is valid.
fn minute_base() -> i64 {
    (now_ms() - 30 * 60_000) / 60_000 * 60_000
}

/// The seed's example batch, grown to two customers and three timestamps, plus a counter for rates.
fn seed_example(t0: i64) -> Vec<Value> {
    let users = [("customer_id", "cust_123"), ("endpoint", "/api/users")];
    let orders = [("customer_id", "cust_456"), ("endpoint", "/api/orders")];
    vec![
        point("api_latency", t0, 145.5, &users),
        point(
            "cpu_usage",
            t0,
            75.2,
            &[("customer_id", "cust_123"), ("host", "web-01")],
        ),
        point("api_latency", t0 + 10_000, 100.0, &users),
        point("api_latency", t0 + 60_000, 200.0, &users),
        point("api_latency", t0, 50.0, &orders),
        point("api_latency", t0 + 60_000, 70.0, &orders),
        point(
            "cpu_usage",
            t0,
            60.0,
            &[("customer_id", "cust_456"), ("host", "web-02")],
        ),
        point("requests_total", t0, 10.0, &[("customer_id", "cust_123")]),
        point(
            "requests_total",
            t0 + 15_000,
            20.0,
            &[("customer_id", "cust_123")],
        ),
        point(
            "requests_total",
            t0 + 30_000,
            35.0,
            &[("customer_id", "cust_123")],
        ),
        point(
            "requests_total",
            t0 + 45_000,
            5.0,
            &[("customer_id", "cust_123")],
        ),
        point(
            "requests_total",
            t0 + 60_000,
            25.0,
            &[("customer_id", "cust_123")],
        ),
    ]
}

fn without_time(mut body: Value) -> Value {
    assert!(body["executionTimeMs"].is_u64(), "{body}");
    body.as_object_mut()
        .expect("object")
        .remove("executionTimeMs");
    body
}

fn every_route_answers_the_seed_example_exactly(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t0 = minute_base();
    let range = json!({"start": t0, "end": t0 + 120_000});

    assert_eq!(
        server.write(&seed_example(t0)),
        (200, json!({"accepted": 12, "rejected": 0, "errors": []}))
    );

    let body = server.query(
        &json!({"queryType": "range", "metricName": "api_latency", "timeRange": range,
        "filters": {"customer_id": "cust_123"}}),
    );
    let dims = json!({"customer_id": "cust_123", "endpoint": "/api/users"});
    assert_eq!(
        without_time(body),
        json!({"queryType": "range", "truncated": false, "results": [
            {"timestamp": t0, "value": 145.5, "dimensions": dims},
            {"timestamp": t0 + 10_000, "value": 100.0, "dimensions": dims},
            {"timestamp": t0 + 60_000, "value": 200.0, "dimensions": dims},
        ]})
    );

    // avg by customer: cust_123 (145.5 + 100 + 200) / 3 = 148.5; cust_456 (50 + 70) / 2 = 60.
    let body = server.query(
        &json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
        "aggregation": "avg", "groupBy": ["customer_id"]}),
    );
    assert_eq!(
        without_time(body),
        json!({"queryType": "aggregate", "truncated": false, "results": [
            {"groupKey": {"customer_id": "cust_123"}, "value": 148.5, "count": 3},
            {"groupKey": {"customer_id": "cust_456"}, "value": 60.0, "count": 2},
        ]})
    );

    // Per minute: cust_123's first bucket holds 145.5 and 100 (avg 122.75), its second 200.
    let body = server.query(&json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
        "aggregation": "avg", "groupBy": ["customer_id"], "interval": "1m", "filters": {"customer_id": "cust_123"}}));
    assert_eq!(
        body["results"],
        json!([{"groupKey": {"customer_id": "cust_123"}, "value": 148.5, "count": 3, "points": [
            {"timestamp": t0, "value": 122.75, "count": 2},
            {"timestamp": t0 + 60_000, "value": 200.0, "count": 1},
        ]}])
    );

    // p95 of [50, 70, 100, 145.5, 200]: index min(floor(0.95 × 5), 4) = 4 → 200.
    let body = server.query(&json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range, "aggregation": "p95"}));
    assert_eq!(
        body["results"],
        json!([{"groupKey": {}, "value": 200.0, "count": 5}])
    );
    // Per customer: cust_123 [100, 145.5, 200] → index 2 → 200; cust_456 [50, 70] → index 1 → 70.
    let body = server.query(
        &json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
        "aggregation": "p95", "groupBy": ["customer_id"]}),
    );
    assert_eq!(
        body["results"],
        json!([
            {"groupKey": {"customer_id": "cust_123"}, "value": 200.0, "count": 3},
            {"groupKey": {"customer_id": "cust_456"}, "value": 70.0, "count": 2},
        ])
    );

    // Counter 10, 20, 35, 5 (reset: counts 0), 25: the first minute gains 10 + 15 + 0, the second 20.
    let body = server.query(&json!({"queryType": "rate", "metricName": "requests_total", "timeRange": range, "interval": "1m"}));
    assert_eq!(
        without_time(body),
        json!({"queryType": "rate", "truncated": false, "results": [
            {"groupKey": {}, "points": [{"timestamp": t0, "rate": 25.0 / 60.0}, {"timestamp": t0 + 60_000, "rate": 20.0 / 60.0}]},
        ]})
    );

    assert_eq!(
        server.get("/api/v1/metrics"),
        (
            200,
            json!({"metrics": ["api_latency", "cpu_usage", "requests_total"]})
        )
    );
    assert_eq!(
        server.get("/api/v1/metrics/api_latency/dimensions"),
        (
            200,
            json!({"metric": "api_latency", "dimensions": ["customer_id", "endpoint"]})
        )
    );
    assert_eq!(
        server.get("/api/v1/metrics/api_latency/dimensions/customer_id/values"),
        (
            200,
            json!({"metric": "api_latency", "key": "customer_id", "values": [
            {"value": "cust_123", "points": 3}, {"value": "cust_456", "points": 2}]})
        )
    );
    assert_eq!(
        server.get("/api/v1/metrics/api_latency/dimensions/customer_id/values?prefix=cust_4"),
        (
            200,
            json!({"metric": "api_latency", "key": "customer_id", "values": [{"value": "cust_456", "points": 2}]})
        )
    );
    assert_eq!(
        server
            .get("/api/v1/metrics/api_latency/dimensions/customer_id/values?limit=1")
            .1["values"],
        json!([{"value": "cust_123", "points": 3}])
    );
    let (status, body) =
        server.get("/api/v1/metrics/api_latency/dimensions/customer_id/values?limit=1001");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("QUERY_LIMIT_EXCEEDED"))
    );

    assert_eq!(
        server.get("/api/v1/cardinality?metric=api_latency"),
        (
            200,
            json!({"metrics": [{"metric": "api_latency", "series": 2, "dimensions": [
            {"key": "customer_id", "distinct_values": 2}, {"key": "endpoint", "distinct_values": 2}]}]})
        )
    );
    let (status, body) = server.get("/api/v1/cardinality");
    assert_eq!(status, 200);
    let order: Vec<(&str, u64)> = body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["metric"].as_str().unwrap(), m["series"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        order,
        vec![("api_latency", 2), ("cpu_usage", 2), ("requests_total", 1)]
    );

    let (status, health) = server.get("/api/v1/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_seconds"].is_u64());
    assert_eq!(health["storage"]["backend"], backend.name());
    assert_eq!(health["storage"]["status"], "healthy");
    assert!(health["storage"]["disk_used_bytes"].as_u64().unwrap() > 0);
    assert_eq!(health["checks"]["storage"]["status"], "pass");
    assert!(health["checks"]["storage"]["duration_ms"].is_u64());
}

fn partial_and_total_write_failures_name_each_point(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let now = now_ms();
    let batch = vec![
        point("api_latency", now, 1.0, &[("customer_id", "c1")]),
        point("bad-name", now, 1.0, &[]),
        point("api_latency", now - 8 * 86_400_000, 1.0, &[]),
        json!({"name": "api_latency", "timestamp": now, "value": "abc"}),
        point("api_latency", now, 2.0, &[("_tenant_id", "other")]),
        point("api_latency", now, 3.0, &[]),
    ];
    let (status, body) = server.write(&batch);
    assert_eq!(status, 207, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(2), json!(4))
    );
    let errors: Vec<(u64, Value, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["metric"].clone(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (1, json!("bad-name"), "INVALID_METRIC_NAME"),
            (2, json!("api_latency"), "INVALID_TIMESTAMP"),
            (3, json!("api_latency"), "INVALID_VALUE"),
            (4, json!("api_latency"), "INVALID_DIMENSION"),
        ]
    );
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["error"].as_str().unwrap().is_empty())
    );
    assert_eq!(
        server.count("api_latency"),
        2,
        "the valid points are stored"
    );

    let (status, body) = server.write(&[
        json!({"name": 5, "timestamp": now, "value": 1}),
        point("x", now, f64::MAX, &[("k", "")]),
    ]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["rejected"], 2);
    assert_eq!(
        body["errors"][0],
        json!({"index": 0, "metric": null, "code": "INVALID_METRIC_NAME", "error": body["errors"][0]["error"]})
    );
    assert_eq!(body["errors"][1]["code"], "INVALID_DIMENSION");

    assert_eq!(
        server.write(&[]),
        (200, json!({"accepted": 0, "rejected": 0, "errors": []}))
    );
}

fn write_limits_and_encodings(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let now = now_ms();

    let too_many: Vec<Value> = (0..10_001)
        .map(|i| point("m", now, f64::from(i), &[]))
        .collect();
    let (status, body) = server.write(&too_many);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BATCH_TOO_LARGE");
    assert_eq!(
        body["error"]["details"],
        json!({"max_batch_size": 10_000, "received": 10_001})
    );

    let json_type = [("content-type", "application/json")];
    let huge = vec![b' '; 10 * 1024 * 1024 + 1];
    let (status, body) = server.post_raw("/api/v1/write", &json_type, huge);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );

    // 11 MiB of spaces around an empty batch gzip to about 11 KB: cut off at 10 MiB, never inflated.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(b"{\"metrics\": []").unwrap();
    bomb.write_all(&vec![b' '; 11 * 1024 * 1024]).unwrap();
    bomb.write_all(b"}").unwrap();
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
    let gzip_json = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let (status, body) = server.post_raw("/api/v1/write", &gzip_json, bomb);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );
    assert_eq!(
        server.get("/api/v1/health").0,
        200,
        "the server is still up after the bomb"
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(
        json!({"metrics": [point("gz_metric", now, 4.5, &[("k", "v")])]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let (status, body) = server.post_raw("/api/v1/write", &gzip_json, gz.finish().unwrap());
    assert_eq!(
        (status, body),
        (200, json!({"accepted": 1, "rejected": 0, "errors": []}))
    );
    assert_eq!(server.count("gz_metric"), 1);

    let valid = json!({"metrics": [point("m", now, 1.0, &[])]})
        .to_string()
        .into_bytes();
    let (status, body) = server.post_raw(
        "/api/v1/write",
        &[("content-type", "text/plain")],
        valid.clone(),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
    let (status, body) = server.post_raw(
        "/api/v1/write",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
        valid,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );

    let (status, body) = server.post_raw(
        "/api/v1/write",
        &json_type,
        b"{\"metrics\": [{\"name\": \"m\",}]}".to_vec(),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
    assert_eq!(body["error"]["details"]["offset"], 26, "{body}"); // the `}` after the trailing comma
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("byte offset 26"),
        "{body}"
    );
}

fn query_and_discovery_errors(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let (status, body) = server.post_json(
        "/api/v1/query",
        &json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}, "colour": "red"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_QUERY"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );

    let empty = server.query(&json!({"queryType": "range", "metricName": "never_written", "timeRange": {"relative": "1h"}}));
    assert_eq!(
        without_time(empty),
        json!({"queryType": "range", "results": [], "truncated": false})
    );

    let (status, body) = server.get("/api/v1/metrics/never_written/dimensions");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, body) = server.get("/api/v1/metrics/never_written/dimensions/k/values");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, body) = server.get("/api/v1/no/such/route");
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert_eq!(body["error"]["details"], json!({}));
    let (status, body) = server.delete("/api/v1/query");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
}

fn idempotent_retry_returns_the_first_response_and_stores_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let now = now_ms();
    let body = json!({"metrics": [point("retried", now, 1.0, &[]), point("retried", now, 2.0, &[]), point("retried", now, f64::MAX, &[("k", "")])]});
    let headers = [
        ("content-type", "application/json"),
        ("idempotency-key", "batch-42"),
    ];
    let first = server.post_raw("/api/v1/write", &headers, body.to_string().into_bytes());
    let second = server.post_raw("/api/v1/write", &headers, body.to_string().into_bytes());
    assert_eq!(first.0, 207);
    assert_eq!(first, second);
    assert_eq!(server.count("retried"), 2, "the retry stored nothing");
    let other_key = [
        ("content-type", "application/json"),
        ("idempotency-key", "batch-43"),
    ];
    assert_eq!(
        server
            .post_raw("/api/v1/write", &other_key, body.to_string().into_bytes())
            .0,
        207
    );
    assert_eq!(server.count("retried"), 4, "another key is another write");
}

fn admin_delete_before_removes_older_points(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let now = now_ms();
    let hour = 3_600_000;
    let points = [
        point("old_data", now - 3 * hour, 1.0, &[]),
        point("old_data", now - 2 * hour, 2.0, &[]),
        point("old_data", now - hour, 3.0, &[]),
    ];
    assert_eq!(server.write(&points).0, 200);
    let cutoff = now - 90 * 60_000;
    assert_eq!(
        server.delete(&format!("/api/v1/admin/metrics/old_data?before={cutoff}")),
        (
            200,
            json!({"metric_name": "old_data", "before": cutoff, "deleted_points": 2})
        )
    );
    assert_eq!(server.count("old_data"), 1);
    let (status, body) =
        server.delete("/api/v1/admin/metrics/old_data?before=2024-01-01T00:00:00Z");
    assert_eq!(
        (
            status,
            body["deleted_points"].clone(),
            body["before"].clone()
        ),
        (200, json!(0), json!(1_704_067_200_000i64))
    );
    let (status, body) = server.delete("/api/v1/admin/metrics/old_data?before=yesterday");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_QUERY"))
    );
    let (status, body) = server.delete("/api/v1/admin/metrics/old_data");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_QUERY"))
    );
}

fn query_past_its_timeout_answers_504_and_the_server_stays_up(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    // 200 000 points in 1 000 series: a p99 per series over them takes far longer than 1 ms.
    let t0 = now_ms() - 3_600_000;
    for batch in 0..20 {
        let points: Vec<Value> = (0..10_000)
            .map(|i| {
                let n = batch * 10_000 + i;
                json!({"name": "slow", "timestamp": t0 + n, "value": n % 997,
                       "dimensions": {"series": format!("s{}", n % 1_000)}})
            })
            .collect();
        assert_eq!(server.write(&points).0, 200);
    }
    let query = |timeout: &str| {
        json!({"queryType": "aggregate", "metricName": "slow", "aggregation": "p99",
               "groupBy": ["series"], "timeRange": {"relative": "2h"}, "timeout": timeout})
    };
    let (status, body) = server.post_json("/api/v1/query", &query("1ms"));
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "QUERY_TIMEOUT");
    // The cancelled query left nothing behind: the same query with time to spare answers exactly.
    let body = server.query(&query("30s"));
    assert_eq!(body["results"].as_array().unwrap().len(), 100);
    assert_eq!(server.count("slow"), 200_000);
}

/// One exchange's status, `Content-Encoding` and body bytes as sent (no decoding on the way).
fn raw_exchange(
    method: &str,
    url: &str,
    accept_encoding: Option<&str>,
    body: Option<&Value>,
) -> (u16, Option<String>, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let request = ureq::http::Request::builder().method(method).uri(url);
    let request = match accept_encoding {
        Some(coding) => request.header("accept-encoding", coding),
        None => request,
    };
    let mut response = match body {
        Some(body) => agent.run(
            request
                .header("content-type", "application/json")
                .body(body.to_string())
                .unwrap(),
        ),
        None => agent.run(request.body(()).unwrap()),
    }
    .expect("HTTP exchange");
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    (response.status().as_u16(), encoding, bytes)
}

/// A JSON answer without its timing (two runs of one query differ only there).
fn untimed(bytes: &[u8]) -> Value {
    let mut answer: Value = serde_json::from_slice(bytes).unwrap();
    if let Some(answer) = answer.as_object_mut() {
        answer.remove("executionTimeMs");
    }
    answer
}

fn long_answers_are_gzipped_for_clients_that_take_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t0 = minute_base();
    let points: Vec<Value> = (0..2_000)
        .map(|i| {
            point(
                "gz_metric",
                t0 + i * 100,
                f64::from(i as u32) / 10.0,
                &[("host", "web-01")],
            )
        })
        .collect();
    assert_eq!(server.write(&points).0, 200);
    let range = json!({"queryType": "range", "metricName": "gz_metric", "limit": 2_000,
        "timeRange": {"start": t0, "end": t0 + 3_600_000}});
    let url = server.url("/api/v1/query");

    // 2 000 points: about 100 KB of JSON, sent gzipped to a client that takes gzip, plain otherwise.
    let (status, encoding, plain) = raw_exchange("POST", &url, None, Some(&range));
    assert_eq!((status, encoding), (200, None));
    assert!(plain.len() > 50_000, "{} bytes", plain.len());
    let answer = untimed(&plain);
    assert_eq!(answer["results"].as_array().unwrap().len(), 2_000);
    let (status, encoding, gzipped) =
        raw_exchange("POST", &url, Some("gzip, deflate, br"), Some(&range));
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    assert!(
        gzipped.len() * 5 < plain.len(),
        "{} of {} bytes",
        gzipped.len(),
        plain.len()
    );
    let inflated = gunzip(&gzipped);
    assert_eq!(untimed(&inflated), answer);
    // gzip refused (q=0): plain.
    let (_, encoding, refused) = raw_exchange("POST", &url, Some("gzip;q=0"), Some(&range));
    assert_eq!(encoding, None);
    assert_eq!(untimed(&refused), answer);

    // A short answer goes as it is, and so does a refusal.
    let count = json!({"queryType": "aggregate", "metricName": "gz_metric", "aggregation": "count",
        "timeRange": {"start": t0, "end": t0 + 3_600_000}});
    let (status, encoding, short) = raw_exchange("POST", &url, Some("gzip"), Some(&count));
    assert_eq!((status, encoding), (200, None));
    assert_eq!(untimed(&short)["results"][0]["value"], 2_000.0);
    let bad = json!({"queryType": "aggregate", "metricName": "gz_metric", "aggregation": "p42"});
    let (status, encoding, refusal) = raw_exchange("POST", &url, Some("gzip"), Some(&bad));
    assert_eq!((status, encoding), (400, None));
    assert_eq!(untimed(&refusal)["error"]["code"], "INVALID_QUERY");

    // Prometheus' API too: the same range as a query_range, gzipped and equal to the plain answer.
    let (start, end) = (t0 / 1000, t0 / 1000 + 199);
    let prom = server.url(&format!(
        "/prometheus/api/v1/query_range?query=gz_metric&start={start}&end={end}&step=0.1"
    ));
    let (status, encoding, plain) = raw_exchange("GET", &prom, None, None);
    assert_eq!(
        (status, encoding),
        (200, None),
        "{}",
        String::from_utf8_lossy(&plain)
    );
    let (status, encoding, gzipped) = raw_exchange("GET", &prom, Some("gzip"), None);
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    let inflated = gunzip(&gzipped);
    assert_eq!(inflated, plain);
    let values = &untimed(&plain)["data"]["result"][0]["values"];
    assert_eq!(
        values.as_array().unwrap().len(),
        1_991,
        "{}",
        untimed(&plain)
    );
}
