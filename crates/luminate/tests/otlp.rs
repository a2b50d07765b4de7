//! OTLP end to end, through the real binary on each backend: the real OpenTelemetry SDKs — Python
//! (`opentelemetry-sdk` with the OTLP/HTTP protobuf and the gRPC exporters, installed by scripts/test.sh)
//! and JavaScript (`@opentelemetry/sdk-metrics` with the OTLP/HTTP JSON exporter, from
//! tests/fixtures/otlp-js) — export a counter, an up-down counter, a histogram, an exponential histogram
//! and an observable gauge, cumulative and delta, gzip on, with a bearer token (auth on); the stored
//! points equal what was recorded. Then the refusals a sender acts on (415, 400) and a partial success.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// The values recorded by the fixtures (tests/fixtures/otlp_export.py, otlp-js/export.mjs), per
/// collection: the first exports batch 1, the second batch 2 (delta) or both (cumulative).
const COUNTER: [&[(&str, f64)]; 2] = [
    &[("eu", 3.0), ("eu", 4.0), ("us", 5.0)],
    &[("eu", 1.0), ("us", 2.0)],
];
const UP_DOWN: [&[f64]; 2] = [&[10.0, -3.0], &[-2.0]];
const HISTOGRAM: [&[f64]; 2] = [&[3.0, 30.0, 300.0], &[3000.0]];
const EXPONENTIAL: [&[f64]; 2] = [&[0.0, 1.0, 2.0, 4.0, 4.0], &[8.0]];
const GAUGE: [f64; 2] = [42.0, 43.0];
/// The explicit bounds both SDKs default to, as stored.
const DEFAULT_BOUNDS: [&str; 16] = [
    "0", "5", "10", "25", "50", "75", "100", "250", "500", "750", "1000", "2500", "5000", "7500",
    "10000", "+Inf",
];

/// One stored point: its timestamp, its dimensions but `service_name`, its value.
type Stored = (i64, BTreeMap<String, String>, f64);

/// Every point of `metric` exported by `run` (its `service_name`), oldest first.
fn stored(client: &Client, reader: &str, metric: &str, run: &str) -> Vec<Stored> {
    let reply = client.post(
        "/api/v1/query",
        reader,
        &json!({"queryType": "range", "metricName": metric, "timeRange": {"relative": "1h"},
            "filters": {"service_name": run}}),
    );
    assert_eq!(reply.status, 200, "{metric}: {}", reply.body);
    assert_eq!(reply.body["truncated"], false);
    let mut points: Vec<Stored> = reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let dims: BTreeMap<String, String> = p["dimensions"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| *k != "service_name")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (
                p["timestamp"].as_i64().unwrap(),
                dims,
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    points.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    points
}

/// Each series (its dimensions as `k=v,...`) with its values, oldest first.
fn by_series(points: &[Stored]) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (_, dims, value) in points {
        let key: Vec<String> = dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.entry(key.join(",")).or_default().push(*value);
    }
    out
}

/// The values a collection reports: its own batch (delta) or every batch so far (cumulative).
fn reported<T: Copy>(batches: &[&[T]], collection: usize, delta: bool) -> Vec<T> {
    let first = if delta { collection } else { 0 };
    batches[first..=collection]
        .iter()
        .flat_map(|b| b.iter().copied())
        .collect()
}

/// A histogram family (`_bucket{le}`, `_sum`, `_count`, one series each besides `le`) holds, for each
/// collection, exactly the cumulative counts of the values it reported: for every stored `le`, the
/// number of values at or below it. Returns each collection's `le` values.
fn check_histogram(
    client: &Client,
    reader: &str,
    name: &str,
    run: &str,
    batches: &[&[f64]; 2],
    delta: bool,
) -> Vec<Vec<String>> {
    let count = stored(client, reader, &format!("{name}_count"), run);
    let times: Vec<i64> = count.iter().map(|p| p.0).collect();
    assert_eq!(times.len(), 2, "{run} {name}_count: {count:?}");
    let values = |c: usize| reported(batches, c, delta);
    assert_eq!(
        count.iter().map(|p| p.2).collect::<Vec<_>>(),
        [values(0).len() as f64, values(1).len() as f64],
        "{run} {name}_count"
    );
    let sum = stored(client, reader, &format!("{name}_sum"), run);
    assert_eq!(
        sum.iter().map(|p| (p.0, p.2)).collect::<Vec<_>>(),
        [
            (times[0], values(0).iter().sum::<f64>()),
            (times[1], values(1).iter().sum::<f64>())
        ],
        "{run} {name}_sum"
    );
    let mut les = vec![Vec::new(), Vec::new()];
    for (ts, dims, value) in stored(client, reader, &format!("{name}_bucket"), run) {
        let collection = times.iter().position(|t| *t == ts).unwrap();
        let le = dims["le"].clone();
        let bound: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap()
        };
        let at_or_below = values(collection).iter().filter(|v| **v <= bound).count();
        assert_eq!(
            value, at_or_below as f64,
            "{run} {name}_bucket{{le={le}}} #{collection}"
        );
        les[collection].push(le);
    }
    les
}

