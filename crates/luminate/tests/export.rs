//! `POST /api/v1/export` and `luminate export` through the real binary, on the embedded engine and on
//! ClickHouse: the exact points of a metric and of all metrics, filters (any-of and the missing
//! dimension), an export far past the 10 000-point `range` limit that a tiny query timeout and
//! response deadline do not cut, tenant isolation, the `read` scope, and bad requests answered in the
//! contract's format. Round trips: an export (JSON lines, CSV, OpenMetrics) imported with `luminate
//! import` into a second, empty server answers every query of the benchmark's query set exactly as
//! the first (whose answers `luminate bench` checked against its exact reference).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{Backend, Launch, Luminate, now_ms, point};
use serde_json::{Value, json};
use tenant_client::{token, with_secret};

/// A point as compared: (name, dimensions, timestamp, value bits).
type Flat = (String, BTreeMap<String, String>, i64, u64);

fn flat(p: &Value) -> Flat {
    let dims = p["dimensions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    (
        p["name"].as_str().unwrap().to_owned(),
        dims,
        p["timestamp"].as_i64().unwrap(),
        p["value"].as_f64().unwrap().to_bits(),
    )
}

fn sorted(mut points: Vec<Flat>) -> Vec<Flat> {
    points.sort();
    points
}

/// POSTs an export request (with a bearer token, if any): status, content type and body text.
fn export_raw(server: &Luminate, body: &str, token: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut request = agent
        .post(server.url("/api/v1/export"))
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send(body.as_bytes()).unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap();
    (status, content_type, text)
}

/// The exported points of a `200`, each line a point of the write route's shape.
fn export(server: &Luminate, request: &Value, token: Option<&str>) -> Vec<Flat> {
    let (status, content_type, text) = export_raw(server, &request.to_string(), token);
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "application/x-ndjson");
    text.lines()
        .map(|line| {
            let p: Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                p.as_object().unwrap().keys().collect::<Vec<_>>(),
                ["name", "timestamp", "value", "dimensions"],
                "{line}"
            );
            flat(&p)
        })
        .collect()
}

/// A minute-aligned time twenty minutes ago.
fn base_ms() -> i64 {
    (now_ms() / 60_000 - 20) * 60_000
}

/// Two metrics, six series (one without `region`), 40 points.
fn dataset(t: i64) -> Vec<Value> {
    let mut points = Vec::new();
    for (h, (host, region)) in [
        ("a", Some("eu")),
        ("b", Some("us")),
        ("c", None),
        ("d", Some("ap")),
    ]
    .into_iter()
    .enumerate()
    {
        let mut dims = vec![("host", host)];
        if let Some(region) = region {
            dims.push(("region", region));
        }
        for i in 0..8 {
            points.push(point(
                "cpu",
                t + i * 1000,
                h as f64 * 10.0 + i as f64 / 4.0,
                &dims,
            ));
        }
    }
    for i in 0..8 {
        points.push(point(
            "mem",
            t + i * 500,
            -(i as f64) * 1.5e-7,
            &[("host", "a")],
        ));
    }
    points
}

fn expected(points: &[Value], keep: impl Fn(&Flat) -> bool) -> Vec<Flat> {
    sorted(points.iter().map(flat).filter(|p| keep(p)).collect())
}

fn exports_the_exact_points_of_a_metric_and_of_all_metrics_with_filters(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t = base_ms();
    let points = dataset(t);
    assert_eq!(server.write(&points).0, 200);
    let range = json!({"start": t, "end": t + 60_000});

    let all = export(&server, &json!({"timeRange": range}), None);
    assert_eq!(all.len(), 40);
    assert_eq!(sorted(all), expected(&points, |_| true));

    let cpu = export(
        &server,
        &json!({"metricName": "cpu", "timeRange": range}),
        None,
    );
    assert_eq!(sorted(cpu), expected(&points, |p| p.0 == "cpu"));

    // Any-of with the missing dimension (`""`), and a time range that cuts the series.
    let filtered = export(
        &server,
        &json!({"metricName": "cpu", "timeRange": {"start": t + 2000, "end": t + 6000},
            "filters": {"region": ["eu", ""], "host": ["a", "b", "c"]}}),
        None,
    );
    let want = expected(&points, |p| {
        p.0 == "cpu"
            && ["eu", ""].contains(&p.1.get("region").map_or("", String::as_str))
            && p.2 >= t + 2000
            && p.2 < t + 6000
    });
    assert_eq!(want.len(), 8);
    assert_eq!(sorted(filtered), want);

    // One value; a value no series has; a metric that does not exist.
    let one = export(
        &server,
        &json!({"timeRange": range, "filters": {"region": "us"}}),
        None,
    );
    assert_eq!(
        sorted(one),
        expected(&points, |p| p.1.get("region").is_some_and(|r| r == "us"))
    );
    let none = export(
        &server,
        &json!({"timeRange": range, "filters": {"region": "nowhere"}}),
        None,
    );
    assert!(none.is_empty());
    let unknown = export(
        &server,
        &json!({"metricName": "absent", "timeRange": range}),
        None,
    );
    assert!(unknown.is_empty());
}

