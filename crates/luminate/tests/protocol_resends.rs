//! The newest-sample rule through the real binary (docs/ingest.md, "Retries and resends"): an OTLP
//! export resent after the server was killed (`SIGKILL`) and restarted over the same data stores
//! nothing twice, on every backend — on the embedded engine with its points already flushed to parts
//! (a tiny `head_max_points`), so the restarted engine reads the newest samples back from them — and is
//! answered as a full success, the resent points counted as `DUPLICATE_SAMPLE`.
//! (Prometheus' own resends across a 30 s outage are in `remote_write.rs`.)

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use common::{Backend, Luminate, now_ms};
use serde_json::{Value, json};

/// An OTLP/JSON export of gauge `temp{host="a"}`: one data point per (timestamp ms, value).
fn export(points: &[(i64, f64)]) -> Vec<u8> {
    let data_points: Vec<Value> = points
        .iter()
        .map(|(t, v)| {
            json!({"timeUnixNano": (t * 1_000_000).to_string(), "asDouble": v,
                "attributes": [{"key": "host", "value": {"stringValue": "a"}}]})
        })
        .collect();
    json!({"resourceMetrics": [{"resource": {"attributes": []}, "scopeMetrics": [{"metrics": [
        {"name": "temp", "gauge": {"dataPoints": data_points}}]}]}]})
    .to_string()
    .into_bytes()
}

/// Sends an export; asserts the full success `{}`.
fn send(server: &Luminate, body: &[u8]) {
    let (status, answer) = server.post_raw(
        "/v1/metrics",
        &[("content-type", "application/json")],
        body.to_vec(),
    );
    assert_eq!((status, answer), (200, json!({})), "{}", server.output());
}

/// The value of the self-metric line starting with `prefix` (0 when absent).
fn self_metric(server: &Luminate, prefix: &str) -> u64 {
    let (status, _, text) = common::get_text(&server.url("/metrics"), &[]);
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

fn duplicates(server: &Luminate) -> u64 {
    self_metric(
        server,
        "luminate_write_errors_total{tenant=\"default\",code=\"DUPLICATE_SAMPLE\"} ",
    )
}

on_each_backend!(an_export_resent_after_a_kill_and_restart_stores_nothing_twice);

fn an_export_resent_after_a_kill_and_restart_stores_nothing_twice(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let launch = backend
        .launch(dir.path())
        .env("LUMINATE__STORAGE__EMBEDDED__HEAD_MAX_POINTS", "3");
    let t0 = now_ms() - 60_000;
    let body = export(&[(t0, 1.0), (t0 + 1_000, 2.0), (t0 + 2_000, 3.0)]);
    let server = launch.start();
    send(&server, &body);
    send(&server, &body);
    assert_eq!(server.count("temp"), 3);
    assert_eq!(duplicates(&server), 1);
    if backend == Backend::Embedded {
        // The gauges are sampled periodically: wait for the flush to show.
        assert!(
            common::eventually(std::time::Duration::from_secs(20), || {
                self_metric(&server, "luminate_engine_parts ") > 0
            }),
            "the points reached a part: {}",
            server.output()
        );
    }
    server.kill9();

    let server = launch.start();
    send(&server, &body);
    assert_eq!(server.count("temp"), 3, "{}", server.output());
    assert_eq!(duplicates(&server), 1);
    send(&server, &export(&[(t0 + 3_000, 4.0)]));
    assert_eq!(server.count("temp"), 4);
}
