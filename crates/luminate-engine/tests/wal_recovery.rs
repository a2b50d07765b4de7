//! Crash recovery through the engine: wherever the last WAL segment is cut, every batch whose record is
//! complete is back after reopening, nothing after the cut is, and the recovery report names the file
//! and offset; damage with complete records after it refuses the start and changes nothing.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::fs;
use std::path::Path;

use common::{count, first_segment, open, point, tenant};
use luminate_engine::{Engine, EngineConfig, EngineError};
use proptest::prelude::*;

/// Writes `sizes.len()` batches (batch `i` has `sizes[i]` points of metric `m`) and returns the first
/// segment's length after each one: the end offset of each batch's record.
fn write_batches(dir: &Path, sizes: &[usize]) -> Vec<u64> {
    let engine = open(dir);
    let mut ends = Vec::new();
    for (b, &n) in sizes.iter().enumerate() {
        let points = (0..n)
            .map(|i| {
                point(
                    "m",
                    (b * 1000 + i) as i64,
                    1.0,
                    &[("batch", &b.to_string())],
                )
            })
            .collect();
        assert_eq!(engine.write(&tenant(), points).unwrap().accepted, n);
        ends.push(fs::metadata(first_segment(dir)).unwrap().len());
    }
    ends
}

/// Reopens and checks: exactly the batches ending at or before `damage` are there; the dropped tail
/// starts at the end of the last of them (none dropped when `damage` is on a record boundary).
fn check_reopen(dir: &Path, sizes: &[usize], ends: &[u64], damage: u64, file_len: u64) {
    let engine = open(dir);
    let complete = ends.iter().filter(|&&e| e <= damage).count();
    let expected_points: usize = sizes[..complete].iter().sum();
    assert_eq!(count(&engine, &tenant(), "m"), expected_points as u64);
    let report = engine.recovery_report();
    assert_eq!(report.records_replayed, complete as u64);
    let valid_end = if complete == 0 { 8 } else { ends[complete - 1] };
    if valid_end == file_len {
        assert!(report.dropped.is_empty(), "{:?}", report.dropped);
    } else {
        assert_eq!(report.dropped.len(), 1, "{:?}", report.dropped);
        let d = &report.dropped[0];
        assert_eq!(
            (d.path.as_path(), d.offset, d.bytes),
            (
                first_segment(dir).as_path(),
                valid_end,
                file_len - valid_end
            )
        );
    }
    // Writing continues after the cut and survives another restart without drops.
    engine
        .write(&tenant(), vec![point("m", -1, 1.0, &[])])
        .unwrap();
    drop(engine);
    let engine = open(dir);
    assert!(engine.recovery_report().dropped.is_empty());
    assert_eq!(count(&engine, &tenant(), "m"), expected_points as u64 + 1);
}

fn batch_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..20, 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn engine_torn_wal_tail_keeps_every_complete_batch(sizes in batch_sizes(), cut in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let ends = write_batches(dir.path(), &sizes);
        let len = *ends.last().unwrap();
        // Anywhere past the segment header (a torn header is covered by the WAL's own tests).
        let cut = 8 + cut.index((len - 8) as usize) as u64;
        fs::OpenOptions::new().write(true).open(first_segment(dir.path())).unwrap().set_len(cut).unwrap();
        check_reopen(dir.path(), &sizes, &ends, cut, cut);
    }

    #[test]
    fn engine_flipped_byte_in_the_last_batch_drops_it_and_in_an_earlier_one_refuses_to_open(
        sizes in batch_sizes(), at in any::<prop::sample::Index>(), mask in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let ends = write_batches(dir.path(), &sizes);
        let path = first_segment(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let at = 8 + at.index(bytes.len() - 8);
        bytes[at] ^= mask;
        fs::write(&path, &bytes).unwrap();
        // The batch whose record holds byte `at` starts where the one before it ends.
        let damaged_start = ends.iter().copied().filter(|&e| e <= at as u64).max().unwrap_or(8);
        let last_start = if sizes.len() > 1 { ends[sizes.len() - 2] } else { 8 };
        if damaged_start == last_start {
            // The last batch's record: a torn tail, lost alone.
            check_reopen(dir.path(), &sizes, &ends, damaged_start, bytes.len() as u64);
        } else {
            // Acknowledged batches follow the damage: nothing is dropped, nothing changed.
            match Engine::open(common::config(dir.path())) {
                Err(EngineError::Corruption { path: p, offset, reason }) => {
                    assert_eq!((p, offset), (path.clone(), damaged_start), "{reason}");
                }
                other => panic!("expected corruption, got {other:?}"),
            }
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }
}

#[test]
fn engine_clean_wal_replays_every_write_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let ends = write_batches(dir.path(), &[3, 4, 5]);
    assert_eq!(ends.len(), 3);
    let engine = open(dir.path());
    assert_eq!(engine.delete_before(&tenant(), "m", 1000).unwrap(), 3);
    drop(engine);
    let engine = open(dir.path());
    let report = engine.recovery_report();
    assert_eq!((report.records_replayed, report.dropped.len()), (4, 0));
    assert_eq!(count(&engine, &tenant(), "m"), 9);
}

#[test]
fn engine_wal_rolls_segments_and_replays_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        wal_segment_bytes: 256,
        ..common::config(dir.path())
    };
    let engine = Engine::open(config.clone()).unwrap();
    for b in 0..40 {
        let points = (0..5)
            .map(|i| point("m", b * 10 + i, 1.0, &[("b", &b.to_string())]))
            .collect();
        engine.write(&tenant(), points).unwrap();
    }
    drop(engine);
    let segments = fs::read_dir(dir.path().join("wal")).unwrap().count();
    assert!(segments >= 10, "{segments} segments");
    let engine = Engine::open(config).unwrap();
    assert_eq!(engine.recovery_report().records_replayed, 40);
    assert_eq!(count(&engine, &tenant(), "m"), 200);
}

#[test]
fn engine_refuses_to_open_on_corruption_in_an_older_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        wal_segment_bytes: 64,
        ..common::config(dir.path())
    };
    let engine = Engine::open(config.clone()).unwrap();
    for b in 0..4 {
        engine
            .write(&tenant(), vec![point("m", b, 1.0, &[])])
            .unwrap();
    }
    drop(engine);
    let path = first_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    match Engine::open(config) {
        Err(EngineError::Corruption {
            path: p,
            offset,
            reason,
        }) => {
            assert_eq!((p, offset), (path, 8));
            assert!(reason.starts_with("checksum mismatch"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}