/// The scenario's points for `run`, exported with `delta` or cumulative temporality.
fn check_run(client: &Client, reader: &str, run: &str, delta: bool) {
    let mut expected: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for collection in 0..2 {
        for region in ["eu", "us"] {
            let total: f64 = reported(&COUNTER, collection, delta)
                .iter()
                .filter(|(r, _)| *r == region)
                .map(|(_, v)| v)
                .sum();
            expected
                .entry(format!("region={region}"))
                .or_default()
                .push(total);
        }
    }
    let orders = stored(client, reader, "orders_placed", run);
    assert_eq!(by_series(&orders), expected, "{run} orders_placed");
    let items: Vec<f64> = (0..2)
        .map(|c| reported(&UP_DOWN, c, delta).iter().sum())
        .collect();
    assert_eq!(
        by_series(&stored(client, reader, "queue_items", run)),
        BTreeMap::from([("queue=q1".to_owned(), items)]),
        "{run} queue_items"
    );
    assert_eq!(
        by_series(&stored(client, reader, "queue_depth", run)),
        BTreeMap::from([("queue=q1".to_owned(), GAUGE.to_vec())]),
        "{run} queue_depth"
    );
    let les = check_histogram(
        client,
        reader,
        "http_server_duration",
        run,
        &HISTOGRAM,
        delta,
    );
    for collection in les {
        let mut sorted = collection.clone();
        let mut expected = DEFAULT_BOUNDS.map(str::to_owned).to_vec();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "{run} http_server_duration_bucket");
    }
    let les = check_histogram(client, reader, "rpc_latency", run, &EXPONENTIAL, delta);
    for collection in les {
        // The zero bucket, at least one bucket of positive values, and +Inf.
        assert!(
            collection.len() >= 3
                && collection.contains(&"0".to_owned())
                && collection.contains(&"+Inf".to_owned()),
            "{run} rpc_latency_bucket: {collection:?}"
        );
    }
}

/// Runs `program args`, failing the test with its output (and the server's) when it fails.
fn run_exporter(program: &Path, args: &[&str], server: &common::Luminate) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}\n{}\nserver: {}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.output()
    );
}

fn real_sdks_export_is_stored_exactly_as_recorded(backend: Backend) {
    let python = python();
    let check = Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc",
        ])
        .output();
    assert!(
        check.as_ref().is_ok_and(|o| o.status.success()),
        "{} cannot import the OTLP exporters; run `bash -c 'source scripts/lib/common.sh; \
         ensure_pip_packages opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \
         opentelemetry-exporter-otlp-proto-grpc'`: {check:?}",
        python.display()
    );
    let js = fixture("otlp-js");
    assert!(
        js.join("node_modules/@opentelemetry/sdk-metrics").exists(),
        "the JavaScript SDK is not installed; run `npm --prefix {} ci`",
        js.display()
    );
    let dir = tempfile::tempdir().unwrap();
    // About 150 queries check the points: the default 50 per second would refuse some.
    let server = with_secret(backend.launch(dir.path()).without_rate_limits()).start();
    let client = Client::of(&server);
    let writer = token("acme", &["write"]);
    let reader = token("acme", &["read"]);
    let http = server.url("/v1/metrics");
    let grpc = server.grpc_url();

    let script = fixture("otlp_export.py");
    let script = script.to_str().unwrap();
    let node = PathBuf::from("node");
    let exporter = js.join("export.mjs");
    let exporter = exporter.to_str().unwrap();
    let mut runs = Vec::new();
    for temporality in ["cumulative", "delta"] {
        let delta = temporality == "delta";
        let run = format!("py-http-{temporality}");
        run_exporter(
            &python,
            &[script, &http, &writer, "http", temporality, &run],
            &server,
        );
        runs.push((run, delta));
        let run = format!("py-grpc-{temporality}");
        run_exporter(
            &python,
            &[script, &grpc, &writer, "grpc", temporality, &run],
            &server,
        );
        runs.push((run, delta));
        let run = format!("js-json-{temporality}");
        run_exporter(
            &node,
            &[exporter, &http, &writer, temporality, &run],
            &server,
        );
        runs.push((run, delta));
    }
    for (run, delta) in &runs {
        check_run(&client, &reader, run, *delta);
    }

    // Only the allowlisted resource attribute is a dimension: `service.instance.id` is not.
    let dims = client.get("/api/v1/metrics/orders_placed/dimensions", &reader);
    assert_eq!(dims.status, 200, "{}", dims.body);
    assert_eq!(
        dims.body["dimensions"],
        json!(["region", "service_name"]),
        "{}",
        dims.body
    );
    let services: Vec<String> = sums_by(&client, &reader, "queue_depth", "service_name")
        .into_keys()
        .collect();
    let mut names: Vec<String> = runs.into_iter().map(|(run, _)| run).collect();
    names.sort();
    assert_eq!(services, names);
}

on_each_backend!(real_sdks_export_is_stored_exactly_as_recorded);

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
