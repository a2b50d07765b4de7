//! Per-tenant limits end to end: which rate limits are in force (the seed's quotas with auth, none in
//! protected mode unless configured, and the start-up line saying so), request buckets (429 with
//! `Retry-After` and `X-RateLimit-*`, refill, one tenant's limit not touching another's, per-tenant
//! overrides), points per second counted per point, cardinality limits refusing exactly the points past
//! them (on every backend), and query limits naming the limit.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::time::Duration;

use common::{Backend, Launch, Luminate, now_ms, point};
use serde_json::{Value, json};
use tenant_client::{Client, Reply, token, with_secret};

fn unix_s() -> u64 {
    (now_ms() / 1000) as u64
}

fn assert_limited(reply: &Reply, limit: u64, key: &str) {
    assert_eq!(reply.status, 429, "{reply:?}");
    assert_eq!(reply.code(), "RATE_LIMIT_EXCEEDED");
    assert_eq!(reply.body["error"]["details"]["limit"], key);
    assert_eq!(reply.number("x-ratelimit-limit"), limit);
    assert_eq!(reply.number("x-ratelimit-remaining"), 0);
    assert!(reply.number("retry-after") >= 1, "{reply:?}");
    assert!(reply.number("x-ratelimit-reset") >= unix_s(), "{reply:?}");
}

#[test]
fn request_buckets_limit_each_tenant_alone_and_refill() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("luminate.yaml");
    std::fs::write(
        &config,
        "rate_limits:\n  query_requests_per_second: 3\n  tenants:\n    big:\n      query_requests_per_second: 50\n",
    )
    .unwrap();
    let server = with_secret(Launch::new(&dir.path().join("data")).config(&config)).start();
    let client = Client::of(&server);
    let (a, b, big) = (
        token("a", &["read"]),
        token("b", &["read"]),
        token("big", &["read"]),
    );

    // A burst of 3 passes, with the remaining tokens counting down; the 4th is refused.
    for remaining in [2, 1, 0] {
        let reply = client.get("/api/v1/metrics", &a);
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.number("x-ratelimit-limit"), 3);
        assert_eq!(reply.number("x-ratelimit-remaining"), remaining);
        assert!(reply.number("x-ratelimit-reset") >= unix_s());
    }
    let refused = client.get("/api/v1/metrics", &a);
    assert_limited(&refused, 3, "query_requests_per_second");

    // Another tenant is not slowed: its bucket is full.
    let other = client.get("/api/v1/metrics", &b);
    assert_eq!(other.status, 200);
    assert_eq!(other.number("x-ratelimit-remaining"), 2);
    // An override has a bucket of its own size.
    let overridden = client.get("/api/v1/metrics", &big);
    assert_eq!(overridden.number("x-ratelimit-limit"), 50);
    assert_eq!(overridden.number("x-ratelimit-remaining"), 49);

    // The bucket refills at 3 per second.
    std::thread::sleep(Duration::from_millis(1100));
    let refilled = client.get("/api/v1/metrics", &a);
    assert_eq!(refilled.status, 200, "{refilled:?}");
    assert!(refilled.number("x-ratelimit-remaining") >= 1);
}

#[test]
fn write_requests_have_their_own_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_RATE_LIMITS_WRITE_REQUESTS_PER_SECOND", "2")
        .start();
    let one = [point("m", now_ms(), 1.0, &[])];
    let client = Client::of(&server);
    let write = || {
        client.send(
            "POST",
            "/api/v1/write",
            None,
            Some(&json!({ "metrics": one })),
        )
    };
    assert_eq!(write().number("x-ratelimit-remaining"), 1);
    assert_eq!(write().number("x-ratelimit-remaining"), 0);
    assert_limited(&write(), 2, "write_requests_per_second");
    // Reads (tenant default, auth disabled) have no quota: only the one set applies.
    let read = client.send("GET", "/api/v1/metrics", None, None);
    assert_eq!(read.status, 200);
    assert_eq!(read.header("x-ratelimit-limit"), None, "{read:?}");
    assert_eq!(server.count("m"), 2);
}

/// A batch of 10 000 points of one series of `m`, the `round`-th: no two rounds share a timestamp.
fn full_batch(round: i64) -> Value {
    let newest = now_ms() - round * 10_000;
    let points: Vec<Value> = (0..10_000)
        .map(|i| point("m", newest - i, 1.0, &[]))
        .collect();
    json!({ "metrics": points })
}