/// An export written back as it is, a JSON-lines write body (`application/x-ndjson`, gzipped too),
/// stores the same points; a line of it left open is refused by its line, and nothing of that body is
/// stored.
fn an_export_written_back_as_json_lines_stores_the_same_points(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let source = backend.launch(&dir.path().join("source")).start();
    let t = base_ms();
    let points = dataset(t);
    assert_eq!(source.write(&points).0, 200);
    let request = json!({"timeRange": {"start": t, "end": t + 60_000}}).to_string();
    let (status, _, text) = export_raw(&source, &request, None);
    assert_eq!(status, 200);

    let target = backend.launch(&dir.path().join("target")).start();
    let lines = [("content-type", "application/x-ndjson")];
    let mut broken: Vec<String> = text.lines().map(str::to_owned).collect();
    // Line 3 left open; with line 4 after it, the two would read as one point.
    broken[2] = broken[2].trim_end_matches('}').to_owned() + ",";
    broken[3] = format!("\"x\":1}}}}\n{}", broken[3]);
    let broken = broken.join("\n");
    let (status, body) = target.post_raw("/api/v1/write", &lines, broken.into_bytes());
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_REQUEST");
    assert_eq!(body["error"]["details"]["line"], 3, "{body}");
    assert!(
        export(
            &target,
            &json!({"timeRange": {"start": t, "end": t + 60_000}}),
            None
        )
        .is_empty()
    );

    // The first half plain, the second gzipped.
    let all: Vec<&str> = text.lines().collect();
    let (first, second) = all.split_at(all.len() / 2);
    let (status, body) = target.post_raw(
        "/api/v1/write",
        &lines,
        (first.join("\n") + "\n").into_bytes(),
    );
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(first.len() as u64)),
        "{body}"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, second.join("\r\n").as_bytes()).unwrap();
    let (status, body) = target.post_raw(
        "/api/v1/write",
        &[
            ("content-type", "application/x-ndjson"),
            ("content-encoding", "gzip"),
        ],
        gz.finish().unwrap(),
    );
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(second.len() as u64)),
        "{body}"
    );
    let again = export(
        &target,
        &json!({"timeRange": {"start": t, "end": t + 60_000}}),
        None,
    );
    assert_eq!(sorted(again), expected(&points, |_| true));
}

fn an_export_past_the_range_limit_is_whole_and_no_timeout_cuts_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // The query timeout (and the response deadline of the other routes) far below what the export
    // takes: neither applies to it.
    let server = backend
        .launch(dir.path())
        .without_rate_limits()
        .env("LUMINATE__QUERY_LIMITS__DEFAULT_QUERY_TIMEOUT", "1ms")
        .env("LUMINATE__QUERY_LIMITS__MAX_QUERY_TIMEOUT", "1ms")
        .start();
    let t = base_ms();
    let n = 25_000;
    let mut written = Vec::new();
    for batch in 0..(n / 5_000) {
        let points: Vec<Value> = (0..5_000)
            .map(|i| {
                let k = batch * 5_000 + i;
                point(
                    "big",
                    t + k as i64,
                    k as f64,
                    &[("shard", &format!("s{}", k % 7))],
                )
            })
            .collect();
        assert_eq!(server.write(&points).0, 200);
        written.extend(points);
    }
    let (status, body) = server.post_json(
        "/api/v1/query",
        &json!({"queryType": "range", "metricName": "big", "timeRange": {"start": t, "end": t + 60_000}}),
    );
    assert_eq!(status, 504, "the query timeout is in force: {body}");
    let exported = export(
        &server,
        &json!({"metricName": "big", "timeRange": {"start": t, "end": t + 60_000}}),
        None,
    );
    assert_eq!(exported.len(), n);
    assert_eq!(sorted(exported), expected(&written, |_| true));
}

