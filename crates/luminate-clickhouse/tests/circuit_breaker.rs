//! Failure handling against a real server that crashes and comes back: calls fail with
//! `Unavailable`, the circuit opens and later calls fail at once, health says why, and the same store
//! recovers by itself once ClickHouse answers again — with every acknowledged point still there.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{count, plan, point, write};
use luminate_clickhouse::testing::ClickhouseServer;
use luminate_clickhouse::{ClickhouseSettings, ClickhouseStore};
use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::store::HealthStatus;
use luminate_model::{MetricsStore, PointBatch, QueryContext, StoreError, Tenant};

fn reason(e: StoreError) -> String {
    match e {
        StoreError::Unavailable { reason } => reason,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_crashed_server_fails_fast_reports_unhealthy_and_recovers_without_a_new_store() {
    let mut server = ClickhouseServer::start();
    let settings = ClickhouseSettings {
        breaker_failure_threshold: 3,
        breaker_cool_down: Duration::from_millis(300),
        request_timeout: Duration::from_secs(5),
        ..server.settings("breaker")
    };
    let store = ClickhouseStore::open(settings).await.unwrap();
    let t = Tenant::new("t");
    write(&store, &t, &[point("m", 1, 1.0, &[])]).await;
    assert_eq!(store.health().await.status, HealthStatus::Healthy);

    server.kill();
    let batch = Arc::new(PointBatch::from_points([point("m", 2, 2.0, &[])]));
    // Below the threshold, each call tries ClickHouse and reports why it failed.
    for _ in 0..3 {
        let why = reason(store.write(&t, batch.clone()).await.unwrap_err());
        assert!(why.contains("cannot connect to ClickHouse"), "{why}");
    }
    // Open: queries, writes and discovery fail at once with the breaker's reason.
    let started = Instant::now();
    let q = plan(QueryKind::Aggregate(Aggregation::Count), "m");
    let why = reason(
        store
            .query(&t, &q, &QueryContext::new(q.timeout))
            .await
            .unwrap_err(),
    );
    assert!(why.contains("circuit open"), "{why}");
    assert!(why.contains("3 consecutive failures"), "{why}");
    let why = reason(store.write(&t, batch.clone()).await.unwrap_err());
    assert!(why.contains("circuit open"), "{why}");
    assert!(reason(store.metric_names(&t).await.unwrap_err()).contains("circuit open"));
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "fail fast: {:?}",
        started.elapsed()
    );
    let health = store.health().await;
    assert_eq!(health.status, HealthStatus::Unavailable);
    let error = health.error.unwrap();
    assert!(error.contains("circuit open"), "{error}");

    // While ClickHouse stays down, probes after each cool-down fail and the circuit opens again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let why = reason(store.write(&t, batch.clone()).await.unwrap_err());
    assert!(why.contains("cannot connect"), "the probe tried: {why}");
    assert!(reason(store.metric_names(&t).await.unwrap_err()).contains("circuit open"));

    // Back up: the same store recovers by itself (health is the probe once the cool-down passed).
    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.health().await.status != HealthStatus::Healthy {
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    write(&store, &t, &[point("m", 3, 3.0, &[])]).await;
    // The point acknowledged before the crash is there; the refused ones are not.
    assert_eq!(count(&store, &t, "m").await, 2);
}

#[tokio::test]
async fn a_server_that_never_answers_opens_the_circuit_after_timeouts() {
    let server = ClickhouseServer::start();
    let settings = ClickhouseSettings {
        breaker_failure_threshold: 2,
        breaker_cool_down: Duration::from_secs(60),
        request_timeout: Duration::from_millis(300),
        ..server.settings("hung")
    };
    let store = ClickhouseStore::open(settings).await.unwrap();
    let t = Tenant::new("t");
    server.pause();
    for _ in 0..2 {
        let why = reason(store.metric_names(&t).await.unwrap_err());
        assert!(
            why.contains("no answer from ClickHouse within 300ms"),
            "{why}"
        );
    }
    let started = Instant::now();
    let why = reason(store.metric_names(&t).await.unwrap_err());
    assert!(why.contains("circuit open"), "{why}");
    assert!(started.elapsed() < Duration::from_millis(100));
    server.resume();
}
