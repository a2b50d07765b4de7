//! Queries honour their context: an expired or cancelled one returns `Timeout` instead of an answer.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::time::Duration;

use common::{open, point, tenant};
use luminate_engine::EngineError;
use luminate_model::query::QueryKind;
use luminate_model::{QueryContext, QueryPlan, StoreError};

#[test]
fn query_with_an_expired_or_cancelled_context_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine
        .write(
            &tenant(),
            (0..100).map(|t| point("m", t, 1.0, &[])).collect(),
        )
        .unwrap();
    let plan = QueryPlan {
        kind: QueryKind::Range,
        metric: "m".into(),
        start: 0,
        end: 1_000,
        filters: vec![],
        group_by: vec![],
        interval_ms: None,
        limit: 10_000,
        timeout: Duration::ZERO,
    };
    match engine.query(&tenant(), &plan, &QueryContext::new(Duration::ZERO)) {
        Err(EngineError::Query(StoreError::Timeout { timeout })) => {
            assert_eq!(timeout, Duration::ZERO)
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    let cancelled = QueryContext::new(Duration::from_secs(10));
    cancelled.cancel();
    assert!(matches!(
        engine.query(&tenant(), &plan, &cancelled),
        Err(EngineError::Query(StoreError::Timeout { .. }))
    ));
    assert_eq!(
        engine
            .query(
                &tenant(),
                &plan,
                &QueryContext::new(Duration::from_secs(10))
            )
            .unwrap()
            .point_count(),
        100
    );
}