fn tenants_and_scopes_bound_what_an_export_sees(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(backend.launch(dir.path())).start();
    let t = base_ms();
    let acme = token("acme", &["read", "write"]);
    let globex = token("globex", &["read", "write"]);
    let write_only = token("acme", &["write"]);
    let write = |token: &str, points: Vec<Value>| {
        let (status, body) = server.post_raw(
            "/api/v1/write",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {token}")),
            ],
            json!({ "metrics": points }).to_string().into_bytes(),
        );
        assert_eq!(status, 200, "{body}");
    };
    let acme_points = vec![
        point("shared_name", t, 1.0, &[("who", "acme")]),
        point("shared_name", t + 1, 2.0, &[("who", "acme")]),
    ];
    write(&acme, acme_points.clone());
    write(
        &globex,
        vec![point("shared_name", t, 9.0, &[("who", "globex")])],
    );
    let request = json!({"timeRange": {"start": t, "end": t + 1000}}).to_string();

    let seen = |token: &str| {
        let (status, _, text) = export_raw(&server, &request, Some(token));
        assert_eq!(status, 200, "{text}");
        sorted(
            text.lines()
                .map(|l| flat(&serde_json::from_str(l).unwrap()))
                .collect(),
        )
    };
    assert_eq!(seen(&acme), expected(&acme_points, |_| true));
    assert_eq!(seen(&globex).len(), 1);
    assert_eq!(seen(&globex)[0].1["who"], "globex");
    // A tenant without data sees nothing.
    assert!(seen(&token("initech", &["read"])).is_empty());

    let (status, _, text) = export_raw(&server, &request, Some(&write_only));
    assert_eq!(status, 403, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["code"],
        "FORBIDDEN"
    );
    let (status, _, text) = export_raw(&server, &request, None);
    assert_eq!(status, 401, "{text}");
}

fn bad_requests_are_answered_in_the_contracts_format(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    for (body, status, code, message) in [
        (
            r#"{"timeRange": {"relative": "1h"}, "limit": 5}"#,
            400,
            "INVALID_QUERY",
            "unknown field `limit`",
        ),
        (
            r#"{"metricName": "cpu"}"#,
            400,
            "INVALID_QUERY",
            "timeRange is required",
        ),
        (
            r#"{"timeRange": {"start": "yesterday", "end": 5}}"#,
            400,
            "INVALID_QUERY",
            "timeRange.start:",
        ),
        (
            r#"{"timeRange": {"start": 5000, "end": 1000}}"#,
            400,
            "INVALID_QUERY",
            "timeRange: start (5000) must be before end (1000)",
        ),
        (
            r#"{"timeRange": {"relative": "1h"}, "filters": {"k": []}}"#,
            400,
            "INVALID_QUERY",
            "filters: \"k\" has an empty list of values",
        ),
        (
            r#"{"timeRange": {"relative": "1h"}, "filters": {"a-b": "x"}}"#,
            400,
            "INVALID_QUERY",
            "filters: \"a-b\" is not a valid dimension key",
        ),
        (
            r#"{"timeRange": {"relative": "1h"}, "filters": {"k": 5}}"#,
            400,
            "INVALID_QUERY",
            "a string or an array of strings",
        ),
        (
            r#"{"metricName": "9cpu", "timeRange": {"relative": "1h"}}"#,
            400,
            "INVALID_METRIC_NAME",
            "metricName:",
        ),
        (
            r#"{"timeRange": "#,
            400,
            "INVALID_QUERY",
            "invalid export request",
        ),
        (r#"[]"#, 400, "INVALID_QUERY", "invalid export request"),
    ] {
        let (got, _, text) = export_raw(&server, body, None);
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got, status, "{body}: {text}");
        assert_eq!(answer["error"]["code"], code, "{body}: {text}");
        let said = answer["error"]["message"].as_str().unwrap();
        assert!(said.contains(message), "{body}: {said}");
    }
    // The server is still fine.
    assert_eq!(server.get("/api/v1/health").0, 200);
}

