//! The engine reports its WAL appends, fsyncs, flushes and compactions to the embedder's observer,
//! and its gauges through `Engine::stats`.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{point, tenant};
use luminate_engine::{CardinalityLimits, Engine, EngineConfig, EngineObserver};
use luminate_model::Tenant;
use std::sync::Mutex;

/// Counts every event.
#[derive(Debug, Default)]
struct Recorder {
    appends: AtomicU64,
    appended_bytes: AtomicU64,
    syncs: AtomicU64,
    failed_syncs: AtomicU64,
    flushes: AtomicU64,
    compactions: AtomicU64,
    warnings: Mutex<Vec<(String, &'static str)>>,
}

impl EngineObserver for Recorder {
    fn wal_appended(&self, bytes: u64) {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.appended_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn wal_synced(&self, _elapsed: Duration, ok: bool) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed_syncs.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn flushed(&self, _elapsed: Duration, ok: bool) {
        assert!(ok);
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }
    fn cardinality_warning(&self, tenant: &Tenant, limit: &'static str) {
        self.warnings
            .lock()
            .unwrap()
            .push((tenant.to_string(), limit));
    }
    fn compacted(&self, _elapsed: Duration, ok: bool) {
        assert!(ok);
        self.compactions.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn every_append_fsync_flush_and_compaction_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let config = EngineConfig {
        observer: recorder.clone(),
        compaction_min_parts: 2,
        ..EngineConfig::new(dir.path())
    };
    let engine = Engine::open(config).unwrap();
    let before = engine.stats();
    assert_eq!(before.memory.series, 0);
    assert_eq!(before.parts, 0);
    assert_eq!(
        before.wal_segments, 1,
        "the active segment exists from the start"
    );

    // Four sequential writes: under the default `Always` policy each is its own group, so each is one
    // record and one fsync. Flushing after each pair gives two parts of one partition.
    for round in 0..2 {
        for i in 0..2 {
            let t = (round * 2 + i) as i64;
            let points = vec![
                point("m", t, 1.0, &[("host", "a")]),
                point("m", t, 2.0, &[("host", "b")]),
            ];
            assert_eq!(engine.write(&tenant(), points).unwrap().accepted, 2);
        }
        let stats = engine.stats();
        assert_eq!(stats.memory.series, 2);
        assert_eq!(stats.memory.head_points, 4);
        assert!(stats.wal_bytes > 0);
        engine.flush().unwrap();
    }
    assert_eq!(recorder.appends.load(Ordering::Relaxed), 4);
    assert!(recorder.appended_bytes.load(Ordering::Relaxed) > 4 * 2 * 8);
    assert_eq!(recorder.syncs.load(Ordering::Relaxed), 4);
    assert_eq!(recorder.failed_syncs.load(Ordering::Relaxed), 0);
    assert_eq!(recorder.flushes.load(Ordering::Relaxed), 2);

    engine.compact().unwrap();
    assert!(recorder.compactions.load(Ordering::Relaxed) >= 1);
    let after = engine.stats();
    assert_eq!(after.parts, 1, "the two parts were merged");
    assert_eq!(after.memory.head_points, 0);
    assert!(after.disk_bytes > after.wal_bytes);
}

#[test]
fn passing_80_percent_of_a_limit_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let config = EngineConfig {
        observer: recorder.clone(),
        limits: CardinalityLimits {
            max_series_per_metric: 10,
            max_metrics_per_tenant: 5,
        },
        ..EngineConfig::new(dir.path())
    };
    let engine = Engine::open(config).unwrap();
    // Series 1..=7 of `m`: below 80 % of 10.
    for i in 0..7 {
        engine
            .write(
                &tenant(),
                vec![point("m", 1, 1.0, &[("i", &i.to_string())])],
            )
            .unwrap();
    }
    assert!(recorder.warnings.lock().unwrap().is_empty());
    // The 8th series and the 4th metric reach 80 % of their limits (in one batch: one group).
    let batch = vec![
        point("m", 1, 1.0, &[("i", "7")]),
        point("n", 1, 1.0, &[]),
        point("o", 1, 1.0, &[]),
        point("p", 1, 1.0, &[]),
    ];
    assert_eq!(engine.write(&tenant(), batch).unwrap().accepted, 4);
    // Past the level: no second warning.
    engine
        .write(&tenant(), vec![point("m", 1, 1.0, &[("i", "8")])])
        .unwrap();
    let mut seen = recorder.warnings.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("acme".to_owned(), "max_metrics_per_tenant"),
            ("acme".to_owned(), "max_unique_series_per_metric"),
        ]
    );
}
