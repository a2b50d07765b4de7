//! Snapshots through the engine's API: a copy of the listed bytes opens with the same answers, whatever
//! flushes, compactions, deletes and writes happen after the snapshot; releasing and reopening leave
//! no link behind.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::{Dimensions, Point, QueryContext, QueryPlan, Tenant};

use super::BACKUPS_DIR;
use crate::{Engine, EngineConfig, Snapshot};

fn points(metric: &str, from: i64, n: i64) -> Vec<Point> {
    (from..from + n)
        .map(|i| Point {
            name: metric.to_owned(),
            timestamp: 1_000 * i,
            value: i as f64,
            dimensions: Dimensions::from_pairs([("c".to_owned(), format!("c{}", i % 7))]),
        })
        .collect()
}

/// Count and sum by `c` over everything, as a comparable string.
fn answer(engine: &Engine, metric: &str) -> String {
    let mut out = String::new();
    for aggregation in [Aggregation::Count, Aggregation::Sum] {
        let plan = QueryPlan {
            kind: QueryKind::Aggregate(aggregation),
            metric: metric.to_owned(),
            start: 0,
            end: i64::MAX,
            filters: vec![],
            group_by: vec!["c".to_owned()],
            interval_ms: None,
            limit: 100,
            timeout: Duration::from_secs(10),
        };
        let result = engine
            .query(
                &Tenant::new("t"),
                &plan,
                &QueryContext::new(Duration::from_secs(10)),
            )
            .unwrap();
        out.push_str(&format!("{result:?}\n"));
    }
    out
}

/// Writes every file of `snapshot` under `to`, checking each listed size and checksum.
fn restore(snapshot: &Snapshot, to: &Path) {
    for file in snapshot.files() {
        let mut bytes = Vec::new();
        snapshot
            .read(&file.path)
            .unwrap()
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes.len() as u64, file.size, "{}", file.path);
        assert_eq!(crc32c::crc32c(&bytes), file.crc32c, "{}", file.path);
        let path = to.join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn a_snapshot_reopens_with_the_answers_it_was_taken_at_whatever_happens_after() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        compaction_min_parts: 2,
        ..EngineConfig::new(dir.path())
    };
    let engine = Engine::open(config).unwrap();
    let t = Tenant::new("t");
    // Two parts, then points in the head (the WAL), a delete and a retention override.
    engine.write(&t, points("m", 0, 500)).unwrap();
    engine.flush().unwrap();
    engine.write(&t, points("m", 500, 500)).unwrap();
    engine.flush().unwrap();
    engine.write(&t, points("m", 1_000, 300)).unwrap();
    engine.delete_before(&t, "m", 100_000).unwrap();
    engine
        .set_retention(&t, "m", Duration::from_secs(86_400))
        .unwrap();
    let expected = answer(&engine, "m");

    let snapshot = engine.snapshot().unwrap();
    let paths: Vec<&str> = snapshot.files().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths[0], "MANIFEST");
    assert!(paths.contains(&"retention.json"), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("parts/")), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("wal/")), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("series/")), "{paths:?}");
    // Everything changes afterwards: more writes, a flush, a compaction (which unlinks the parts the
    // snapshot holds), another delete.
    engine.write(&t, points("m", 2_000, 400)).unwrap();
    engine.settle().unwrap();
    engine.delete_before(&t, "m", 2_100_000).unwrap();
    engine.compact().unwrap();
    assert_ne!(answer(&engine, "m"), expected);

    let copy = tempfile::tempdir().unwrap();
    restore(&snapshot, copy.path());
    let restored = Engine::open(EngineConfig::new(copy.path())).unwrap();
    assert_eq!(answer(&restored, "m"), expected);
    assert_eq!(restored.retention_overrides(&t).len(), 1);
    assert!(restored.recovery_report().dropped.is_empty());

    let pinned = dir.path().join(BACKUPS_DIR).join(snapshot.id());
    assert!(pinned.is_dir());
    drop(snapshot);
    assert!(!pinned.exists(), "a released snapshot leaves nothing");
}

#[test]
fn snapshots_of_an_earlier_run_are_removed_when_the_engine_opens() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    engine.write(&Tenant::new("t"), points("m", 0, 10)).unwrap();
    let snapshot = engine.snapshot().unwrap();
    let pinned = dir.path().join(BACKUPS_DIR).join(snapshot.id());
    // A crash: neither the snapshot nor the engine gets to clean up.
    std::mem::forget(snapshot);
    drop(engine);
    assert!(pinned.is_dir());
    let reopened = Engine::open(EngineConfig::new(dir.path())).unwrap();
    assert!(!dir.path().join(BACKUPS_DIR).exists());
    assert_eq!(reopened.metric_names(&Tenant::new("t")), ["m"]);
}

#[test]
fn a_snapshot_serves_only_its_own_files_and_the_bytes_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    let t = Tenant::new("t");
    engine.write(&t, points("m", 0, 10)).unwrap();
    let snapshot = engine.snapshot().unwrap();
    let wal = snapshot
        .files()
        .iter()
        .find(|f| f.path.starts_with("wal/"))
        .unwrap()
        .clone();
    // The active segment grows after the snapshot; the snapshot still serves its cut.
    engine.write(&t, points("m", 10, 10)).unwrap();
    let grown = std::fs::metadata(dir.path().join(&wal.path)).unwrap().len();
    assert!(grown > wal.size);
    let mut bytes = Vec::new();
    snapshot
        .read(&wal.path)
        .unwrap()
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes.len() as u64, wal.size);
    assert!(snapshot.read("LOCK").unwrap().is_none());
    assert!(snapshot.read("../MANIFEST").unwrap().is_none());
}
