//! Concurrent writers share fsyncs (group commit) and every acknowledged batch is visible at once and
//! replayed after a restart, under every sync policy.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{count, point, tenant};
use luminate_engine::{Engine, EngineConfig, SyncPolicy};
use luminate_model::store::HealthStatus;

const THREADS: usize = 8;
const WRITES: usize = 40;
const POINTS: usize = 5;

fn hammer(config: EngineConfig) {
    let engine = Arc::new(Engine::open(config.clone()).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for w in 0..WRITES {
                    let points = (0..POINTS)
                        .map(|i| {
                            point(
                                "m",
                                (w * POINTS + i) as i64,
                                1.0,
                                &[("writer", &t.to_string()), ("i", &i.to_string())],
                            )
                        })
                        .collect();
                    assert_eq!(engine.write(&tenant(), points).unwrap().accepted, POINTS);
                    // Acknowledged means visible to a query that starts now.
                    assert!(count(&engine, &tenant(), "m") >= ((w + 1) * POINTS) as u64);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = (THREADS * WRITES * POINTS) as u64;
    assert_eq!(count(&engine, &tenant(), "m"), total);
    engine.sync().unwrap();
    let health = engine.health();
    assert_eq!(health.status, HealthStatus::Healthy);
    assert!(health.disk_used_bytes.unwrap() > 0);
    drop(engine);

    let engine = Engine::open(config).unwrap();
    assert_eq!(
        engine.recovery_report().records_replayed,
        (THREADS * WRITES) as u64
    );
    assert_eq!(count(&engine, &tenant(), "m"), total);
    assert_eq!(
        engine.cardinality(&tenant(), Some("m"))[0].series,
        (THREADS * POINTS) as u64
    );
}

#[test]
fn concurrent_writers_are_all_acknowledged_and_replayed_with_fsync_always() {
    let dir = tempfile::tempdir().unwrap();
    hammer(EngineConfig {
        sync: SyncPolicy::Always,
        ..EngineConfig::new(dir.path())
    });
}

#[test]
fn concurrent_writers_are_all_acknowledged_and_replayed_with_interval_sync() {
    let dir = tempfile::tempdir().unwrap();
    hammer(EngineConfig {
        sync: SyncPolicy::Interval(Duration::from_millis(2)),
        ..EngineConfig::new(dir.path())
    });
}

#[test]
fn concurrent_writers_are_all_acknowledged_and_replayed_without_fsync() {
    let dir = tempfile::tempdir().unwrap();
    hammer(EngineConfig {
        sync: SyncPolicy::None,
        wal_segment_bytes: 4096,
        ..EngineConfig::new(dir.path())
    });
}

#[test]
fn writers_racing_to_create_the_same_series_get_one_id_and_limits_hold() {
    const RACERS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        limits: luminate_engine::CardinalityLimits {
            max_series_per_metric: 20,
            max_metrics_per_tenant: 10,
        },
        ..EngineConfig::new(dir.path())
    };
    let engine = Arc::new(Engine::open(config.clone()).unwrap());
    let start = Arc::new(std::sync::Barrier::new(RACERS));
    // Every racer writes the same 30 new series: one id each for the first 20, the rest over the limit.
    let handles: Vec<_> = (0..RACERS)
        .map(|t| {
            let (engine, start) = (Arc::clone(&engine), Arc::clone(&start));
            std::thread::spawn(move || {
                let points = (0..30)
                    .map(|s| point("m", t as i64, 1.0, &[("s", &format!("{s:02}"))]))
                    .collect();
                start.wait();
                engine.write(&tenant(), points).unwrap()
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let accepted: usize = outcomes.iter().map(|o| o.accepted).sum();
    let rejected: usize = outcomes.iter().map(|o| o.rejected.len()).sum();
    assert_eq!(accepted + rejected, RACERS * 30);
    assert_eq!(
        accepted,
        RACERS * 20,
        "each racer stores the 20 series that fit"
    );
    assert_eq!(engine.cardinality(&tenant(), Some("m"))[0].series, 20);
    drop(engine);
    let engine = Engine::open(config).unwrap();
    assert_eq!(engine.cardinality(&tenant(), Some("m"))[0].series, 20);
    assert_eq!(count(&engine, &tenant(), "m"), (RACERS * 20) as u64);
}

#[test]
fn writers_racing_to_create_series_whose_names_the_index_holds_get_one_id_each() {
    const RACERS: usize = 8;
    const SERIES: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig::new(dir.path());
    let engine = Arc::new(Engine::open(config.clone()).unwrap());
    // Every name the racers will use is in the index already (`s = NN` carried by other series), so
    // their request threads find each new series' metric and postings and the writer thread defines
    // it from those ids.
    let seed = (0..SERIES)
        .map(|s| point("m", 0, 1.0, &[("s", &format!("{s:02}")), ("seed", "1")]))
        .collect();
    assert_eq!(engine.write(&tenant(), seed).unwrap().accepted, SERIES);
    let start = Arc::new(std::sync::Barrier::new(RACERS));
    let handles: Vec<_> = (0..RACERS)
        .map(|t| {
            let (engine, start) = (Arc::clone(&engine), Arc::clone(&start));
            std::thread::spawn(move || {
                let points = (0..SERIES)
                    .map(|s| point("m", 1 + t as i64, 1.0, &[("s", &format!("{s:02}"))]))
                    .collect();
                start.wait();
                engine.write(&tenant(), points).unwrap().accepted
            })
        })
        .collect();
    let accepted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(accepted, RACERS * SERIES);
    let expect = |engine: &Engine| {
        assert_eq!(
            engine.cardinality(&tenant(), Some("m"))[0].series,
            (2 * SERIES) as u64
        );
        assert_eq!(engine.memory().series, (2 * SERIES) as u64);
        assert_eq!(
            count(engine, &tenant(), "m"),
            (SERIES + RACERS * SERIES) as u64
        );
    };
    expect(&engine);
    drop(engine);
    // Replay defines the same series under the same ids from the records' strings.
    expect(&Engine::open(config).unwrap());
}

#[test]
fn overlapping_commit_groups_of_new_series_fill_a_limit_exactly() {
    const WRITERS: usize = 4;
    const WRITES: usize = 40;
    const LIMIT: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        limits: luminate_engine::CardinalityLimits {
            max_series_per_metric: LIMIT as u64,
            max_metrics_per_tenant: 10,
        },
        ..EngineConfig::new(dir.path())
    };
    let engine = Arc::new(Engine::open(config.clone()).unwrap());
    // Each write brings 2 series no other write has, so groups staged while an earlier group's fsync
    // runs keep creating series: 320 asked for, exactly 150 fit.
    let handles: Vec<_> = (0..WRITERS)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                let mut accepted = 0;
                for w in 0..WRITES {
                    let points = (0..2)
                        .map(|i| point("m", 1, 1.0, &[("s", &format!("{t}-{w}-{i}"))]))
                        .collect();
                    accepted += engine.write(&tenant(), points).unwrap().accepted;
                }
                accepted
            })
        })
        .collect();
    let accepted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(accepted, LIMIT);
    let expect = |engine: &Engine| {
        assert_eq!(
            engine.cardinality(&tenant(), Some("m"))[0].series,
            LIMIT as u64
        );
        assert_eq!(count(engine, &tenant(), "m"), LIMIT as u64);
    };
    expect(&engine);
    drop(engine);
    expect(&Engine::open(config).unwrap());
}
