//! Helpers shared by the engine's scenario tests.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use luminate_engine::{Engine, EngineConfig, SyncPolicy};
use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::{Dimensions, Point, QueryContext, QueryPlan, QueryResult, Tenant};

/// The first WAL segment of a data directory (layout documented in `wal/mod.rs`).
pub fn first_segment(data_dir: &Path) -> PathBuf {
    data_dir.join("wal").join("00000001.wal")
}

pub fn config(dir: &Path) -> EngineConfig {
    EngineConfig {
        sync: SyncPolicy::None,
        ..EngineConfig::new(dir)
    }
}

pub fn open(dir: &Path) -> Engine {
    Engine::open(config(dir)).expect("open engine")
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

pub fn tenant() -> Tenant {
    Tenant::new("acme")
}

/// Number of stored points of `metric` (an aggregate count over all time).
pub fn count(engine: &Engine, tenant: &Tenant, metric: &str) -> u64 {
    counts_by(engine, tenant, metric, &[])
        .first()
        .map_or(0, |(_, n)| *n)
}

/// Stored points of `metric` per value of the `group_by` keys (their values joined by `,`), ordered
/// by those values.
pub fn counts_by(
    engine: &Engine,
    tenant: &Tenant,
    metric: &str,
    group_by: &[&str],
) -> Vec<(String, u64)> {
    let plan = QueryPlan {
        kind: QueryKind::Aggregate(Aggregation::Count),
        metric: metric.to_owned(),
        start: i64::MIN,
        end: i64::MAX,
        filters: vec![],
        group_by: group_by.iter().map(|k| (*k).to_owned()).collect(),
        interval_ms: None,
        limit: 1_000,
        timeout: Duration::from_secs(10),
    };
    match engine
        .query(tenant, &plan, &QueryContext::new(plan.timeout))
        .unwrap()
    {
        QueryResult::Aggregate { results, .. } => {
            let mut counts: Vec<(String, u64)> = results
                .into_iter()
                .map(|g| {
                    let values: Vec<&str> = g.group_key.0.iter().map(|(_, v)| v.as_str()).collect();
                    (values.join(","), g.count)
                })
                .collect();
            counts.sort();
            counts
        }
        other => panic!("unexpected {other:?}"),
    }
}
