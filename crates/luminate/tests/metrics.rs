//! Self-metrics through the real binary: after known traffic the exposition shows exactly those
//! counts, and `promtool check metrics` accepts it; the design's ten metric names are there with their
//! types; `metrics.bearer_token` guards it, and with auth on nothing else opens it on the API's address;
//! `metrics.listen` moves it to an address of its own; `metrics.enabled: false` removes it; protected
//! mode refuses an open network address for it.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Launch, Luminate, eventually, get_text, now_ms, point};
use serde_json::json;
use tenant_client::{Client, token, with_secret};

/// The value of the sample written exactly as `series` (name and labels in exposition order).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

/// `promtool check metrics` on `text` (parse and lint); fails loudly when promtool is missing (Debian
/// package `prometheus`, installed by scripts/test.sh) instead of skipping.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required (Debian package `prometheus`; scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Exit code 3 is "linted with problems" (1 would be a parse error). The one problem allowed is the
    // name the design gives the series gauge: Prometheus' convention keeps `_count` for histograms, but
    // operators' rules look for `luminate_series_count`.
    let known = "luminate_series_count non-histogram and non-summary metrics should not have \"_count\" suffix";
    let only_known = output.status.code() == Some(3)
        && report
            .lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.trim() == known);
    assert!(
        output.status.success() || only_known,
        "promtool check metrics failed:\n{report}\n--- exposition ---\n{text}"
    );
}

/// Every sample of `text` belongs to a metric of docs/metrics.md and carries exactly the labels the
/// reference lists for it (plus `le` on histogram buckets): the reference cannot drift from what a
/// busy server exposes.
fn every_sample_is_documented(text: &str) {
    let reference = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md"),
    )
    .unwrap();
    let documented: std::collections::HashMap<String, (String, Vec<String>)> = reference
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let name = cells.first()?.strip_prefix("| `")?.strip_suffix('`')?;
            let labels = cells
                .get(2)?
                .split(", ")
                .filter_map(|l| l.strip_prefix('`')?.strip_suffix('`'))
                .map(str::to_owned)
                .collect();
            Some((name.to_owned(), (cells.get(1)?.to_string(), labels)))
        })
        .collect();
    assert!(documented.len() > 40, "{documented:?}");
    let mut seen = std::collections::HashSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = line.rsplit_once(' ').unwrap().0;
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let mut label_names: Vec<String> = labels
            .trim_end_matches('}')
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| l.split_once('=').unwrap().0.to_owned())
            .filter(|l| l != "le")
            .collect();
        label_names.sort();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (documented.get(base)?.0 == "histogram").then_some(base)
            })
            .unwrap_or(name);
        let (_, expected) = documented
            .get(base)
            .unwrap_or_else(|| panic!("{base} is not in docs/metrics.md"));
        let mut expected = expected.clone();
        expected.sort();
        assert_eq!(label_names, expected, "labels of {line}");
        seen.insert(base.to_owned());
    }
    assert!(
        seen.len() > 35,
        "a busy server exposes most metrics: {seen:?}"
    );
}

fn query(server: &Luminate) -> u16 {
    let body = json!({
        "queryType": "aggregate", "metricName": "cpu", "aggregation": "count",
        "timeRange": {"start": now_ms() - 3_600_000, "end": now_ms() + 60_000},
    });
    server.post_json("/api/v1/query", &body).0
}