// ---- round trips through `luminate export` and `luminate import` ----

const BENCH_POINTS: u64 = 20_000;
const BENCH_COUNTER_POINTS: u64 = 2_000;

fn luminate(args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_luminate"));
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            command.env_remove(key);
        }
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The benchmark's dataset loaded by `luminate bench --url` into `server`, which checks every answer
/// of its query set against its exact reference; returns the dataset's hour.
fn load_bench_dataset(server: &Luminate) -> (i64, i64) {
    let hour = 3_600_000;
    let start = (now_ms() / hour - 2) * hour;
    let (code, stdout, stderr) = luminate(&[
        "bench",
        "--url",
        &server.base,
        "--points",
        &BENCH_POINTS.to_string(),
        "--customers",
        "500",
        "--counter-points",
        &BENCH_COUNTER_POINTS.to_string(),
        "--hour-start",
        &start.to_string(),
        "--queries-repeat",
        "1",
        "--seed",
        "11",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["all_checks_passed"], true, "{report}");
    for query in report["queries"].as_array().unwrap() {
        assert_eq!(query["check"], "ok", "{query}");
    }
    (start, start + hour)
}

/// The benchmark's query set (`src/bench/queries.rs`) over `[start, end)`, its customers taken from
/// the data: each request and its answer without `executionTimeMs`.
fn bench_answers(server: &Luminate, start: i64, end: i64) -> Vec<(String, Value)> {
    let range = json!({"start": start, "end": end});
    let customers = server.query(
        &json!({"queryType": "aggregate", "metricName": "api_latency",
        "aggregation": "count", "groupBy": ["customer_id"], "timeRange": range, "limit": 1000}),
    );
    let customers = customers["results"].as_array().unwrap();
    let top = customers[0]["groupKey"]["customer_id"].as_str().unwrap();
    let typical = customers[customers.len() / 2]["groupKey"]["customer_id"]
        .as_str()
        .unwrap();
    let aggregate = |agg: &str, by: &[&str], limit: Option<u64>| {
        let mut q = json!({"queryType": "aggregate", "metricName": "api_latency",
            "timeRange": range, "aggregation": agg, "groupBy": by});
        if let Some(limit) = limit {
            q["limit"] = json!(limit);
        }
        q
    };
    let mut p99 = aggregate("p99", &["endpoint"], None);
    p99["filters"] = json!({"region": "eu-west-1"});
    let rate = |by: &[&str]| {
        json!({"queryType": "rate", "metricName": "requests_total", "timeRange": range,
            "interval": "1m", "groupBy": by})
    };
    let raw = |customer: &str| {
        json!({"queryType": "range", "metricName": "api_latency", "timeRange": range,
            "filters": {"customer_id": customer}})
    };
    let queries = [
        raw(top),
        raw(typical),
        aggregate("avg", &["customer_id"], Some(10)),
        aggregate("count", &["customer_id"], Some(10)),
        aggregate("p95", &["customer_id"], Some(10)),
        p99,
        aggregate("sum", &["region", "status_code"], None),
        rate(&[]),
        rate(&["region"]),
    ];
    let mut answers: Vec<(String, Value)> = queries
        .iter()
        .map(|q| {
            let mut answer = server.query(q);
            answer.as_object_mut().unwrap().remove("executionTimeMs");
            (q.to_string(), answer)
        })
        .collect();
    for path in [
        "/api/v1/metrics/api_latency/dimensions/customer_id/values?limit=100",
        "/api/v1/cardinality?metric=api_latency",
        "/api/v1/metrics",
    ] {
        let (status, answer) = server.get(path);
        assert_eq!(status, 200, "{path}: {answer}");
        answers.push((path.to_owned(), answer));
    }
    answers
}

/// Equal answers: the same shape, strings, integers and order; floats equal, or within 1e-9 relative
/// where a server adds a group's values in its own order (the benchmark's own check).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn export_imported_into_an_empty_server_answers_the_benchmark_queries_identically(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let source = backend
        .launch(&dir.path().join("source"))
        .without_rate_limits()
        .start();
    let (start, end) = load_bench_dataset(&source);
    let want = bench_answers(&source, start, end);
    let points = BENCH_POINTS + BENCH_COUNTER_POINTS;

    for (file, format) in [
        ("export.jsonl", "jsonl"),
        ("export.csv", "csv"),
        ("export.om", "openmetrics"),
    ] {
        let path = dir.path().join(file);
        let path = path.to_str().unwrap();
        let (code, stdout, stderr) = luminate(&[
            "export",
            "--url",
            &source.base,
            "--start",
            &start.to_string(),
            "--end",
            &end.to_string(),
            "-o",
            path,
        ]);
        assert_eq!(code, 0, "{format}: {stderr}");
        assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""), "{format}");
        let text = std::fs::read_to_string(path).unwrap();
        let lines = text.lines().count() as u64;
        match format {
            "csv" => assert_eq!(lines, points + 1),
            "openmetrics" => {
                assert_eq!(lines, points + 1);
                assert!(text.ends_with("# EOF\n"));
            }
            _ => assert_eq!(lines, points),
        }

        let target = backend
            .launch(&dir.path().join(format!("target-{format}")))
            .without_rate_limits()
            .start();
        let (code, stdout, stderr) = luminate(&["import", "--url", &target.base, path]);
        assert_eq!(code, 0, "{format}: {stderr}\n{stdout}");
        assert!(
            stdout.starts_with(&format!(
                "points read {points}, sent {points}, accepted {points}, rejected 0"
            )),
            "{format}: {stdout}"
        );
        let got = bench_answers(&target, start, end);
        for ((query, a), (_, b)) in want.iter().zip(&got) {
            assert!(same(a, b), "{format}: {query}\n{a}\n{b}");
        }
        assert_eq!(want.len(), got.len());
    }
}

