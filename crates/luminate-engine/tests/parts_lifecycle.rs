//! Parts on disk through the engine: a flush moves the head into parts and deletes the WAL it came
//! from; start-up removes files the manifest does not list and refuses corrupt parts; compaction drops,
//! rewrites and merges parts; writers wait for a flush rather than grow memory.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{count, point, tenant};
use luminate_engine::{Engine, EngineConfig, EngineError, SyncPolicy};
use luminate_model::{Filter, Point};

const DAY: i64 = 86_400_000;
const BASE: i64 = 20_000 * DAY;

fn config(dir: &Path) -> EngineConfig {
    EngineConfig {
        sync: SyncPolicy::None,
        compaction_min_parts: 4,
        ..EngineConfig::new(dir)
    }
}

fn points(n: usize, start: i64, step: i64) -> Vec<Point> {
    (0..n)
        .map(|i| {
            let host = format!("h{}", i % 7);
            point("m", start + i as i64 * step, i as f64, &[("host", &host)])
        })
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
    files(&dir.join("parts"))
        .into_iter()
        .map(|n| dir.join("parts").join(n))
        .collect()
}

#[test]
fn a_flush_larger_than_one_sort_slice_writes_every_point_once_in_order() {
    // 400 000 points of 5 000 series over two days, arriving out of order: the flush sorts the
    // partition slice by slice of series ids (256 Ki rows at a time); every point must come back once,
    // in each series' time order.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    let n = 400_000i64;
    let all: Vec<Point> = (0..n)
        .map(|i| {
            let j = (i * 7_919) % n; // a permutation of 0..n
            let host = format!("h{}", j % 5_000);
            let t = BASE + DAY / 2 + (j / 5_000) * 1_000_000; // 80 points per series, spanning midnight
            point("m", t, j as f64, &[("host", &host)])
        })
        .collect();
    for batch in all.chunks(10_000) {
        engine.write(&tenant(), batch.to_vec()).unwrap();
    }
    engine.flush().unwrap();
    drop(engine);
    assert!(
        part_files(dir.path()).len() >= 2,
        "one part per day at least"
    );
    let engine = Engine::open(config(dir.path())).unwrap();
    assert_eq!(count(&engine, &tenant(), "m"), n as u64);
    let plan = luminate_model::QueryPlan {
        kind: luminate_model::QueryKind::Range,
        metric: "m".into(),
        start: i64::MIN,
        end: i64::MAX,
        filters: vec![Filter::equals("host", "h4321")],
        group_by: vec![],
        interval_ms: None,
        limit: 1_000,
        timeout: Duration::from_secs(10),
    };
    let ctx = luminate_model::QueryContext::new(plan.timeout);
    let luminate_model::QueryResult::Range { results, truncated } =
        engine.query(&tenant(), &plan, &ctx).unwrap()
    else {
        panic!("not a range answer");
    };
    assert!(!truncated);
    let got: Vec<(i64, f64)> = results.iter().map(|p| (p.timestamp, p.value)).collect();
    let want: Vec<(i64, f64)> = (0..80)
        .map(|k| (BASE + DAY / 2 + k * 1_000_000, (k * 5_000 + 4_321) as f64))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_flush_deletes_the_flushed_wal_segments_and_restart_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        wal_segment_bytes: 4 << 10,
        ..config(dir.path())
    };
    {
        let engine = Engine::open(cfg.clone()).unwrap();
        for b in 0..20 {
            engine
                .write(&tenant(), points(50, BASE + b * 50_000, 1_000))
                .unwrap();
        }
        assert!(files(&dir.path().join("wal")).len() > 3);
        engine.flush().unwrap();
        // Only the segment appends continue in is left.
        assert_eq!(files(&dir.path().join("wal")).len(), 1);
        assert_eq!(engine.part_count(), 1);
        assert_eq!(files(&dir.path().join("series")).len(), 1);
        for b in 0..3 {
            engine
                .write(&tenant(), points(10, BASE + DAY + b * 10, 1))
                .unwrap();
        }
        engine
            .delete_before(&tenant(), "m", BASE + 500_000)
            .unwrap();
        assert_eq!(count(&engine, &tenant(), "m"), 1_000 - 500 + 30);
    }
    let engine = Engine::open(cfg).unwrap();
    // Three writes and a delete after the flush; the 20 flushed writes come from the part.
    assert_eq!(engine.recovery_report().records_replayed, 4);
    assert_eq!(count(&engine, &tenant(), "m"), 1_000 - 500 + 30);
    let values = engine
        .dimension_values(&tenant(), "m", "host", "", 10)
        .unwrap();
    assert_eq!(values.iter().map(|v| v.points).sum::<u64>(), 530);
}