/// Waits for the start-up line on rate limits and returns it.
fn rate_limit_line(server: &Luminate) -> String {
    let find = || {
        server
            .output()
            .lines()
            .find(|l| l.contains("rate limits"))
            .map(str::to_owned)
    };
    assert!(
        common::eventually(Duration::from_secs(10), || find().is_some()),
        "{}",
        server.output()
    );
    find().unwrap()
}

#[test]
fn protected_mode_applies_no_rate_limit_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).start();
    assert!(
        rate_limit_line(&server)
            .ends_with("rate limits: off (auth disabled; set rate_limits.* to enable)"),
        "{}",
        server.output()
    );
    let client = Client::of(&server);
    // A first bulk load: five full batches back to back (the seed's quota is 10 000 points a second).
    for round in 0..5 {
        let reply = client.send("POST", "/api/v1/write", None, Some(&full_batch(round)));
        assert_eq!(reply.status, 200, "batch {round}: {:?}", reply.body);
        assert_eq!(reply.header("x-ratelimit-limit"), None, "{reply:?}");
    }
    assert_eq!(server.count("m"), 50_000);
    // A dashboard: 200 queries from 20 panels at once (the seed's quotas: 50 a second, 10 at a time).
    let query = json!({"queryType": "aggregate", "metricName": "m", "aggregation": "count",
        "timeRange": {"relative": "1h"}});
    let started = std::time::Instant::now();
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let panels: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    (0..10)
                        .map(|_| client.send("POST", "/api/v1/query", None, Some(&query)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        panels.into_iter().flat_map(|p| p.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    assert_eq!(replies.len(), 200);
    for reply in &replies {
        assert_eq!(reply.status, 200, "after {elapsed:?}: {reply:?}");
        assert_eq!(reply.header("x-ratelimit-limit"), None, "{reply:?}");
        assert_eq!(reply.body["results"][0]["count"], 50_000, "{reply:?}");
    }
}

#[test]
fn protected_mode_applies_a_points_quota_set_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("luminate.yaml");
    std::fs::write(&config, "rate_limits:\n  metrics_per_second: 10000\n").unwrap();
    let server = Launch::new(&dir.path().join("data"))
        .config(&config)
        .start();
    assert!(
        rate_limit_line(&server).ends_with(
            "rate limits per tenant: write_requests_per_second=off query_requests_per_second=off \
             metrics_per_second=10000 concurrent_queries=off"
        ),
        "{}",
        server.output()
    );
    let client = Client::of(&server);
    let first = client.send("POST", "/api/v1/write", None, Some(&full_batch(0)));
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.number("x-ratelimit-limit"), 10_000);
    let second = client.send("POST", "/api/v1/write", None, Some(&full_batch(1)));
    assert_limited(&second, 10_000, "metrics_per_second");
    assert_eq!(server.count("m"), 10_000);
}

#[test]
fn with_auth_the_seed_quotas_apply_to_every_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Launch::new(dir.path())).start();
    assert!(
        rate_limit_line(&server).ends_with(
            "rate limits per tenant: write_requests_per_second=100 query_requests_per_second=50 \
             metrics_per_second=10000 concurrent_queries=10"
        ),
        "{}",
        server.output()
    );
    let client = Client::of(&server);
    let writer = token("acme", &["write"]);
    let first = client.post("/api/v1/write", &writer, &full_batch(0));
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = client.post("/api/v1/write", &writer, &full_batch(1));
    assert_limited(&second, 10_000, "metrics_per_second");
    // Query requests: a burst of 50 (refilling at 50 a second), then 429.
    let reader = token("acme", &["read"]);
    let refused = (0..200)
        .map(|_| client.get("/api/v1/metrics", &reader))
        .find(|reply| reply.status != 200)
        .expect("a 429 within 200 requests");
    assert_limited(&refused, 50, "query_requests_per_second");
}

fn batch(n: usize, prefix: &str) -> Value {
    let now = now_ms();
    let points: Vec<Value> = (0..n)
        .map(|i| point("m", now - i as i64, 1.0, &[("p", &format!("{prefix}{i}"))]))
        .collect();
    json!({ "metrics": points })
}

