//! OTLP/HTTP metrics end to end: the real OpenTelemetry Python SDK (`opentelemetry-sdk` +
//! `opentelemetry-exporter-otlp-proto-http`, installed by scripts/test.sh) exports a counter, a histogram
//! and an observable gauge, gzip on, with a bearer token (auth on), and the stored points equal what was
//! recorded; then the refusals a sender acts on (415, 400) and a partial success.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::Backend;
use serde_json::json;
use tenant_client::{Client, fixture, token, with_secret};

/// The Python with the SDK: scripts/test.sh's, else the one on `PATH`.
fn python() -> PathBuf {
    let cached = std::env::var("HOME")
        .map(|home| PathBuf::from(home).join(".cache/luminate/python/bin/python"))
        .unwrap();
    if cached.exists() {
        return cached;
    }
    PathBuf::from("python3")
}

/// `metric`'s `sum` aggregation over the last hour, by `group` (its value and point count).
fn sums_by(
    client: &Client,
    reader: &str,
    metric: &str,
    group: &str,
) -> BTreeMap<String, (f64, u64)> {
    let reply = client.post(
        "/api/v1/query",
        reader,
        &json!({"queryType": "aggregate", "metricName": metric, "aggregation": "sum",
            "groupBy": [group], "timeRange": {"relative": "1h"}}),
    );
    assert_eq!(reply.status, 200, "{metric}: {}", reply.body);
    reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["groupKey"][group].as_str().unwrap_or("").to_owned(),
                (r["value"].as_f64().unwrap(), r["count"].as_u64().unwrap()),
            )
        })
        .collect()
}

#[test]
fn python_sdk_export_is_stored_exactly_as_recorded() {
    let python = python();
    let check = Command::new(&python)
        .args(["-c", "import opentelemetry.exporter.otlp.proto.http"])
        .output();
    assert!(
        check.as_ref().is_ok_and(|o| o.status.success()),
        "{} cannot import the OTLP exporter; run `bash -c 'source scripts/lib/common.sh; \
         ensure_pip_packages opentelemetry-sdk opentelemetry-exporter-otlp-proto-http'`: {check:?}",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Backend::Embedded.launch(dir.path())).start();
    let client = Client::of(&server);
    let writer = token("acme", &["write"]);
    let reader = token("acme", &["read"]);

    let script = fixture("otlp_export.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(server.url("/v1/metrics"))
        .arg(&writer)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exporter failed: {}\n{}\nserver: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.output()
    );

    let one = |v: f64| (v, 1u64);
    assert_eq!(
        sums_by(&client, &reader, "orders_placed", "region"),
        BTreeMap::from([("eu".into(), one(7.0)), ("us".into(), one(5.0))])
    );
    // Only the allowlisted resource attribute is a dimension: `service.instance.id` is not.
    assert_eq!(
        sums_by(&client, &reader, "orders_placed", "service_name"),
        BTreeMap::from([("checkout".into(), (12.0, 2))])
    );
    let dims = client.get("/api/v1/metrics/orders_placed/dimensions", &reader);
    assert_eq!(dims.status, 200, "{}", dims.body);
    assert_eq!(
        dims.body["dimensions"],
        json!(["region", "service_name"]),
        "{}",
        dims.body
    );

    // The SDK's default bounds; 3, 30 and 300 recorded.
    let cumulative = [
        ("0", 0.0),
        ("5", 1.0),
        ("10", 1.0),
        ("25", 1.0),
        ("50", 2.0),
        ("75", 2.0),
        ("100", 2.0),
        ("250", 2.0),
        ("500", 3.0),
        ("750", 3.0),
        ("1000", 3.0),
        ("2500", 3.0),
        ("5000", 3.0),
        ("7500", 3.0),
        ("10000", 3.0),
        ("+Inf", 3.0),
    ];
    assert_eq!(
        sums_by(&client, &reader, "http_server_duration_bucket", "le"),
        cumulative
            .iter()
            .map(|(le, v)| ((*le).to_owned(), one(*v)))
            .collect::<BTreeMap<_, _>>()
    );
    assert_eq!(
        sums_by(&client, &reader, "http_server_duration_sum", "route"),
        BTreeMap::from([("/checkout".into(), one(333.0))])
    );
    assert_eq!(
        sums_by(&client, &reader, "http_server_duration_count", "route"),
        BTreeMap::from([("/checkout".into(), one(3.0))])
    );
    assert_eq!(
        sums_by(&client, &reader, "queue_depth", "queue"),
        BTreeMap::from([("q1".into(), one(42.0))])
    );
}

#[test]
fn unsupported_invalid_and_partially_valid_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Backend::Embedded.launch(dir.path())).start();
    let client = Client::of(&server);
    let bearer = format!("Bearer {}", token("acme", &["write"]));
    let reader = token("acme", &["read"]);
    let auth = ("authorization", bearer.as_str());

    let (status, body) = server.post_raw(
        "/v1/metrics",
        &[auth, ("content-type", "text/plain")],
        b"x".to_vec(),
    );
    assert_eq!(status, 415, "{body}");
    let (status, body) = server.post_raw(
        "/v1/metrics",
        &[auth, ("content-type", "application/x-protobuf")],
        vec![0x0a, 0xff, 0xff],
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.post_raw(
        "/v1/metrics",
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    );
    assert_eq!(status, 401);

    let now_ns = (common::now_ms() as u64 * 1_000_000).to_string();
    let request = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "temp.c", "gauge": {"dataPoints": [
            {"asDouble": 21.5, "timeUnixNano": now_ns, "attributes": [{"key": "room", "value": {"stringValue": "a"}}]},
            {"asDouble": "NaN", "timeUnixNano": now_ns, "attributes": [{"key": "room", "value": {"stringValue": "b"}}]}
        ]}}
    ]}]}]});
    let (status, body) = server.post_raw(
        "/v1/metrics",
        &[auth, ("content-type", "application/json")],
        request.to_string().into_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partialSuccess"]["rejectedDataPoints"], "1", "{body}");
    assert!(
        body["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("NON_FINITE_VALUE"),
        "{body}"
    );
    assert_eq!(
        sums_by(&client, &reader, "temp_c", "room"),
        BTreeMap::from([("a".into(), (21.5, 1))])
    );
}