#[test]
fn start_up_removes_a_leftover_temp_part_and_a_part_the_manifest_does_not_list() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(config(dir.path())).unwrap();
        engine.write(&tenant(), points(100, BASE, 1_000)).unwrap();
        engine.flush().unwrap();
    }
    let listed = part_files(dir.path());
    assert_eq!(listed.len(), 1);
    let parts = dir.path().join("parts");
    fs::write(parts.join("0000000099.part.tmp"), b"half a part").unwrap();
    // A complete part a crashed flush wrote but never listed: a copy of a real one, under a new name.
    fs::copy(&listed[0], parts.join("0000000098.part")).unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    assert_eq!(part_files(dir.path()), listed);
    assert_eq!(count(&engine, &tenant(), "m"), 100);
}

/// Flips one byte of the only part at `offset` from its start (negative: from its end).
fn flip_part_byte(dir: &Path, offset: i64) -> PathBuf {
    let path = part_files(dir).pop().unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let at = if offset < 0 {
        (bytes.len() as i64 + offset) as usize
    } else {
        offset as usize
    };
    bytes[at] ^= 0x40;
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_corrupted_part_section_makes_open_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(config(dir.path())).unwrap();
        engine.write(&tenant(), points(100, BASE, 1_000)).unwrap();
        engine.flush().unwrap();
    }
    // The section ends just before the 24-byte footer.
    let path = flip_part_byte(dir.path(), -30);
    match Engine::open(config(dir.path())) {
        Err(EngineError::Corruption {
            path: p, reason, ..
        }) => {
            assert_eq!(p, path);
            assert!(reason.contains("section checksum"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_corrupted_page_blob_sets_the_part_aside_and_flags_the_answer_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(config(dir.path())).unwrap();
        engine.write(&tenant(), points(100, BASE, 1_000)).unwrap();
        engine.flush().unwrap();
    }
    // Page blobs start right after the 8-byte header; the section still verifies, so open succeeds
    // (start-up reads row counts, not pages) and the query that reads the page meets the damage.
    let path = flip_part_byte(dir.path(), 10);
    let engine = Engine::open(config(dir.path())).unwrap();
    // A count over the whole part needs no page: it is answered from the series directory.
    assert_eq!(count(&engine, &tenant(), "m"), 100);
    // A percentile reads every value: the part fails its checksums, is set aside in quarantine/, and
    // the answer (over what is left: nothing) is flagged with a warning naming the file and the damage.
    let plan = luminate_model::QueryPlan {
        kind: luminate_model::query::QueryKind::Aggregate(luminate_model::query::Aggregation::P95),
        metric: "m".into(),
        start: i64::MIN,
        end: i64::MAX,
        filters: vec![],
        group_by: vec![],
        interval_ms: None,
        limit: 10,
        timeout: Duration::from_secs(10),
    };
    let ctx = luminate_model::QueryContext::new(plan.timeout);
    let answer = engine.query(&tenant(), &plan, &ctx).unwrap();
    assert!(
        matches!(&answer, luminate_model::QueryResult::Aggregate { results, .. } if results.is_empty()),
        "{answer:?}"
    );
    let warnings = ctx.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&path.display().to_string()),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("checksum"), "{warnings:?}");
    let file = path.file_name().unwrap().to_str().unwrap();
    let quarantined: Vec<(String, u64)> = engine
        .quarantined()
        .into_iter()
        .map(|q| (q.file, q.rows))
        .collect();
    assert_eq!(quarantined, vec![(file.to_owned(), 100)]);
    assert!(dir.path().join("quarantine").join(file).exists());
    // Its points are gone from every answer, each flagged too.
    assert_eq!(count(&engine, &tenant(), "m"), 0);
}

