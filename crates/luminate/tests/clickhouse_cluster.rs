//! The real binary over a two-shard ClickHouse cluster (two `clickhouse-server` processes on loopback,
//! `storage.clickhouse.cluster` set, `Distributed` tables over local ones) answers every route exactly
//! like a Luminate over a single node holding the same points; and two Luminate replicas in front of the
//! cluster are interchangeable: what one acknowledges, the other serves.

#![cfg(feature = "clickhouse")] // a build without the backend has nothing to test here
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use common::{Launch, Luminate, now_ms, point};
use luminate_clickhouse::testing::{ClickhouseServer, two_shard_cluster};
use serde_json::{Value, json};

const CLUSTER: &str = "luminate_e2e_shards";

/// 30 customers × 3 endpoints × 8 minutes, with counters for rates: deterministic values.
fn points(t0: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for c in 0..30i64 {
        for (e, endpoint) in (0i64..).zip(["/a", "/b", "/c"]) {
            let customer = format!("cust_{c}");
            let dims = [("customer_id", customer.as_str()), ("endpoint", endpoint)];
            for m in 0..8i64 {
                let value = ((c * 37 + e * 11) * (m + 3) % 251) as f64 / 2.0;
                out.push(point("api_latency", t0 + m * 60_000 + c, value, &dims));
                let counter = (m * (c + 1) * 10 + e) as f64;
                out.push(point("requests_total", t0 + m * 60_000, counter, &dims));
            }
        }
    }
    out
}

/// The answer with its execution time removed (the only part that may differ).
fn answer(server: &Luminate, query: &Value) -> Value {
    let mut body = server.query(query);
    body.as_object_mut().unwrap().remove("executionTimeMs");
    body
}

fn local_rows(shard: &ClickhouseServer) -> u64 {
    shard
        .sql("SELECT count() FROM cluster_e2e.points_local")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn two_shards_answer_like_one_node_and_replicas_are_interchangeable() {
    let (shard_a, shard_b) = two_shard_cluster(CLUSTER);
    let single_node = ClickhouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let on_cluster = Launch::new(&dir.path().join("a"))
        .clickhouse(&[&shard_a.address(), &shard_b.address()], "cluster_e2e")
        .env("LUMINATE_CLICKHOUSE_CLUSTER", CLUSTER);
    let replica_1 = on_cluster.start();
    let replica_2 = on_cluster.start();
    let single = Launch::new(&dir.path().join("b"))
        .clickhouse(&[&single_node.address()], "single_e2e")
        .start();

    let t0 = (now_ms() - 30 * 60_000) / 60_000 * 60_000;
    let all = points(t0);
    for chunk in all.chunks(500) {
        assert_eq!(replica_1.write(chunk).0, 200);
        assert_eq!(single.write(chunk).0, 200);
    }
    // Acknowledged means stored on the shards, and both hold a share.
    let (on_a, on_b) = (local_rows(&shard_a), local_rows(&shard_b));
    assert_eq!(on_a + on_b, all.len() as u64);
    assert!(on_a > 0 && on_b > 0, "{on_a} + {on_b}");

    let range = json!({"start": t0, "end": t0 + 10 * 60_000});
    let queries = [
        json!({"queryType": "range", "metricName": "api_latency", "timeRange": range,
               "filters": {"customer_id": "cust_7"}}),
        json!({"queryType": "range", "metricName": "api_latency", "timeRange": range, "limit": 50}),
        json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
               "aggregation": "p95", "groupBy": ["customer_id"], "limit": 10}),
        json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
               "aggregation": "avg", "groupBy": ["endpoint"], "interval": "2m"}),
        json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
               "aggregation": "integral", "groupBy": ["customer_id", "endpoint"], "limit": 5}),
        json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
               "aggregation": "count"}),
        json!({"queryType": "rate", "metricName": "requests_total", "timeRange": range,
               "interval": "1m", "groupBy": ["endpoint"]}),
    ];
    let total = answer(&replica_2, &queries[5]);
    assert_eq!(total["results"][0]["count"], 30 * 3 * 8, "{total}");
    for query in &queries {
        let expected = answer(&single, query);
        assert!(
            !expected["results"].as_array().unwrap().is_empty(),
            "{query}"
        );
        // Written through replica 1, read through either.
        assert_eq!(answer(&replica_1, query), expected, "{query}");
        assert_eq!(answer(&replica_2, query), expected, "{query}");
    }
    for path in [
        "/api/v1/metrics",
        "/api/v1/metrics/api_latency/dimensions",
        "/api/v1/metrics/api_latency/dimensions/customer_id/values?limit=5&prefix=cust_1",
        "/api/v1/cardinality",
    ] {
        let expected = single.get(path);
        assert_eq!(expected.0, 200, "{path}");
        assert_eq!(replica_2.get(path), expected, "{path}");
    }
    let (status, health) = replica_2.get("/api/v1/health");
    assert_eq!(status, 200, "{health}");
    assert!(health["storage"]["disk_used_bytes"].as_u64().unwrap() > 0);
}
