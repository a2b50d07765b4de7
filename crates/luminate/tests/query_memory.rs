//! The server-wide query memory budget through the real binary, on every backend: a query whose
//! estimate exceeds the whole budget is refused at once (`400 QUERY_LIMIT_EXCEEDED` naming the budget
//! and the estimate); with room for one heavy query at a time and no wait, concurrent heavy queries each
//! either answer exactly the answer of a query run alone or get `503 STORAGE_UNAVAILABLE` with
//! `Retry-After`, and the self-metrics count every admission and end with nothing reserved; with the
//! default budget all of them answer.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::thread;

use common::{Backend, Launch, Luminate, get_text, now_ms};
use serde_json::{Value, json};
use tenant_client::{Client, Reply};

on_each_backend!(heavy_queries_share_the_budget_and_answer_exactly_or_503);

const POINTS: usize = 200_000;
const CUSTOMERS: usize = 2_000;
/// Concurrent heavy queries fired at once.
const CONCURRENT: usize = 8;
const HOUR_MS: i64 = 3_600_000;

/// `POINTS` points of `api_latency` over the hour starting at `t0`, customers in turn.
fn load(server: &Luminate, t0: i64) {
    let mut sent = 0;
    while sent < POINTS {
        let batch: Vec<Value> = (sent..(sent + 10_000).min(POINTS))
            .map(|i| {
                json!({"name": "api_latency", "timestamp": t0 + (i as i64 * HOUR_MS) / POINTS as i64,
                       "value": (i * 7919 % 1000) as f64 / 10.0,
                       "dimensions": {"customer_id": format!("cust_{}", i % CUSTOMERS)}})
            })
            .collect();
        let (status, body) = server.write(&batch);
        assert_eq!(status, 200, "{body}");
        sent += batch.len();
    }
}

/// p99 by customer per minute over the hour: every point buffered with its bucket on the embedded
/// engine, a thousand groups of 61 buckets in the answer on ClickHouse.
fn heavy_query(t0: i64) -> Value {
    json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p99",
           "groupBy": ["customer_id"], "interval": "1m", "limit": 1000,
           "timeRange": {"start": t0, "end": t0 + HOUR_MS}, "timeout": "30s"})
}

/// Fires `CONCURRENT` copies of `query` at once.
fn fire(server: &Luminate, query: &Value) -> Vec<Reply> {
    let barrier = std::sync::Barrier::new(CONCURRENT);
    thread::scope(|s| {
        let handles: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                s.spawn(|| {
                    let client = Client::of(server);
                    barrier.wait();
                    client.send("POST", "/api/v1/query", None, Some(query))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The value of an unlabelled or fully written sample of the exposition (0 when absent).
fn sample(server: &Luminate, series: &str) -> f64 {
    let text = get_text(&server.url("/metrics"), &[]).2;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn admissions(server: &Luminate, outcome: &str) -> f64 {
    sample(
        server,
        &format!("luminate_query_memory_admissions_total{{outcome=\"{outcome}\"}}"),
    )
}

fn heavy_queries_share_the_budget_and_answer_exactly_or_503(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let t0 = (now_ms() / 60_000) * 60_000 - 2 * HOUR_MS;
    let query = heavy_query(t0);
    let launch = backend
        .launch(&dir.path().join("data"))
        .without_rate_limits()
        .env("LUMINATE__RATE_LIMITS__CONCURRENT_QUERIES", "1000")
        .env("LUMINATE__QUERY_LIMITS__MEMORY_WAIT", "1ms");
    let with_budget = |launch: &Launch, bytes: u64| {
        launch
            .clone()
            .env(
                "LUMINATE__QUERY_LIMITS__MEMORY_BUDGET_BYTES",
                &bytes.to_string(),
            )
            .start()
    };

    // The smallest budget holds no heavy query: refused at once, naming the budget and the estimate.
    let server = with_budget(&launch, 1 << 20);
    load(&server, t0);
    let (status, body) = server.post_json("/api/v1/query", &query);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("QUERY_LIMIT_EXCEEDED")),
        "{body}"
    );
    let details = &body["error"]["details"];
    assert_eq!(
        (details["limit"].as_str(), details["value"].as_u64()),
        (Some("memory_budget_bytes"), Some(1 << 20)),
        "{body}"
    );
    let estimate = details["estimate_bytes"].as_u64().unwrap();
    assert!(estimate > 1 << 20, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("query_limits.memory_budget_bytes"),
        "{message}"
    );
    assert_eq!(admissions(&server, "too_large"), 1.0);
    assert_eq!(server.terminate().code(), Some(0));

    // Room for one at a time, a wait of 1 ms: each answers exactly as when alone, or 503 with Retry-After.
    let server = with_budget(&launch, estimate + estimate / 2);
    let alone = server.query(&query)["results"].clone();
    assert_eq!(alone.as_array().unwrap().len(), 1000);
    let replies = fire(&server, &query);
    let mut answered = 0;
    for reply in &replies {
        match reply.status {
            200 => {
                assert_eq!(reply.body["results"], alone);
                answered += 1;
            }
            503 => {
                assert_eq!(reply.code(), "STORAGE_UNAVAILABLE", "{reply:?}");
                assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
                assert_eq!(
                    reply.body["error"]["details"]["estimate_bytes"].as_u64(),
                    Some(estimate),
                    "the same query, the same estimate: {reply:?}"
                );
                let message = reply.body["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains("query_limits.memory_budget_bytes"),
                    "{message}"
                );
            }
            _ => panic!("neither an answer nor the budget's refusal: {reply:?}"),
        }
    }
    let refused = CONCURRENT - answered;
    assert!(answered >= 1, "one heavy query fits at a time");
    assert_eq!(
        admissions(&server, "immediate") + admissions(&server, "waited"),
        (answered + 1) as f64
    );
    assert_eq!(admissions(&server, "busy"), refused as f64);
    assert_eq!(sample(&server, "luminate_query_memory_reserved_bytes"), 0.0);
    assert_eq!(server.terminate().code(), Some(0));

    // The default budget (1 GiB) holds them all.
    let server = launch.start();
    for reply in fire(&server, &query) {
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["results"], alone);
    }
    assert_eq!(admissions(&server, "busy"), 0.0);
    assert_eq!(
        sample(&server, "luminate_query_memory_budget_bytes"),
        f64::from(1 << 30)
    );
    assert_eq!(server.terminate().code(), Some(0));
}
