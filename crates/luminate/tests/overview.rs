//! `GET /api/v1/status/overview` and bounded self-metric labels, through the real binary: the overview
//! sums known traffic exactly and reflects the collector's round; with auth on it needs `admin`; a
//! thousand tenants and a thousand random paths leave the exposition's label sets bounded.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::collections::HashSet;
use std::time::Duration;

use common::{Launch, eventually, get_text, label_values, now_ms, point};
use serde_json::{Value, json};
use tenant_client::{Client, token, with_secret};

/// `metrics.bearer_token` of a server with auth on: without it nothing may scrape the API's address.
const SCRAPE_TOKEN: &str = "scrape-token";
/// The scrape's `Authorization` value.
const SCRAPE_AUTHORIZATION: &str = "Bearer scrape-token";

fn overview(client: &Client, token_: &str) -> Value {
    let reply = client.get("/api/v1/status/overview", token_);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

#[test]
fn the_overview_sums_known_traffic_and_needs_admin() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Launch::new(dir.path()))
        .env("LUMINATE__METRICS__INTERVAL", "100ms")
        .without_rate_limits()
        .start();
    let client = Client::of(&server);
    let (writer, admin) = (token("acme", &["read", "write"]), token("ops", &["admin"]));
    // Rates are counted from the collector's first snapshot: let it be taken before the traffic.
    assert!(eventually(Duration::from_secs(10), || {
        !overview(&client, &admin)["overview"]["collected"].is_null()
    }));
    let now = now_ms();
    let points: Vec<Value> = (0..10)
        .map(|i| {
            point(
                "latency",
                now - i,
                i as f64,
                &[("host", ["a", "b"][i as usize % 2])],
            )
        })
        .chain([point("9bad", now, 1.0, &[])])
        .collect();
    assert_eq!(client.write(&writer, &points[..6]).status, 200);
    assert_eq!(client.write(&writer, &points[6..]).status, 207);
    let q = json!({"queryType": "aggregate", "metricName": "latency", "aggregation": "p95",
        "groupBy": ["host"], "timeRange": {"start": now - 60_000, "end": now + 1}});
    for _ in 0..3 {
        client.query(&writer, &q);
    }
    let bad = client.post("/api/v1/query", &writer, &json!({"queryType": "nope"}));
    assert_eq!(bad.status, 400);

    let refused = client.get("/api/v1/status/overview", &writer);
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.code(), "FORBIDDEN");

    assert!(eventually(Duration::from_secs(10), || {
        overview(&client, &admin)["overview"]["collected"]["series"] == json!(2)
    }));
    let body = overview(&client, &admin);
    assert_eq!(body["backend"], "embedded");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let o = &body["overview"];
    assert_eq!(o["ingestion"]["points_ingested_total"], 10);
    assert_eq!(o["ingestion"]["points_rejected_total"], 1);
    assert_eq!(o["ingestion"]["write_requests_total"], 2);
    assert_eq!(o["queries"]["requests_total"], 3);
    assert_eq!(o["queries"]["errors_total"], 1);
    assert_eq!(o["errors"]["server_errors_total"], 0);
    let collected = &o["collected"];
    assert_eq!(collected["storage_up"], true);
    assert_eq!(collected["metrics"], 1);
    assert_eq!(collected["tenants"], 1);
    assert!(collected["disk_bytes"].as_u64().unwrap() > 0);
    assert!(collected["filesystem_available_bytes"].as_u64().unwrap() > 0);
    // The writes and queries happened inside the window: rates and percentiles have values.
    let window = o["window_seconds"].as_f64().unwrap();
    assert!(window > 0.0 && window <= 61.0, "{window}");
    let per_second = o["ingestion"]["points_per_second"].as_f64().unwrap();
    assert!(
        (per_second * window - 10.0).abs() < 1e-6,
        "{per_second} over {window}"
    );
    for key in ["write_p95", "write_p99", "query_p95", "query_p99"] {
        let ms = o["latency_ms"][key].as_f64().unwrap();
        assert!(ms > 0.0 && ms <= 30_000.0, "{key}: {ms}");
    }
}

#[test]
fn a_thousand_tenants_and_random_paths_leave_labels_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Launch::new(dir.path()))
        .env("LUMINATE__METRICS__MAX_TENANT_LABELS", "5")
        .env("LUMINATE__METRICS__TOP_METRICS", "3")
        .env("LUMINATE__METRICS__INTERVAL", "100ms")
        .env("LUMINATE__METRICS__BEARER_TOKEN", SCRAPE_TOKEN)
        .start();
    let scrape = || {
        get_text(
            &server.url("/metrics"),
            &[("authorization", SCRAPE_AUTHORIZATION)],
        )
    };
    let client = Client::of(&server);
    let now = now_ms();
    for t in 0..1_000 {
        let tenant = format!("tenant-{t:04}");
        let reply = client.write(
            &token(&tenant, &["write"]),
            &[point(
                &format!("metric_{t}"),
                now,
                1.0,
                &[("i", &t.to_string())],
            )],
        );
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let path = format!("/api/v1/{t}/x{}", t * 7919);
        assert_eq!(client.get(&path, "none").status, 404);
    }
    let (status, _, text) = scrape();
    assert_eq!(status, 200);
    let tenants = label_values(&text, "luminate_http_requests_total", "tenant");
    assert_eq!(
        tenants.len(),
        5 + 2,
        "five tenants, other and -: {tenants:?}"
    );
    assert!(tenants.contains("other") && tenants.contains("-"));
    let routes = label_values(&text, "luminate_http_requests_total", "route");
    let expected: HashSet<String> = ["/api/v1/write", "unmatched", "/metrics"]
        .map(String::from)
        .into();
    assert!(routes.is_subset(&expected), "{routes:?}");
    for metric in [
        "luminate_metrics_ingested_total",
        "luminate_write_requests_total",
        "luminate_rate_limit_checks_total",
        "luminate_rate_limit_tokens_available",
    ] {
        assert_eq!(label_values(&text, metric, "tenant").len(), 6, "{metric}");
    }
    assert!(
        text.contains(r#"luminate_metrics_ingested_total{tenant="other"} 995"#),
        "{text}"
    );
    // The collector's gauges: six tenant labels, three metric labels.
    assert!(eventually(Duration::from_secs(10), || {
        let text = scrape().2;
        label_values(&text, "luminate_series_count", "tenant").len() == 6
            && text.contains(r#"luminate_cardinality_metrics{tenant="other"} 995"#)
    }));
    let text = scrape().2;
    assert_eq!(
        label_values(&text, "luminate_cardinality_by_metric", "metric").len(),
        3,
        "{text}"
    );
    assert!(
        text.lines().count() < 1_500,
        "the exposition stays small: {} lines",
        text.lines().count()
    );
}
