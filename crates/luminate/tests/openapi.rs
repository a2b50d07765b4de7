//! The OpenAPI document through the real binary: served at `/api/v1/openapi.json` without a token even
//! with auth on, valid OpenAPI 3.1 by PyPI's `openapi-spec-validator`, and true of the server — PyPI's
//! `schemathesis` generates requests for every operation from the served document and sends them to
//! the real server (auth on, a token with every scope, some data stored): no answer may be a `5xx`,
//! and every answer's status, content type, headers and body must be ones the document gives for the
//! operation. Both tools are installed by scripts/test.sh (`ensure_pip_packages`); the tests never skip.
//!
//! That the document lists exactly the routes the router serves is tested in the server's crate
//! (`openapi::tests`), from the router itself.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{Luminate, now_ms, point};
use serde_json::{Value, json};
use tenant_client::{Client, token, with_secret};

/// Test cases schemathesis generates per operation and phase: with about 30 operations this keeps the
/// run near a minute on a busy 2-core machine.
const MAX_EXAMPLES: &str = "12";
/// Schemathesis' seed: a failure reproduces with the same one.
const SEED: &str = "20261205";

/// A program of the Python environment scripts/test.sh sets up (its `bin/` is first on `PATH` there),
/// else from `PATH`; a panic saying how to get it when it is nowhere.
fn python_tool(name: &str, package: &str) -> PathBuf {
    let cached = std::env::var("HOME")
        .map(|home| {
            PathBuf::from(home)
                .join(".cache/luminate/python/bin")
                .join(name)
        })
        .unwrap();
    if cached.exists() {
        return cached;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is required: install the PyPI package {package} (scripts/test.sh does)"
            )
        })
}

/// A server with auth on, rate limits out of the way, and the exposition open to `scrape` (the same
/// token as the API's, so one `Authorization` header opens every route).
fn start(dir: &Path, scrape: &str) -> Luminate {
    with_secret(common::Launch::new(dir))
        .without_rate_limits()
        .env("LUMINATE__METRICS__BEARER_TOKEN", scrape)
        .start()
}

/// The served document, fetched without a token.
fn served_document(server: &Luminate) -> (Value, String) {
    let reply = Client::of(server).send("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    (reply.body.clone(), reply.body.to_string())
}

#[test]
fn the_served_document_is_valid_openapi_3_1_and_needs_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "scrape-token");
    let (doc, text) = served_document(&server);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/write"]["post"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"]["scheme"],
        "basic"
    );
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(python_tool(
        "openapi-spec-validator",
        "openapi-spec-validator",
    ))
    .arg(&file)
    .output()
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openapi-spec-validator: {report}");
    assert!(report.contains("OK"), "{report}");
}

/// Data for the generated requests to find: points of two metrics and a dashboard.
fn store_some_data(server: &Luminate, token: &str) {
    let client = Client::of(server);
    let now = now_ms();
    let points: Vec<Value> = (0..20)
        .map(|i| {
            point(
                if i % 2 == 0 {
                    "api_latency"
                } else {
                    "api_requests"
                },
                now - 60_000 + i * 1000,
                i as f64,
                &[
                    ("customer_id", &format!("cust_{}", i % 3)),
                    ("region", "eu"),
                ],
            )
        })
        .collect();
    let reply = client.write(token, &points);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let dashboard = json!({"dashboard": {"id": "overview", "title": "Overview", "tags": ["team"],
        "panels": [{"id": "p95", "title": "p95", "type": "timeseries",
            "gridPosition": {"x": 0, "y": 0, "w": 12, "h": 6},
            "query": {"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
                "timeRange": {"relative": "1h"}}}]}});
    let reply = client.post("/api/v1/dashboards", token, &dashboard);
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let token = token("acme", &["read", "write", "admin"]);
    let server = start(dir.path(), &token);
    store_some_data(&server, &token);
    let (_, text) = served_document(&server);
    let schema = dir.path().join("openapi.json");
    std::fs::write(&schema, text).unwrap();
    let har = dir.path().join("requests.har");
    let started = Instant::now();
    let out = Command::new(python_tool("st", "schemathesis"))
        .current_dir(dir.path())
        .args(["run", schema.to_str().unwrap(), "--url", &server.base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            SEED,
            // One worker: with two, Hypothesis' shared caches race while generating examples and
            // schemathesis reports a "flaky" error of its own now and then (seen with 4.32).
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--report",
            "har",
            "--report-har-path",
            har.to_str().unwrap(),
            "--output-truncate",
            "false",
        ])
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .unwrap();
    let took = started.elapsed();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = std::fs::read_to_string(&har)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|har| har["log"]["entries"].as_array().map(Vec::len))
        .unwrap_or(0);
    println!(
        "schemathesis sent {requests} requests in {:.1} s (at most {MAX_EXAMPLES} cases per \
         operation and phase, seed {SEED})",
        took.as_secs_f64()
    );
    assert!(
        out.status.success(),
        "schemathesis found answers outside the document:\n{report}\nserver output:\n{}",
        server.output()
    );
    assert!(
        requests >= 500,
        "schemathesis sent only {requests} requests:\n{report}"
    );
}