#[test]
fn compaction_drops_rewrites_and_merges_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    // Four flushes, each with points of day 0 and day 1: two partitions of four parts each.
    for f in 0..4 {
        engine
            .write(&tenant(), points(100, BASE + f * 100_000, 1_000))
            .unwrap();
        engine
            .write(&tenant(), points(100, BASE + DAY + f * 100_000, 1_000))
            .unwrap();
        engine.flush().unwrap();
    }
    engine.compact().unwrap();
    assert_eq!(engine.part_count(), 2);
    assert_eq!(part_files(dir.path()).len(), 2);
    assert_eq!(count(&engine, &tenant(), "m"), 800);

    // Everything of day 0 and half of day 1: the day-0 part is dropped, the day-1 part rewritten.
    let deleted = engine
        .delete_before(&tenant(), "m", BASE + DAY + 200_000)
        .unwrap();
    assert_eq!(deleted, 400 + 200);
    engine.compact().unwrap();
    assert_eq!(engine.part_count(), 1);
    assert_eq!(part_files(dir.path()).len(), 1);
    assert_eq!(count(&engine, &tenant(), "m"), 200);
    drop(engine);
    let engine = Engine::open(config(dir.path())).unwrap();
    assert_eq!(count(&engine, &tenant(), "m"), 200);
    let values = engine
        .dimension_values(&tenant(), "m", "host", "", 10)
        .unwrap();
    assert_eq!(values.iter().map(|v| v.points).sum::<u64>(), 200);
}

#[test]
fn background_compaction_merges_parts_of_similar_size_and_settle_merges_all() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    // A big part (the day so far), then three small flushes: four parts, but no four of similar size.
    engine.write(&tenant(), points(4_000, BASE, 10)).unwrap();
    engine.flush().unwrap();
    for f in 0..3 {
        engine
            .write(&tenant(), points(100, BASE + 50_000 + f * 1_000, 1))
            .unwrap();
        engine.flush().unwrap();
    }
    engine.compact().unwrap();
    assert_eq!(
        engine.part_count(),
        4,
        "the big part is not rewritten for three small ones"
    );
    // A fourth small flush: the four small parts merge into one; the big one is left alone.
    engine
        .write(&tenant(), points(100, BASE + 60_000, 1))
        .unwrap();
    engine.flush().unwrap();
    engine.compact().unwrap();
    assert_eq!(engine.part_count(), 2);
    assert_eq!(part_files(dir.path()).len(), 2);
    assert_eq!(count(&engine, &tenant(), "m"), 4_400);
    // Settling merges every part of the partition, whatever the sizes.
    engine.settle().unwrap();
    assert_eq!(engine.part_count(), 1);
    assert_eq!(part_files(dir.path()).len(), 1);
    assert_eq!(count(&engine, &tenant(), "m"), 4_400);
}

