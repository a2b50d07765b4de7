//! Helpers shared by the ClickHouse backend's scenario tests: a store on the test binary's shared
//! server in a database of its own, and point builders.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use luminate_clickhouse::testing::{self, ClickhouseServer};
use luminate_clickhouse::{ClickhouseSettings, ClickhouseStore};
use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::{
    Dimensions, MetricsStore, Point, PointBatch, QueryContext, QueryPlan, QueryResult, Tenant,
};

/// The test binary's server.
pub fn server() -> &'static ClickhouseServer {
    testing::shared()
}

/// Settings for `database` on the shared server.
pub fn settings(database: &str) -> ClickhouseSettings {
    server().settings(database)
}

/// A store on the shared server in `database` (created if missing).
pub async fn store(database: &str) -> ClickhouseStore {
    ClickhouseStore::open(settings(database))
        .await
        .unwrap_or_else(|e| panic!("open {database}: {e}\n{}", server().log_tail()))
}

pub fn point(name: &str, timestamp: i64, value: f64, dims: &[(&str, &str)]) -> Point {
    Point {
        name: name.to_owned(),
        timestamp,
        value,
        dimensions: Dimensions::from_pairs(
            dims.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        ),
    }
}

/// Writes points and asserts they were all accepted.
pub async fn write(store: &dyn MetricsStore, tenant: &Tenant, points: &[Point]) {
    let outcome = store
        .write(tenant, Arc::new(PointBatch::from_points(points.to_vec())))
        .await
        .unwrap();
    assert_eq!(
        (outcome.accepted, outcome.rejected.len()),
        (points.len(), 0)
    );
}

/// A plan over all time with defaults for the rest.
pub fn plan(kind: QueryKind, metric: &str) -> QueryPlan {
    QueryPlan {
        kind,
        metric: metric.to_owned(),
        start: i64::MIN,
        end: i64::MAX,
        filters: vec![],
        group_by: vec![],
        interval_ms: None,
        limit: 1_000,
        timeout: Duration::from_secs(30),
    }
}

pub async fn query(store: &dyn MetricsStore, tenant: &Tenant, plan: &QueryPlan) -> QueryResult {
    store
        .query(tenant, plan, &QueryContext::new(plan.timeout))
        .await
        .unwrap()
}

/// Number of stored points of `metric` (an aggregate count over all time).
pub async fn count(store: &dyn MetricsStore, tenant: &Tenant, metric: &str) -> u64 {
    match query(
        store,
        tenant,
        &plan(QueryKind::Aggregate(Aggregation::Count), metric),
    )
    .await
    {
        QueryResult::Aggregate { results, .. } => results.first().map_or(0, |g| g.count),
        other => panic!("unexpected {other:?}"),
    }
}