on_each_backend!(
    exports_the_exact_points_of_a_metric_and_of_all_metrics_with_filters,
    an_export_written_back_as_json_lines_stores_the_same_points,
    an_export_past_the_range_limit_is_whole_and_no_timeout_cuts_it,
    tenants_and_scopes_bound_what_an_export_sees,
    bad_requests_are_answered_in_the_contracts_format,
    export_imported_into_an_empty_server_answers_the_benchmark_queries_identically,
);

/// Too many exports at once: the tenant's third waits for a slot (`429` with `Retry-After`).
#[test]
fn concurrent_exports_are_bounded_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).without_rate_limits().start();
    let t = base_ms();
    // 300 000 points of 230 bytes each in JSON, about 70 MB: more than the socket buffers can hold
    // (a loopback receive buffer may grow to 32 MB here), so an export nobody reads stays open.
    let padding = "p".repeat(150);
    for batch in 0..30 {
        let points: Vec<Value> = (0..10_000)
            .map(|i| {
                let k = batch * 10_000 + i;
                point(
                    "wide",
                    t + k,
                    k as f64,
                    &[("k", &format!("{padding}{}", k % 100))],
                )
            })
            .collect();
        assert_eq!(server.write(&points).0, 200);
    }
    // Two exports whose bodies are not read hold both of the tenant's slots.
    let open = || {
        let stream =
            std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
        let body = json!({"timeRange": {"start": t, "end": t + 300_000}}).to_string();
        let request = format!(
            "POST /api/v1/export HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        std::io::Write::write_all(&mut &stream, request.as_bytes()).unwrap();
        // The status line: the export has its slot (it is taken before the answer starts). The rest
        // is left unread.
        let mut status = [0u8; 12];
        std::io::Read::read_exact(&mut &stream, &mut status).unwrap();
        assert_eq!(&status, b"HTTP/1.1 200");
        stream
    };
    let held = [open(), open()];
    // Generous bounds: they only matter when the test fails, and under a loaded CI machine the held
    // exports may take seconds to start (and, dropped, to notice their peer is gone).
    let refused = common::eventually(Duration::from_secs(30), || {
        let (status, _, text) = export_raw(
            &server,
            &json!({"timeRange": {"start": t, "end": t + 300_000}}).to_string(),
            None,
        );
        status == 429 && text.contains("RATE_LIMIT_EXCEEDED") && text.contains("2 exports")
    });
    assert!(refused, "a third export of the tenant was not refused");
    drop(held);
    let freed = common::eventually(Duration::from_secs(30), || {
        let (status, _, _) = export_raw(
            &server,
            &json!({"metricName": "wide", "timeRange": {"start": t, "end": t + 300_000}})
                .to_string(),
            None,
        );
        status == 200
    });
    assert!(freed, "the slots were not given back");
}
