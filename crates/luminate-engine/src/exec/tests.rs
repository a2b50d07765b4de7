//! Bounds and cancellation of execution; exact answers are checked against the reference in
//! `tests/differential_conformance.rs`.

use std::time::Duration;

use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::{Dimensions, QueryContext, QueryPlan, StoreError, Tenant};

use super::*;
use crate::record::{SeriesDef, SeriesPoint, WriteBatch};

fn head_with(points: usize) -> Head {
    let mut head = Head::default();
    let batch = WriteBatch {
        tenant: Tenant::new("t"),
        new_series: vec![SeriesDef {
            id: 0,
            metric: "m".into(),
            dims: Dimensions::default(),
        }],
        points: (0..points)
            .map(|i| SeriesPoint {
                series: 0,
                timestamp: i as i64,
                value: i as f64,
            })
            .collect(),
    };
    head.apply_batch(&batch).unwrap();
    head
}

fn plan(kind: QueryKind) -> QueryPlan {
    QueryPlan {
        kind,
        metric: "m".into(),
        start: 0,
        end: i64::MAX,
        filters: vec![],
        group_by: vec![],
        interval_ms: Some(1_000),
        limit: 10,
        timeout: Duration::from_secs(10),
    }
}

#[test]
fn buffers_past_the_bound_are_query_too_large() {
    let head = head_with(101);
    let ctx = QueryContext::new(Duration::from_secs(10));
    let range = QueryPlan {
        interval_ms: None,
        ..plan(QueryKind::Range)
    };
    for p in [
        range,
        plan(QueryKind::Aggregate(Aggregation::P99)),
        plan(QueryKind::Aggregate(Aggregation::Integral)),
        plan(QueryKind::Rate),
    ] {
        match run(&head, &Tenant::new("t"), &p, &ctx, 100) {
            Err(StoreError::QueryTooLarge { message }) => {
                assert!(message.contains("100 values"), "{message}")
            }
            other => panic!("{:?}: expected QueryTooLarge, got {other:?}", p.kind),
        }
        assert!(run(&head, &Tenant::new("t"), &p, &ctx, 101).is_ok());
    }
    // Running moments buffer nothing, so they are not bounded.
    assert!(
        run(
            &head,
            &Tenant::new("t"),
            &plan(QueryKind::Aggregate(Aggregation::Sum)),
            &ctx,
            1
        )
        .is_ok()
    );
}

#[test]
fn cancellation_stops_a_running_scan() {
    let head = head_with(3 * CHECK_EVERY as usize);
    let ctx = QueryContext::new(Duration::from_secs(10));
    let mut scan = Scan {
        plan: &plan(QueryKind::Rate),
        ticker: Ticker {
            ctx: &ctx,
            since_check: 0,
        },
        max_values: usize::MAX,
    };
    let series = head.tenant(&Tenant::new("t")).unwrap().series(0);
    let mut seen = 0;
    let mut outcome = Ok(());
    for p in scan.points_in_range(series) {
        if let Err(e) = p {
            outcome = Err(e);
            break;
        }
        seen += 1;
        if seen == 10 {
            ctx.cancel();
        }
    }
    assert_eq!(
        outcome,
        Err(StoreError::Timeout {
            timeout: Duration::from_secs(10)
        })
    );
    assert_eq!(seen, CHECK_EVERY as usize - 1);
}

#[test]
fn empty_string_filter_selects_series_without_the_key() {
    let mut head = Head::default();
    let dims = |pairs: &[(&str, &str)]| {
        Dimensions::from_pairs(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())))
    };
    let batch = WriteBatch {
        tenant: Tenant::new("t"),
        new_series: vec![
            SeriesDef {
                id: 0,
                metric: "m".into(),
                dims: dims(&[("a", "1")]),
            },
            SeriesDef {
                id: 1,
                metric: "m".into(),
                dims: dims(&[("a", "1"), ("b", "2")]),
            },
            SeriesDef {
                id: 2,
                metric: "m".into(),
                dims: dims(&[("b", "2")]),
            },
        ],
        points: (0..3)
            .map(|series| SeriesPoint {
                series,
                timestamp: 0,
                value: 1.0,
            })
            .collect(),
    };
    head.apply_batch(&batch).unwrap();
    let t = head.tenant(&Tenant::new("t")).unwrap();
    let m = t.metric("m").unwrap();
    let ids = |filters: &[(&str, &str)]| -> Vec<Dimensions> {
        let f: Vec<(String, String)> = filters
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        select(t, m, &f)
            .into_iter()
            .map(|s| s.dims().clone())
            .collect()
    };
    assert_eq!(ids(&[("a", "1"), ("b", "")]), vec![dims(&[("a", "1")])]);
    assert_eq!(ids(&[("a", "")]), vec![dims(&[("b", "2")])]);
    assert_eq!(
        ids(&[("a", "1"), ("b", "2")]),
        vec![dims(&[("a", "1"), ("b", "2")])]
    );
    assert_eq!(ids(&[("a", "9")]), Vec::<Dimensions>::new());
}
