//! A full disk through the whole engine: writes, segment rolls, flushes and manifests that find no room
//! (made to fail part-way through [`super::fault`], as write(2) does on a full file system) leave
//! nothing half-written, poison nothing, and succeed once space is freed — with every acknowledged
//! point there exactly once after a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::store::HealthStatus;
use luminate_model::{Dimensions, Point, QueryContext, QueryPlan, QueryResult, Tenant};

use super::fault;
use crate::{Engine, EngineConfig, EngineError, SyncPolicy};

fn point(series: &str, timestamp: i64) -> Point {
    Point {
        name: "m".to_owned(),
        timestamp,
        value: timestamp as f64,
        dimensions: Dimensions::from_pairs([("s".to_owned(), series.to_owned())]),
    }
}

fn tenant() -> Tenant {
    Tenant::new("t")
}

fn config(dir: &Path) -> EngineConfig {
    EngineConfig {
        sync: SyncPolicy::Always,
        ..EngineConfig::new(dir)
    }
}

/// Points of metric `m` stored, over all time.
fn count(engine: &Engine) -> u64 {
    let plan = QueryPlan {
        kind: QueryKind::Aggregate(Aggregation::Count),
        metric: "m".to_owned(),
        start: i64::MIN,
        end: i64::MAX,
        filters: vec![],
        group_by: vec![],
        interval_ms: None,
        limit: 10,
        timeout: Duration::from_secs(10),
    };
    match engine
        .query(&tenant(), &plan, &QueryContext::new(plan.timeout))
        .unwrap()
    {
        QueryResult::Aggregate { results, .. } => results.first().map_or(0, |g| g.count),
        other => panic!("unexpected {other:?}"),
    }
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// The files in `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn no_space(result: Result<impl std::fmt::Debug, EngineError>, file: &str) -> String {
    match result {
        Err(e @ EngineError::NoSpace { .. }) => {
            let shown = e.to_string();
            assert!(shown.contains(file), "{shown}");
            assert!(shown.contains("No space left on device"), "{shown}");
            assert!(shown.contains("bytes free of"), "{shown}");
            shown
        }
        other => panic!("expected NoSpace naming {file}, got {other:?}"),
    }
}

/// Waits (at most 20 s) for `check`.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_write_that_does_not_fit_is_cut_off_the_wal_and_stored_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let segment = wal.join("00000001.wal");
    let engine = Engine::open(config(dir.path())).unwrap();
    engine.write(&tenant(), vec![point("a", 1)]).unwrap();
    engine
        .write_samples(
            &tenant(),
            std::sync::Arc::new(luminate_model::PointBatch::from_points(vec![point("a", 2)])),
        )
        .unwrap();
    let before = len(&segment);

    // 10 bytes of the next record fit, then the disk is full.
    fault::fill(&wal, 10);
    no_space(
        engine.write(&tenant(), vec![point("a", 3), point("b", 3)]),
        "00000001.wal",
    );
    assert_eq!(len(&segment), before, "the torn record was cut off");
    // A protocol write of a newer sample is refused too: its sample must not count as stored.
    let resend = || {
        std::sync::Arc::new(luminate_model::PointBatch::from_points(vec![
            point("a", 4),
            point("c", 4),
        ]))
    };
    no_space(engine.write_samples(&tenant(), resend()), "00000001.wal");
    no_space(engine.delete_before(&tenant(), "m", 2), "00000001.wal");
    assert_eq!(len(&segment), before);
    let stall = engine.shared.space.reason(super::Job::Wal).unwrap();
    assert!(stall.contains("00000001.wal"), "{stall}");
    // Health reports the writer's stall only while the file system has no room for the write that
    // failed: this one, whose full disk is simulated, has room, so health is healthy again.
    assert_eq!(engine.health().status, HealthStatus::Healthy);
    assert_eq!(engine.shared.space.reason(super::Job::Wal), None);
    // Reads go on, and see only what was acknowledged.
    assert_eq!(count(&engine), 2);
    assert_eq!(engine.memory().series, 1);
    assert_eq!(engine.poisoned(), None);

    fault::free(&wal);
    let stored = engine
        .write(&tenant(), vec![point("a", 3), point("b", 3)])
        .unwrap();
    assert_eq!(stored.accepted, 2);
    // The refused protocol batch, resent, is stored: nothing of it was taken for a duplicate.
    let resent = engine.write_samples(&tenant(), resend()).unwrap();
    assert_eq!((resent.accepted, resent.duplicates), (2, 0));
    assert_eq!(engine.health().status, HealthStatus::Healthy);
    assert_eq!(count(&engine), 6);
    assert_eq!(engine.memory().series, 3);
    drop(engine);

    let engine = Engine::open(config(dir.path())).unwrap();
    assert!(
        engine.recovery_report().dropped.is_empty(),
        "{:?}",
        engine.recovery_report()
    );
    assert_eq!(count(&engine), 6);
    assert_eq!(engine.memory().series, 3);
}