#[test]
fn scrape_shows_exact_counts_after_known_traffic() {
    let dir = tempfile::tempdir().unwrap();
    // One query a second: the second of two back-to-back queries is refused. Auth is off, so only the
    // quotas set here are checked (and counted).
    let server = Launch::new(dir.path())
        .env("LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND", "1")
        .env("LUMINATE__RATE_LIMITS__METRICS_PER_SECOND", "1000000")
        .env("LUMINATE__METRICS__INTERVAL", "100ms")
        .start();
    // The retention task's first pass (at start-up) lists the tenants; once it has, it cannot add a
    // delete record to the WAL counts below.
    assert!(eventually(Duration::from_secs(10), || {
        let text = get_text(&server.url("/metrics"), &[]).2;
        sample(
            &text,
            r#"luminate_storage_operations_total{backend="embedded",operation="tenants",outcome="ok"}"#,
        ) == Some(1.0)
    }));
    let now = now_ms();
    let good = |i: usize| point("cpu", now - i as i64, 1.0, &[("host", "a")]);
    let bad = point("9bad", now, 1.0, &[]);
    // 5 + 3 accepted points, 2 rejected with INVALID_METRIC_NAME.
    let batch: Vec<_> = (0..5).map(good).chain([bad.clone(), bad]).collect();
    assert_eq!(server.write(&batch).0, 207);
    assert_eq!(server.write(&(5..8).map(good).collect::<Vec<_>>()).0, 200);
    assert_eq!(query(&server), 200);
    assert_eq!(query(&server), 429);
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(query(&server), 200);
    std::thread::sleep(Duration::from_millis(1_100));
    let invalid = json!({"queryType": "aggregate", "metricName": "cpu"});
    assert_eq!(server.post_json("/api/v1/query", &invalid).0, 400);
    assert_eq!(server.get("/no/such/route/42").0, 404);
    // The collector has seen the one series (`cpu`, host a) once its next round ran.
    assert!(eventually(Duration::from_secs(10), || {
        let text = get_text(&server.url("/metrics"), &[]).2;
        sample(&text, r#"luminate_series_count{tenant="default"}"#) == Some(1.0)
    }));

    let (status, content_type, text) = get_text(&server.url("/metrics"), &[]);
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let expected = [
        ("luminate_up", 1.0),
        (r#"luminate_metrics_ingested_total{tenant="default"}"#, 8.0),
        (
            r#"luminate_write_errors_total{tenant="default",code="INVALID_METRIC_NAME"}"#,
            2.0,
        ),
        (
            r#"luminate_rate_limit_exceeded_total{tenant="default",limit="query_requests_per_second"}"#,
            1.0,
        ),
        (
            r#"luminate_rate_limit_checks_total{tenant="default",limit="query_requests_per_second"}"#,
            4.0,
        ),
        (
            r#"luminate_rate_limit_checks_total{tenant="default",limit="metrics_per_second"}"#,
            2.0,
        ),
        (r#"luminate_active_queries{tenant="default"}"#, 0.0),
        (
            r#"luminate_write_requests_total{tenant="default",outcome="partial"}"#,
            1.0,
        ),
        (
            r#"luminate_write_requests_total{tenant="default",outcome="accepted"}"#,
            1.0,
        ),
        ("luminate_write_latency_seconds_count", 2.0),
        (
            r#"luminate_query_requests_total{tenant="default",query_type="aggregate"}"#,
            2.0,
        ),
        (
            r#"luminate_query_errors_total{query_type="unknown",code="INVALID_QUERY"}"#,
            1.0,
        ),
        (
            r#"luminate_query_result_points_count{query_type="aggregate"}"#,
            2.0,
        ),
        (
            r#"luminate_storage_operations_total{backend="embedded",operation="write",outcome="ok"}"#,
            2.0,
        ),
        (
            r#"luminate_storage_operations_total{backend="embedded",operation="query",outcome="ok"}"#,
            2.0,
        ),
        (
            r#"luminate_storage_write_batch_points_sum{backend="embedded"}"#,
            8.0,
        ),
        (r#"luminate_storage_health{backend="embedded"}"#, 1.0),
        ("luminate_engine_wal_appends_total", 2.0),
        ("luminate_engine_wal_fsync_duration_seconds_count", 2.0),
        ("luminate_engine_wal_fsync_errors_total", 0.0),
        ("luminate_engine_series", 1.0),
        ("luminate_engine_head_points", 8.0),
        (r#"luminate_cardinality_metrics{tenant="default"}"#, 1.0),
        (
            r#"luminate_cardinality_by_metric{tenant="default",metric="cpu"}"#,
            1.0,
        ),
        (
            r#"luminate_cardinality_limit_usage_ratio{tenant="default",limit="max_metrics_per_tenant"}"#,
            0.001,
        ),
        (
            r#"luminate_http_requests_total{method="POST",route="/api/v1/write",status="207",tenant="default"}"#,
            1.0,
        ),
        (
            r#"luminate_http_requests_total{method="POST",route="/api/v1/write",status="200",tenant="default"}"#,
            1.0,
        ),
        (
            r#"luminate_http_requests_total{method="POST",route="/api/v1/query",status="200",tenant="default"}"#,
            2.0,
        ),
        (
            r#"luminate_http_requests_total{method="POST",route="/api/v1/query",status="429",tenant="default"}"#,
            1.0,
        ),
        (
            r#"luminate_http_requests_total{method="GET",route="unmatched",status="404",tenant="-"}"#,
            1.0,
        ),
        (
            r#"luminate_http_request_duration_seconds_count{method="POST",route="/api/v1/query"}"#,
            4.0,
        ),
        (
            r#"luminate_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/v1/write"}"#,
            2.0,
        ),
        // Every observation fell in a finite bucket: the buckets cover what was observed.
        (
            r#"luminate_http_request_duration_seconds_bucket{le="30.0",method="POST",route="/api/v1/write"}"#,
            2.0,
        ),
        (
            r#"luminate_http_request_size_bytes_bucket{le="67108864.0",method="POST",route="/api/v1/write"}"#,
            2.0,
        ),
        (
            r#"luminate_engine_wal_fsync_duration_seconds_bucket{le="30.0"}"#,
            2.0,
        ),
        ("luminate_http_requests_in_flight", 1.0),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("luminate_build_info{version=\"0.1.0\",rustc=\"rustc ")),
        "{text}"
    );
    for figure in [
        "luminate_process_resident_memory_bytes",
        "luminate_process_threads",
        "luminate_process_open_fds",
        r#"luminate_storage_filesystem_available_bytes{backend="embedded"}"#,
        r#"luminate_storage_size_bytes{backend="embedded"}"#,
    ] {
        assert!(sample(&text, figure).unwrap() > 0.0, "{figure}\n{text}");
    }
    // The raw path never becomes a label.
    assert!(!text.contains("/no/such/route"), "{text}");
    promtool_check(&text);
    every_sample_is_documented(&text);
    let scrape_series =
        r#"luminate_http_requests_total{method="GET",route="/metrics",status="200",tenant="-"}"#;
    let scrapes_before = sample(&text, scrape_series).unwrap_or(0.0);

    // Prometheus asks for OpenMetrics first, and gets it.
    let (status, content_type, text) = get_text(
        &server.url("/metrics"),
        &[(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    );
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // The previous scrape is counted now (it finished after its own encoding).
    assert_eq!(
        sample(&text, scrape_series).map(|n| n - scrapes_before),
        Some(1.0),
        "{text}"
    );
}

/// The ten self-metrics the design names ("Self-Monitoring Metrics"), with the type its wording gives
/// each: counters for totals, histograms for latencies, gauges for sizes, counts, health and what is
/// current.
const DESIGN_METRICS: [(&str, &str); 10] = [
    ("luminate_metrics_ingested_total", "counter"),
    ("luminate_write_errors_total", "counter"),
    ("luminate_write_latency_seconds", "histogram"),
    ("luminate_query_latency_seconds", "histogram"),
    ("luminate_storage_size_bytes", "gauge"),
    ("luminate_series_count", "gauge"),
    ("luminate_cardinality_by_metric", "gauge"),
    ("luminate_rate_limit_exceeded_total", "counter"),
    ("luminate_active_queries", "gauge"),
    ("luminate_storage_health", "gauge"),
];

#[test]
fn the_designs_ten_metric_names_are_exposed_with_their_types() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND", "1")
        .env("LUMINATE__METRICS__INTERVAL", "100ms")
        .start();
    let now = now_ms();
    let (status, body) = server.write(&[point("cpu", now, 1.0, &[]), point("9bad", now, 1.0, &[])]);
    assert_eq!(status, 207, "{body}");
    assert_eq!(query(&server), 200);
    assert_eq!(query(&server), 429);
    assert!(eventually(Duration::from_secs(10), || {
        let text = get_text(&server.url("/metrics"), &[]).2;
        sample(&text, r#"luminate_series_count{tenant="default"}"#) == Some(1.0)
    }));
    let text = get_text(&server.url("/metrics"), &[]).2;
    for (name, kind) in DESIGN_METRICS {
        assert!(
            text.lines().any(|l| l == format!("# TYPE {name} {kind}")),
            "{name} is not exposed as a {kind}:\n{text}"
        );
        let sample_name = if kind == "histogram" {
            format!("{name}_bucket")
        } else {
            name.to_owned()
        };
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{sample_name}{{"))
                    || l.starts_with(&format!("{sample_name} "))),
            "{name} has no sample:\n{text}"
        );
    }
    for (series, value) in [
        (r#"luminate_metrics_ingested_total{tenant="default"}"#, 1.0),
        (
            r#"luminate_write_errors_total{tenant="default",code="INVALID_METRIC_NAME"}"#,
            1.0,
        ),
        ("luminate_write_latency_seconds_count", 1.0),
        (
            r#"luminate_query_latency_seconds_count{query_type="aggregate"}"#,
            1.0,
        ),
        (
            r#"luminate_cardinality_by_metric{tenant="default",metric="cpu"}"#,
            1.0,
        ),
        (
            r#"luminate_rate_limit_exceeded_total{tenant="default",limit="query_requests_per_second"}"#,
            1.0,
        ),
        (r#"luminate_active_queries{tenant="default"}"#, 0.0),
        (r#"luminate_storage_health{backend="embedded"}"#, 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
    assert!(sample(&text, r#"luminate_storage_size_bytes{backend="embedded"}"#).unwrap() > 0.0);
    // The names they replaced are gone: no family is exported twice under two names.
    for old in [
        "luminate_points_ingested",
        "luminate_points_rejected",
        "luminate_write_duration_seconds",
        "luminate_query_duration_seconds",
        "luminate_storage_disk_bytes",
        "luminate_cardinality_series",
        "luminate_cardinality_metric_series",
        "luminate_storage_up",
    ] {
        assert!(!text.contains(old), "{old} is still exposed:\n{text}");
    }
}

#[test]
fn bearer_token_guards_the_exposition() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE__METRICS__BEARER_TOKEN", "scrape-s3cret")
        .start();
    let url = server.url("/metrics");
    assert_eq!(get_text(&url, &[]).0, 401);
    assert_eq!(
        get_text(&url, &[("authorization", "Bearer scrape-s3cre")]).0,
        401
    );
    let (status, _, text) = get_text(&url, &[("authorization", "Bearer scrape-s3cret")]);
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "luminate_up"), Some(1.0), "{text}");
    // The API's routes are not affected.
    assert_eq!(server.get("/api/v1/health").0, 200);
}

/// With auth on, the exposition on the API's address names tenants and their metrics, so only
/// `metrics.bearer_token` opens it: without that key nothing does — not a JWT, not even one with every
/// scope — and both the `401` and the start-up log say which key to set; with the key, only that token.
/// On `metrics.listen` (loopback) it stays open, as protected mode allows.
#[test]
fn with_auth_only_the_metrics_token_opens_the_exposition_on_the_api_address() {
    let dir = tempfile::tempdir().unwrap();
    let acme_writes = |server: &Luminate| {
        let reply = Client::of(server).write(
            &token("acme", &["write"]),
            &[point("secret_m", now_ms(), 1.0, &[])],
        );
        assert_eq!(reply.status, 200, "{reply:?}");
    };
    let jwt = format!("Bearer {}", token("acme", &["read", "write", "admin"]));

    let server = with_secret(Launch::new(&dir.path().join("no-token"))).start();
    acme_writes(&server);
    for authorization in [None, Some(jwt.as_str())] {
        let reply = Client::of(&server).send("GET", "/metrics", authorization, None);
        assert_eq!(
            (reply.status, reply.code()),
            (401, "UNAUTHORIZED"),
            "{reply:?}"
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("metrics.bearer_token") && message.contains("metrics.listen"),
            "{message}"
        );
        assert!(!reply.body.to_string().contains("acme"), "{reply:?}");
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer realm=\"luminate\""),
            "{reply:?}"
        );
    }
    assert!(
        server.output().contains("refuses every scrape"),
        "{}",
        server.output()
    );
    drop(server);

    let server = with_secret(Launch::new(&dir.path().join("token")))
        .env("LUMINATE__METRICS__BEARER_TOKEN", "scrape-s3cret")
        .start();
    acme_writes(&server);
    let url = server.url("/metrics");
    for authorization in ["", jwt.as_str(), "Bearer scrape-s3cre"] {
        let headers: &[(&str, &str)] = if authorization.is_empty() {
            &[]
        } else {
            &[("authorization", authorization)]
        };
        let (status, _, body) = get_text(&url, headers);
        assert_eq!(status, 401, "{authorization}: {body}");
        assert!(body.contains("\"UNAUTHORIZED\""), "{body}");
    }
    let (status, _, text) = get_text(&url, &[("authorization", "Bearer scrape-s3cret")]);
    assert_eq!(status, 200);
    assert_eq!(
        sample(&text, r#"luminate_metrics_ingested_total{tenant="acme"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(!server.output().contains("refuses every scrape"));
    drop(server);

    let server = with_secret(Launch::new(&dir.path().join("listen")))
        .env("LUMINATE__METRICS__LISTEN", "127.0.0.1:0")
        .start();
    acme_writes(&server);
    let output = server.output();
    let metrics_base = output
        .lines()
        .find_map(|l| l.strip_prefix("luminate metrics on "))
        .unwrap_or_else(|| panic!("no metrics address in:\n{output}"))
        .trim()
        .to_owned();
    let (status, _, text) = get_text(&format!("{metrics_base}/metrics"), &[]);
    assert_eq!(status, 200);
    assert_eq!(
        sample(&text, r#"luminate_metrics_ingested_total{tenant="acme"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(get_text(&server.url("/metrics"), &[]).0, 404);
    assert!(!output.contains("refuses every scrape"), "{output}");
}

#[test]
fn metrics_listen_serves_the_exposition_only_there() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE__METRICS__LISTEN", "127.0.0.1:0")
        .start();
    // Printed before the API's line, which `start` waited for.
    let output = server.output();
    let metrics_base = output
        .lines()
        .find_map(|l| l.strip_prefix("luminate metrics on "))
        .unwrap_or_else(|| panic!("no metrics address in:\n{output}"))
        .trim()
        .to_owned();
    assert_ne!(metrics_base, server.base);
    assert_eq!(server.get("/api/v1/health").0, 200);
    let (status, _, text) = get_text(&format!("{metrics_base}/metrics"), &[]);
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "luminate_up"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"luminate_http_requests_total{method="GET",route="/api/v1/health",status="200",tenant="-"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // Not on the API's address, and the API is not on the metrics address.
    assert_eq!(get_text(&server.url("/metrics"), &[]).0, 404);
    assert_eq!(
        get_text(&format!("{metrics_base}/api/v1/health"), &[]).0,
        404
    );
    // Both listeners stop on SIGTERM, and the process exits cleanly.
    assert!(server.terminate().success());
    assert!(eventually(Duration::from_secs(5), || {
        std::net::TcpStream::connect(metrics_base.trim_start_matches("http://")).is_err()
    }));
}

#[test]
fn disabled_metrics_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE__METRICS__ENABLED", "false")
        .start();
    assert_eq!(get_text(&server.url("/metrics"), &[]).0, 404);
    assert_eq!(server.get("/api/v1/health").0, 200);
}

#[test]
fn protected_mode_refuses_an_open_metrics_address() {
    let dir = tempfile::tempdir().unwrap();
    let (status, output) = Launch::new(dir.path())
        .env("LUMINATE__METRICS__LISTEN", "0.0.0.0:0")
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("metrics.listen"), "{output}");
    assert!(output.contains("metrics.bearer_token"), "{output}");
}

/// On the ClickHouse backend: requests to ClickHouse are counted by operation and outcome; when it
/// dies, the breaker opens (`breaker_state` 2), the collector reports the storage down, and failed
/// writes are counted by kind; when it returns, all of it goes back.
#[cfg(feature = "clickhouse")]
#[test]
fn clickhouse_requests_breaker_and_storage_health_are_exposed() {
    use luminate_clickhouse::testing::ClickhouseServer;

    let mut clickhouse = ClickhouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .clickhouse(&[&clickhouse.address()], "self_metrics")
        .env("LUMINATE_CLICKHOUSE_BREAKER_COOL_DOWN", "2s")
        .env("LUMINATE__METRICS__INTERVAL", "100ms")
        .start();
    let scrape = || get_text(&server.url("/metrics"), &[]).2;
    let now = now_ms();
    for i in 0..2 {
        assert_eq!(
            server
                .write(&[point("cpu", now - i, 1.0, &[("host", "a")])])
                .0,
            200
        );
    }
    assert_eq!(query(&server), 200);
    let text = scrape();
    for (series, value) in [
        (
            r#"luminate_clickhouse_requests_total{operation="insert",outcome="ok"}"#,
            2.0,
        ),
        (
            r#"luminate_storage_operations_total{backend="clickhouse",operation="write",outcome="ok"}"#,
            2.0,
        ),
        (
            r#"luminate_storage_operations_total{backend="clickhouse",operation="query",outcome="ok"}"#,
            1.0,
        ),
        ("luminate_clickhouse_breaker_state", 0.0),
        (r#"luminate_storage_health{backend="clickhouse"}"#, 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
    assert!(
        sample(
            &text,
            r#"luminate_clickhouse_requests_total{operation="select",outcome="ok"}"#
        )
        .unwrap()
            >= 1.0
    );
    every_sample_is_documented(&text);

    clickhouse.kill();
    for _ in 0..3 {
        assert_eq!(server.write(&[point("cpu", now, 1.0, &[])]).0, 503);
    }
    assert!(
        eventually(Duration::from_secs(10), || {
            let text = scrape();
            sample(&text, "luminate_clickhouse_breaker_state") == Some(2.0)
                && sample(&text, r#"luminate_storage_health{backend="clickhouse"}"#) == Some(0.0)
        }),
        "{}",
        scrape()
    );
    let text = scrape();
    assert_eq!(
        sample(
            &text,
            r#"luminate_storage_errors_total{backend="clickhouse",operation="write",kind="unavailable"}"#
        ),
        Some(3.0),
        "{text}"
    );
    // The three refused points are write errors, with the code their answers carried.
    assert_eq!(
        sample(
            &text,
            r#"luminate_write_errors_total{tenant="default",code="STORAGE_UNAVAILABLE"}"#
        ),
        Some(3.0),
        "{text}"
    );
    let failed: f64 = ["insert", "select"]
        .iter()
        .filter_map(|op| {
            sample(
                &text,
                &format!(
                    r#"luminate_clickhouse_requests_total{{operation="{op}",outcome="error"}}"#
                ),
            )
        })
        .sum();
    assert!(
        failed >= 3.0,
        "the breaker opened after 3 failed requests: {text}"
    );

    clickhouse.start_again();
    assert!(
        eventually(Duration::from_secs(20), || {
            let text = scrape();
            sample(&text, "luminate_clickhouse_breaker_state") == Some(0.0)
                && sample(&text, r#"luminate_storage_health{backend="clickhouse"}"#) == Some(1.0)
        }),
        "{}",
        scrape()
    );
}

/// Issue 5's 80 % warning as a self-metric: the engine logs it and counts it once, and the collector's
/// usage ratio shows how close the tenant is.
#[test]
fn passing_80_percent_of_a_cardinality_limit_is_counted_and_the_usage_exposed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env(
            "LUMINATE__CARDINALITY_LIMITS__MAX_UNIQUE_SERIES_PER_METRIC",
            "5",
        )
        .env("LUMINATE__METRICS__INTERVAL", "100ms")
        .start();
    let now = now_ms();
    let series = |range: std::ops::Range<usize>| -> Vec<_> {
        range
            .map(|i| point("latency", now, 1.0, &[("customer", &format!("c{i}"))]))
            .collect()
    };
    assert_eq!(server.write(&series(0..3)).0, 200);
    let warnings = r#"luminate_cardinality_limit_warnings_total{tenant="default",limit="max_unique_series_per_metric"}"#;
    let usage = r#"luminate_cardinality_limit_usage_ratio{tenant="default",limit="max_unique_series_per_metric"}"#;
    assert!(eventually(Duration::from_secs(10), || {
        sample(&get_text(&server.url("/metrics"), &[]).2, usage) == Some(0.6)
    }));
    assert_eq!(
        sample(&get_text(&server.url("/metrics"), &[]).2, warnings),
        None
    );
    // The 4th series is 80 % of 5; the 5th is past it, and the 6th is refused.
    assert_eq!(server.write(&series(3..6)).0, 207);
    assert!(eventually(Duration::from_secs(10), || {
        sample(&get_text(&server.url("/metrics"), &[]).2, usage) == Some(1.0)
    }));
    let text = get_text(&server.url("/metrics"), &[]).2;
    assert_eq!(sample(&text, warnings), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"luminate_write_errors_total{tenant="default",code="CARDINALITY_EXCEEDED"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        server
            .output()
            .contains("tenant passed 80% of a cardinality limit")
    );
}
