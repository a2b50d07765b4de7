//! The protocol ingest rule on ClickHouse (`MetricsStore::write_samples`, docs/ingest.md): per series,
//! a sample is stored only when its timestamp is after the newest sample the series holds, read from
//! ClickHouse itself — so a retried batch stores nothing twice, through the same store, concurrently,
//! and through another store (a restarted or second Luminate) over the same tables.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{count, point, store, write};
use luminate_model::{MetricsStore, Point, PointBatch, Tenant, WriteOutcome};

async fn samples(store: &dyn MetricsStore, tenant: &Tenant, points: &[Point]) -> WriteOutcome {
    store
        .write_samples(tenant, Arc::new(PointBatch::from_points(points.to_vec())))
        .await
        .unwrap()
}

/// (accepted, duplicates, out of order).
fn counts(o: &WriteOutcome) -> (usize, usize, usize) {
    assert!(o.rejected.is_empty(), "{:?}", o.rejected);
    (o.accepted, o.duplicates, o.out_of_order)
}

/// Three samples of each of three series: one with no dimension, one with quotes in its strings.
fn scrape(base: i64) -> Vec<Point> {
    let mut points = Vec::new();
    for dims in [
        vec![],
        vec![("job", "a")],
        vec![("job", "it's \\ 'quoted'")],
    ] {
        for t in [0, 1_000, 2_000] {
            points.push(point("up", base + t, t as f64, &dims));
        }
    }
    points
}

fn base() -> i64 {
    luminate_model::time::now_ms() - 60_000
}

#[tokio::test]
async fn a_retried_batch_stores_nothing_twice_through_any_store_over_the_tables() {
    let store = store("dedup_retry").await;
    let tenant = Tenant::new("acme");
    let base = base();
    assert_eq!(
        counts(&samples(&store, &tenant, &scrape(base)).await),
        (9, 0, 0)
    );
    assert_eq!(
        counts(&samples(&store, &tenant, &scrape(base)).await),
        (0, 3, 6)
    );
    // A second store over the same tables (a restarted or another Luminate) knows the same newest.
    let other = common::store("dedup_retry").await;
    assert_eq!(
        counts(&samples(&other, &tenant, &scrape(base)).await),
        (0, 3, 6)
    );
    let next = [
        point("up", base + 2_000, 9.0, &[("job", "a")]),
        point("up", base + 3_000, 1.0, &[("job", "a")]),
        point("up", base + 3_000, 1.0, &[("job", "a")]),
    ];
    assert_eq!(counts(&samples(&other, &tenant, &next).await), (1, 1, 1));
    assert_eq!(count(&store, &tenant, "up").await, 10);
    // Another tenant's identical series is its own.
    let b = Tenant::new("b");
    assert_eq!(counts(&samples(&store, &b, &scrape(base)).await), (9, 0, 0));
}

#[tokio::test]
async fn json_writes_are_never_deduplicated_but_set_the_newest() {
    let store = store("dedup_json").await;
    let tenant = Tenant::new("acme");
    let base = base();
    let json = [point("up", base + 2_000, 2_000.0, &[("job", "a")])];
    write(&store, &tenant, &json).await;
    write(&store, &tenant, &json).await;
    assert_eq!(
        counts(&samples(&store, &tenant, &scrape(base)).await),
        (6, 1, 2)
    );
    assert_eq!(count(&store, &tenant, "up").await, 8);
}

#[tokio::test]
async fn concurrent_retries_of_one_batch_store_it_once() {
    let store = Arc::new(store("dedup_concurrent").await);
    let tenant = Tenant::new("acme");
    let base = base();
    let senders: Vec<_> = (0..6)
        .map(|_| {
            let (store, tenant) = (Arc::clone(&store), tenant.clone());
            tokio::spawn(async move { samples(&*store, &tenant, &scrape(base)).await.accepted })
        })
        .collect();
    let mut stored = 0;
    for s in senders {
        stored += s.await.unwrap();
    }
    assert_eq!(stored, 9);
    assert_eq!(count(&*store, &tenant, "up").await, 9);
}

/// What the rule costs per batch: a 2 000-series batch written as JSON and as protocol samples
/// (printed for docs/clickhouse.md), and its retry.
#[tokio::test]
async fn a_large_batch_is_judged_in_one_query() {
    let store = store("dedup_cost").await;
    let tenant = Tenant::new("acme");
    let base = base();
    let batch = |t: i64| -> Vec<Point> {
        (0..2_000)
            .map(|i| point("req", base + t, 1.0, &[("customer", &format!("c{i}"))]))
            .collect()
    };
    let started = Instant::now();
    write(&store, &tenant, &batch(0)).await;
    let json = started.elapsed();
    let started = Instant::now();
    assert_eq!(
        counts(&samples(&store, &tenant, &batch(1)).await),
        (2_000, 0, 0)
    );
    let first = started.elapsed();
    let started = Instant::now();
    assert_eq!(
        counts(&samples(&store, &tenant, &batch(1)).await),
        (0, 2_000, 0)
    );
    let retry = started.elapsed();
    eprintln!("2000 series: JSON write {json:?}, protocol write {first:?}, its retry {retry:?}");
    assert_eq!(count(&store, &tenant, "req").await, 4_000);
}