/// Flushes of sparse series (2 rows each per flush) carry no block summaries; the part their merge
/// makes holds more rows of each series, so it does: hourly blocks where 8 rows of a series lie in
/// one epoch hour, one block per series (a day) where 6 straddle two hours, 3 in each. Compaction
/// counts each series once, not once per part that holds it.
#[test]
fn a_merged_part_of_sparse_series_gets_the_summaries_its_rows_per_series_pay_for() {
    const HOUR: i64 = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    let write = |metric: &str, start: i64| {
        let batch: Vec<Point> = (0..300)
            .flat_map(|s| {
                let host = format!("h{s}");
                [0, 1].map(|k| point(metric, start + k * 60_000 + s, 1.5, &[("host", &host)]))
            })
            .collect();
        engine.write(&tenant(), batch).unwrap();
    };
    for f in 0..4 {
        write("inside", BASE + 10 * 60_000 + f * 120_000);
        if f < 3 {
            // Minutes -3 and -2 of the hour's edge, then -1 and 0, then 1 and 2.
            write("straddling", BASE + HOUR - 3 * 60_000 + f * 120_000);
        }
        engine.flush().unwrap();
    }
    let none = |metric: &str| (metric.to_owned(), None);
    let mut flushed = vec![none("inside"); 4];
    flushed.extend(vec![none("straddling"); 3]);
    assert_eq!(engine.part_summary_blocks(), flushed);
    engine.settle().unwrap();
    assert_eq!(
        engine.part_summary_blocks(),
        vec![
            ("inside".to_owned(), Some(HOUR)),
            ("straddling".to_owned(), Some(DAY))
        ]
    );
    assert_eq!(count(&engine, &tenant(), "inside"), 2_400);
    assert_eq!(count(&engine, &tenant(), "straddling"), 1_800);
}

#[test]
fn writers_wait_for_the_flush_and_memory_stays_bounded() {
    const WRITERS: u64 = 8;
    const WRITES: u64 = 150;
    const BATCH: u64 = 10;
    const MAX_POINTS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Engine::open(EngineConfig {
            head_max_points: MAX_POINTS,
            ..config(dir.path())
        })
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (engine, stop, peak) = (Arc::clone(&engine), Arc::clone(&stop), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(engine.memory().head_points, Ordering::Relaxed);
                std::thread::yield_now();
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    let start = BASE + ((w * WRITES + i) * BATCH) as i64 * 1_000;
                    let outcome = engine
                        .write(&tenant(), points(BATCH as usize, start, 1_000))
                        .unwrap();
                    assert_eq!(outcome.accepted, BATCH as usize);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    // The active head passes the threshold by at most one commit group (one write per writer), and
    // at most one frozen head waits for its flush beside it.
    let bound = 2 * (MAX_POINTS + WRITERS * BATCH);
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak <= bound, "peak {peak} > bound {bound}");
    assert_eq!(count(&engine, &tenant(), "m"), WRITERS * WRITES * BATCH);
    assert!(engine.part_count() > 1);
}

/// A batch holding a value that is not finite (which no API lets through) is refused whole before
/// anything is logged, naming the point; the engine goes on writing, flushing and reopening as before
/// (the part writer refuses NaN, so a NaN let into the WAL would fail every flush after it).
#[test]
fn a_batch_with_a_value_that_is_not_finite_is_refused_whole_and_flushes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let batch = vec![
            point("m", BASE, 1.0, &[("host", "a")]),
            point("m", BASE + 1, bad, &[("host", "b")]),
        ];
        match engine.write(&tenant(), batch) {
            Err(EngineError::Io { op, source, .. }) => {
                assert_eq!(op, "write");
                assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput);
                assert_eq!(
                    source.to_string(),
                    format!(
                        "point 1 of the batch (m at {}) has the value {bad}: a stored value must be \
                         finite; nothing of the batch was stored",
                        BASE + 1
                    )
                );
            }
            other => panic!("expected the batch refused, got {other:?}"),
        }
    }
    assert_eq!(count(&engine, &tenant(), "m"), 0);
    engine
        .write(&tenant(), vec![point("m", BASE, 2.5, &[("host", "a")])])
        .unwrap();
    engine.flush().unwrap();
    assert_eq!(engine.part_count(), 1);
    drop(engine);
    let engine = Engine::open(config(dir.path())).unwrap();
    assert_eq!(count(&engine, &tenant(), "m"), 1);
}