#[test]
fn a_segment_that_does_not_fit_is_removed_and_created_by_a_later_write() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    // Every record after the first rolls to a new segment.
    let config = EngineConfig {
        wal_segment_bytes: 1,
        ..config(dir.path())
    };
    let engine = Engine::open(config.clone()).unwrap();
    engine.write(&tenant(), vec![point("a", 1)]).unwrap();
    // Half of the new segment's header fits.
    fault::fill(&wal, 4);
    no_space(engine.write(&tenant(), vec![point("a", 2)]), "00000002.wal");
    assert_eq!(files(&wal), ["00000001.wal"]);
    fault::free(&wal);
    engine.write(&tenant(), vec![point("a", 2)]).unwrap();
    assert_eq!(files(&wal), ["00000001.wal", "00000002.wal"]);
    drop(engine);
    let engine = Engine::open(config).unwrap();
    assert!(engine.recovery_report().dropped.is_empty());
    assert_eq!(count(&engine), 2);
}

/// Writes 200 points of 20 series, then makes `full` fit `room` bytes and asks for a flush: it is
/// refused while the flusher retries; the head stays served and nothing is left in `parts/`. Once space
/// is freed the flush completes by itself, and a restart finds every point once.
fn flush_into_a_full(full: &str, room: u64) {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join(full);
    let parts = dir.path().join("parts");
    let engine = Engine::open(config(dir.path())).unwrap();
    for t in 0..10 {
        let points = (0..20).map(|s| point(&format!("s{s}"), t)).collect();
        engine.write(&tenant(), points).unwrap();
    }
    std::fs::create_dir_all(&full).unwrap();
    fault::fill(&full, room);
    let refused = engine.flush().unwrap_err();
    assert!(
        matches!(refused, EngineError::FlushStalled { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("No space left on device"),
        "{refused}"
    );
    // Nothing half-written: no part, no temp file; the manifest (if any) is the old one.
    assert_eq!(files(&parts), Vec::<String>::new());
    assert!(!dir.path().join("MANIFEST.tmp").exists());
    let health = engine.health();
    assert_eq!(health.status, HealthStatus::Unavailable);
    assert!(
        health.error.as_deref().unwrap().contains("flush stalled"),
        "{health:?}"
    );
    // Queries read the frozen head meanwhile; writes go on while the head has room.
    assert_eq!(count(&engine), 200);
    engine.write(&tenant(), vec![point("s0", 100)]).unwrap();
    assert_eq!(engine.poisoned(), None);

    fault::free(&full);
    assert!(
        eventually(|| engine.part_count() > 0 && engine.health().status == HealthStatus::Healthy),
        "{:?}",
        engine.health()
    );
    engine.flush().unwrap();
    assert_eq!(count(&engine), 201);
    assert!(files(&parts).iter().all(|f| !f.ends_with(".tmp")));
    drop(engine);
    let engine = Engine::open(config(dir.path())).unwrap();
    assert_eq!(count(&engine), 201);
    assert_eq!(engine.memory().series, 20);
}

#[test]
fn a_part_that_does_not_fit_is_removed_and_the_flush_retried() {
    flush_into_a_full("parts", 50);
}

#[test]
fn series_definitions_that_do_not_fit_are_logged_again_by_the_retried_flush() {
    flush_into_a_full("series", 20);
}

#[test]
fn a_manifest_that_does_not_fit_leaves_the_old_one_and_no_new_part() {
    // The data directory holds the manifest's temp file (and nothing else is written there).
    flush_into_a_full("", 10);
}

#[test]
fn a_merged_part_that_does_not_fit_is_removed_and_the_inputs_stay_listed() {
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("parts");
    let engine = Engine::open(config(dir.path())).unwrap();
    // Two flushes: two parts of one partition.
    for t in 0..2 {
        let points = (0..20).map(|s| point(&format!("s{s}"), t)).collect();
        engine.write(&tenant(), points).unwrap();
        engine.flush().unwrap();
    }
    // The background compactor may not merge two parts (its minimum is higher); wait for it to rest.
    assert!(eventually(|| engine.part_count() == 2));
    let before = files(&parts);
    assert_eq!(before.len(), 2, "{before:?}");

    fault::fill(&parts, 50);
    let refused =
        crate::compact::compact_all(&engine.shared, crate::compact::Policy::All).unwrap_err();
    assert!(matches!(refused, EngineError::NoSpace { .. }), "{refused}");
    assert_eq!(files(&parts), before, "no merged part, no temp file");
    assert_eq!(engine.part_count(), 2);
    assert_eq!(count(&engine), 40);

    fault::free(&parts);
    crate::compact::compact_all(&engine.shared, crate::compact::Policy::All).unwrap();
    assert_eq!(engine.part_count(), 1);
    assert_eq!(files(&parts).len(), 1);
    assert_eq!(count(&engine), 40);
    drop(engine);
    let engine = Engine::open(config(dir.path())).unwrap();
    assert_eq!(count(&engine), 40);
}
