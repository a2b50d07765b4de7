//! Cardinality limits at write time: a batch crossing a limit stores exactly the allowed points and
//! rejects the others by index with `CARDINALITY_EXCEEDED`; limits count live series and metrics.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use common::{count, counts_by, point, tenant};
use luminate_engine::{CardinalityLimits, Engine, EngineConfig};
use luminate_model::{ErrorCode, Tenant};

fn open_with(dir: &std::path::Path, limits: CardinalityLimits) -> Engine {
    Engine::open(EngineConfig {
        limits,
        ..common::config(dir)
    })
    .unwrap()
}

fn rejected(outcome: &luminate_model::WriteOutcome) -> Vec<usize> {
    assert!(
        outcome
            .rejected
            .iter()
            .all(|r| r.code == ErrorCode::CardinalityExceeded)
    );
    outcome.rejected.iter().map(|r| r.index).collect()
}

#[test]
fn batch_crossing_max_series_per_metric_stores_exactly_the_allowed_points() {
    let dir = tempfile::tempdir().unwrap();
    let limits = CardinalityLimits {
        max_series_per_metric: 3,
        max_metrics_per_tenant: 100,
    };
    let engine = open_with(dir.path(), limits);
    let c = |id: &str, ts: i64| point("m", ts, 1.0, &[("customer", id)]);
    let batch = vec![
        c("a", 1),
        c("b", 2),
        c("a", 3),
        c("c", 4),
        c("d", 5),
        c("a", 6),
        c("e", 7),
    ];
    let outcome = engine.write(&tenant(), batch).unwrap();
    assert_eq!(outcome.accepted, 5);
    assert_eq!(rejected(&outcome), vec![4, 6]);
    assert!(
        outcome.rejected[0]
            .message
            .contains("max_unique_series_per_metric of 3"),
        "{}",
        outcome.rejected[0].message
    );
    assert_eq!(count(&engine, &tenant(), "m"), 5);
    assert_eq!(engine.cardinality(&tenant(), Some("m"))[0].series, 3);

    // Another tenant has its own budget.
    let other = Tenant::new("other");
    assert_eq!(
        engine
            .write(&other, vec![c("x", 1), c("y", 1), c("z", 1)])
            .unwrap()
            .accepted,
        3
    );

    // The limit holds across a restart; existing series still take points.
    drop(engine);
    let engine = open_with(dir.path(), limits);
    let outcome = engine.write(&tenant(), vec![c("f", 8), c("b", 9)]).unwrap();
    assert_eq!((outcome.accepted, rejected(&outcome)), (1, vec![0]));

    // Deleting every point of a series frees its place.
    engine.delete_before(&tenant(), "m", 3).unwrap(); // removes a@1 and b@2: both keep later points
    assert_eq!(
        rejected(&engine.write(&tenant(), vec![c("f", 10)]).unwrap()),
        vec![0]
    );
    engine.delete_before(&tenant(), "m", 5).unwrap(); // removes c@4: c is dead
    assert_eq!(
        engine.write(&tenant(), vec![c("f", 11)]).unwrap().accepted,
        1
    );
}

#[test]
fn batch_crossing_max_metrics_per_tenant_stores_exactly_the_allowed_points() {
    let dir = tempfile::tempdir().unwrap();
    let limits = CardinalityLimits {
        max_series_per_metric: 100,
        max_metrics_per_tenant: 2,
    };
    let engine = open_with(dir.path(), limits);
    let batch = vec![
        point("m1", 1, 1.0, &[]),
        point("m2", 1, 1.0, &[]),
        point("m3", 1, 1.0, &[]),
        point("m1", 2, 1.0, &[("k", "v")]),
        point("m4", 1, 1.0, &[]),
    ];
    let outcome = engine.write(&tenant(), batch).unwrap();
    assert_eq!((outcome.accepted, rejected(&outcome)), (3, vec![2, 4]));
    assert!(
        outcome.rejected[0]
            .message
            .contains("max_metrics_per_tenant of 2"),
        "{}",
        outcome.rejected[0].message
    );
    assert_eq!(engine.metric_names(&tenant()), vec!["m1", "m2"]);

    // A batch rejected entirely stores nothing and writes no WAL record.
    let outcome = engine
        .write(&tenant(), vec![point("m3", 1, 1.0, &[])])
        .unwrap();
    assert_eq!((outcome.accepted, rejected(&outcome)), (0, vec![0]));
    drop(engine);
    let engine = open_with(dir.path(), limits);
    assert_eq!(engine.recovery_report().records_replayed, 1);

    // A metric whose points are all deleted is unknown and no longer counts.
    assert_eq!(engine.delete_before(&tenant(), "m2", 10).unwrap(), 1);
    assert_eq!(engine.dimension_keys(&tenant(), "m2"), None);
    assert_eq!(
        engine
            .write(&tenant(), vec![point("m3", 1, 1.0, &[])])
            .unwrap()
            .accepted,
        1
    );
    assert_eq!(engine.metric_names(&tenant()), vec!["m1", "m3"]);
}

/// Points per customer of `m`.
fn per_customer(engine: &Engine) -> Vec<(String, u64)> {
    counts_by(engine, &tenant(), "m", &["customer"])
}

/// A write ordered by series (an import) holds several points of each new series: the points after the
/// first take the series the first was given (`commit::write`'s `same_as`). What they are given must
/// be what resolving each on its own gives: one series, limits counting it once, a series rejected by
/// a limit rejected at every point, a deleted series revived once, the same after a restart.
#[test]
fn points_repeating_a_new_series_in_one_write_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let limits = CardinalityLimits {
        max_series_per_metric: 3,
        max_metrics_per_tenant: 100,
    };
    let engine = open_with(dir.path(), limits);
    let c = |id: &str, ts: i64| point("m", ts, 1.0, &[("customer", id)]);
    // The tenant's first write (no index yet, so nothing is looked up before the writer thread).
    assert_eq!(
        engine
            .write(&tenant(), vec![c("seed", 0)])
            .unwrap()
            .accepted,
        1
    );
    let outcome = engine
        .write(
            &tenant(),
            vec![
                c("a", 1),
                c("a", 2),
                c("b", 3),
                c("c", 4),
                c("a", 5),
                c("c", 6),
                c("b", 7),
            ],
        )
        .unwrap();
    assert_eq!((outcome.accepted, rejected(&outcome)), (5, vec![3, 5]));
    let expected = vec![("a".into(), 3), ("b".into(), 2), ("seed".into(), 1)];
    assert_eq!(per_customer(&engine), expected);
    assert_eq!(engine.cardinality(&tenant(), Some("m"))[0].series, 3);

    // Deleted, then written again several times in one write: revived once, its place counted once.
    assert_eq!(engine.delete_before(&tenant(), "m", 100).unwrap(), 6);
    let outcome = engine
        .write(
            &tenant(),
            vec![
                c("a", 200),
                c("b", 201),
                c("a", 202),
                c("d", 203),
                c("a", 204),
                c("e", 205),
            ],
        )
        .unwrap();
    assert_eq!((outcome.accepted, rejected(&outcome)), (5, vec![5]));
    let expected = vec![("a".into(), 3), ("b".into(), 1), ("d".into(), 1)];
    assert_eq!(per_customer(&engine), expected);
    assert_eq!(engine.cardinality(&tenant(), Some("m"))[0].series, 3);

    drop(engine);
    let engine = open_with(dir.path(), limits);
    assert_eq!(per_customer(&engine), expected);
    assert_eq!(engine.cardinality(&tenant(), Some("m"))[0].series, 3);
}