#[test]
fn points_are_counted_one_by_one_and_a_full_batch_always_fits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_RATE_LIMITS_METRICS_PER_SECOND", "20")
        .env("LUMINATE_BATCH_WRITE_MAX_BATCH_SIZE", "50")
        .start();
    let client = Client::of(&server);
    let write = |n: usize, prefix: &str| {
        client.send("POST", "/api/v1/write", None, Some(&batch(n, prefix)))
    };
    // The points bucket's burst is max(20/s, max_batch_size 50): a full batch is admitted...
    let first = write(50, "a");
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["accepted"], 50);
    // ...and the next batch waits until 50 points' worth of tokens came back (2.5 s at 20/s).
    let refused = write(10, "b");
    assert_limited(&refused, 50, "metrics_per_second");
    assert!(refused.number("retry-after") <= 1, "{refused:?}");
    let big = write(50, "c");
    assert_limited(&big, 50, "metrics_per_second");
    assert_eq!(big.number("retry-after"), 3, "{big:?}");
    assert_eq!(server.count("m"), 50);
    std::thread::sleep(Duration::from_millis(600));
    let later = write(10, "d");
    assert_eq!(later.status, 200, "{later:?}");
    assert_eq!(server.count("m"), 60);
}

fn a_batch_crossing_the_series_limit_stores_exactly_the_allowed_points(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend
        .launch(dir.path())
        .env(
            "LUMINATE_CARDINALITY_LIMITS_MAX_UNIQUE_SERIES_PER_METRIC",
            "5",
        )
        .env("LUMINATE_CARDINALITY_LIMITS_MAX_METRICS_PER_TENANT", "2")
        .start();
    let now = now_ms();
    // Series c0..c7, then c0 again: the first five series and the repeat are stored.
    let mut points: Vec<Value> = (0..8)
        .map(|i| point("m", now - i, 1.0, &[("customer_id", &format!("c{i}"))]))
        .collect();
    points.push(point("m", now - 100, 2.0, &[("customer_id", "c0")]));
    let (status, body) = server.write(&points);
    assert_eq!(status, 207, "{body}");
    assert_eq!(body["accepted"], 6);
    assert_eq!(body["rejected"], 3);
    let errors = body["errors"].as_array().unwrap();
    let indexes: Vec<u64> = errors
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![5, 6, 7]);
    for e in errors {
        assert_eq!(e["code"], "CARDINALITY_EXCEEDED");
        assert_eq!(e["metric"], "m");
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("max_unique_series_per_metric of 5"),
            "{e}"
        );
        // ClickHouse does not enforce limits itself: the server's approximate guard answers.
        let approximate = e["error"].as_str().unwrap().contains("approximate");
        assert_eq!(approximate, backend == Backend::Clickhouse, "{e}");
    }
    assert_eq!(server.count("m"), 6);
    // Passing 4 of 5 series (80 %) was logged, naming tenant, metric and limit.
    assert!(
        common::eventually(Duration::from_secs(10), || {
            let out = server.output();
            out.lines().any(|l| {
                l.contains("tenant passed 80% of a cardinality limit")
                    && l.contains("max_unique_series_per_metric")
                    && l.contains("tenant=default")
            })
        }),
        "{}",
        server.output()
    );
    let (_, cardinality) = server.get("/api/v1/cardinality?metric=m");
    assert_eq!(cardinality["metrics"][0]["series"], 5);

    // Metrics per tenant: a second metric fits, a third is refused.
    let (status, body) = server.write(&[point("n", now, 1.0, &[]), point("o", now, 1.0, &[])]);
    assert_eq!(status, 207, "{body}");
    assert_eq!(body["errors"][0]["index"], 1);
    assert!(
        body["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("max_metrics_per_tenant of 2")
    );
}

on_each_backend!(a_batch_crossing_the_series_limit_stores_exactly_the_allowed_points);

#[test]
fn query_limits_name_the_limit_and_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_QUERY_LIMITS_MAX_QUERY_TIME_RANGE", "1d")
        .env("LUMINATE_QUERY_LIMITS_MAX_QUERY_TIMEOUT", "5s")
        .env("LUMINATE_QUERY_LIMITS_DEFAULT_QUERY_TIMEOUT", "2s")
        .env("LUMINATE_QUERY_LIMITS_MAX_RESULT_POINTS", "10")
        .env("LUMINATE_QUERY_LIMITS_MAX_GROUP_BY_CARDINALITY", "3")
        .start();
    let cases = [
        (
            json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "2d"}}),
            "max_query_time_range of 1d",
        ),
        (
            json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}, "timeout": "10s"}),
            "max_query_timeout of 5s",
        ),
        (
            json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}, "limit": 11}),
            "max_result_points of 10",
        ),
        (
            json!({"queryType": "aggregate", "metricName": "m", "aggregation": "sum",
                "groupBy": ["p"], "timeRange": {"relative": "1h"}, "limit": 4}),
            "max_group_by_cardinality of 3",
        ),
    ];
    for (query, message) in cases {
        let (status, body) = server.post_json("/api/v1/query", &query);
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "QUERY_LIMIT_EXCEEDED");
        let text = body["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{text}");
    }
}
