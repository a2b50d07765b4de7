//! Tests of the log alone: random records, random damage to the last segment, reopen; what is a torn
//! tail and what is corruption; missing segments; reading changes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

/// An appended record and where it landed.
#[derive(Debug, Clone)]
struct Written {
    payload: Vec<u8>,
    pos: RecordPos,
}

impl Written {
    fn end(&self) -> u64 {
        self.pos.offset + (RECORD_HEADER_LEN + self.payload.len()) as u64
    }
}

fn write_all(dir: &Path, segment_bytes: u64, payloads: &[Vec<u8>]) -> Vec<Written> {
    let (mut wal, replayed) = Wal::open(
        &dir.join(WAL_DIR),
        Start::First,
        segment_bytes,
        |_, _, _| Ok(()),
    )
    .unwrap();
    assert_eq!(replayed.records, 0);
    let written = payloads
        .iter()
        .map(|p| Written {
            payload: p.clone(),
            pos: wal.append(p).unwrap(),
        })
        .collect();
    wal.sync().unwrap();
    written
}

fn reopen(dir: &Path, segment_bytes: u64) -> Result<(Wal, Vec<Vec<u8>>, Replayed), EngineError> {
    let mut seen = Vec::new();
    let (wal, replayed) = Wal::open(
        &dir.join(WAL_DIR),
        Start::First,
        segment_bytes,
        |_, _, p| {
            seen.push(p.to_vec());
            Ok(())
        },
    )?;
    assert_eq!(replayed.records, seen.len() as u64);
    Ok((wal, seen, replayed))
}

fn segment_file(dir: &Path, seq: u64) -> PathBuf {
    dir.join(WAL_DIR).join(segment::file_name(seq))
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 1..120), 1..40)
}

/// After damage at `cut` in the last segment: the records that must survive, and the dropped tail's
/// offset (None when `cut` falls on a record boundary and nothing is lost).
fn expected_after(written: &[Written], last_seq: u64, cut: u64) -> (Vec<Vec<u8>>, Option<u64>) {
    let survivors: Vec<Vec<u8>> = written
        .iter()
        .filter(|w| w.pos.segment < last_seq || (cut >= HEADER_LEN as u64 && w.end() <= cut))
        .map(|w| w.payload.clone())
        .collect();
    let boundary = cut == HEADER_LEN as u64
        || written
            .iter()
            .any(|w| w.pos.segment == last_seq && w.end() == cut);
    let dropped_at = if cut < HEADER_LEN as u64 {
        Some(0)
    } else if boundary {
        None
    } else {
        written
            .iter()
            .find(|w| w.pos.segment == last_seq && w.end() > cut)
            .map(|w| w.pos.offset)
    };
    (survivors, dropped_at)
}

fn check_recovery(dir: &Path, written: &[Written], last_seq: u64, cut: u64, damaged_len: u64) {
    let (mut wal, seen, replayed) = reopen(dir, 256).unwrap();
    let (survivors, dropped_at) = expected_after(written, last_seq, cut);
    assert_eq!(seen, survivors);
    match dropped_at {
        None => assert!(replayed.dropped.is_empty(), "{:?}", replayed.dropped),
        Some(offset) => {
            assert_eq!(replayed.dropped.len(), 1);
            let d = &replayed.dropped[0];
            assert_eq!(d.path, segment_file(dir, last_seq));
            assert_eq!(d.offset, offset);
            assert_eq!(d.bytes, damaged_len - offset);
        }
    }
    // The log continues after the cut, and a second reopen is clean.
    wal.append(b"after recovery").unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, seen, replayed) = reopen(dir, 256).unwrap();
    assert!(replayed.dropped.is_empty());
    assert_eq!(seen.len(), survivors.len() + 1);
    assert_eq!(seen.last().map(Vec::as_slice), Some(&b"after recovery"[..]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn wal_torn_tail_at_any_offset_keeps_every_complete_record(payloads in payloads(), cut in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path(), 256, &payloads);
        let last_seq = written.last().unwrap().pos.segment;
        let path = segment_file(dir.path(), last_seq);
        let len = fs::metadata(&path).unwrap().len();
        let cut = cut.index(len as usize) as u64;
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
        check_recovery(dir.path(), &written, last_seq, cut, cut);
    }

    #[test]
    fn wal_flipped_byte_in_last_segment_drops_the_last_record_and_refuses_an_earlier_one(
        payloads in payloads(), at in any::<prop::sample::Index>(), mask in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path(), 256, &payloads);
        let last_seq = written.last().unwrap().pos.segment;
        let path = segment_file(dir.path(), last_seq);
        let mut bytes = fs::read(&path).unwrap();
        let at = HEADER_LEN + at.index(bytes.len() - HEADER_LEN);
        bytes[at] ^= mask;
        fs::write(&path, &bytes).unwrap();
        // The damaged record is the one containing byte `at`.
        let damaged = written.iter().find(|w| w.pos.segment == last_seq && w.end() > at as u64).unwrap();
        if damaged.end() == bytes.len() as u64 {
            // The last record: a torn tail, dropped with everything from it.
            check_recovery(dir.path(), &written, last_seq, damaged.pos.offset + 1, bytes.len() as u64);
        } else {
            assert_refused_at(dir.path(), &path, damaged.pos.offset, &bytes);
        }
    }
}

/// Reopening fails with `Corruption` at `offset` of `path`, whose bytes are still `bytes`.
fn assert_refused_at(dir: &Path, path: &Path, offset: u64, bytes: &[u8]) {
    match reopen(dir, 256) {
        Err(EngineError::Corruption {
            path: p,
            offset: o,
            reason,
        }) => {
            assert_eq!((p.as_path(), o), (path, offset), "{reason}");
            assert!(reason.ends_with("not a torn tail"), "{reason}");
        }
        other => panic!("expected corruption, got {:?}", other.map(|r| r.2)),
    }
    assert_eq!(fs::read(path).unwrap(), bytes, "the segment was changed");
}

#[test]
fn wal_flipped_bit_in_record_k_of_n_is_a_torn_tail_only_for_the_last() {
    let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 30 + i as usize]).collect();
    for k in 0..payloads.len() {
        for (field, byte) in [("length", 0), ("checksum", 5), ("payload", 20)] {
            let dir = tempfile::tempdir().unwrap();
            let written = write_all(dir.path(), 1 << 20, &payloads);
            let path = segment_file(dir.path(), 1);
            let mut bytes = fs::read(&path).unwrap();
            bytes[written[k].pos.offset as usize + byte] ^= 0x10;
            fs::write(&path, &bytes).unwrap();
            if k + 1 < payloads.len() {
                assert_refused_at(dir.path(), &path, written[k].pos.offset, &bytes);
                continue;
            }
            let (_, seen, replayed) = reopen(dir.path(), 1 << 20).unwrap();
            assert_eq!(
                seen,
                payloads[..k],
                "bit flipped in the {field} of the last record"
            );
            assert_eq!(replayed.dropped.len(), 1);
            let d = &replayed.dropped[0];
            assert_eq!(
                (d.offset, d.bytes),
                (
                    written[k].pos.offset,
                    written[k].end() - written[k].pos.offset
                )
            );
            assert_eq!(fs::metadata(&path).unwrap().len(), written[k].pos.offset);
        }
    }
}

#[test]
fn wal_zeros_before_a_complete_record_are_corruption_and_after_the_last_a_torn_tail() {
    let payloads: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i + 1; 40]).collect();
    let dir = tempfile::tempdir().unwrap();
    let written = write_all(dir.path(), 1 << 20, &payloads);
    let path = segment_file(dir.path(), 1);
    let clean = fs::read(&path).unwrap();
    // A hole (a page the disk never got) over the second record, the later ones intact.
    let mut bytes = clean.clone();
    bytes[written[1].pos.offset as usize..written[1].end() as usize].fill(0);
    fs::write(&path, &bytes).unwrap();
    assert_refused_at(dir.path(), &path, written[1].pos.offset, &bytes);
    // Zeros over the last record only: the file system extended the file, the data never came.
    let mut bytes = clean;
    bytes[written[3].pos.offset as usize..].fill(0);
    fs::write(&path, &bytes).unwrap();
    let (_, seen, replayed) = reopen(dir.path(), 1 << 20).unwrap();
    assert_eq!(seen, payloads[..3]);
    assert!(
        replayed.dropped[0].reason.starts_with("zero-filled tail"),
        "{:?}",
        replayed.dropped
    );
}

#[test]
fn wal_zero_filled_header_is_torn_only_when_nothing_follows() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), 1 << 20, &[b"kept".to_vec()]);
    let second = segment_file(dir.path(), 2);
    let mut bytes = vec![0u8; 64];
    bytes[40] = 7;
    fs::write(&second, &bytes).unwrap();
    match reopen(dir.path(), 1 << 20) {
        Err(EngineError::Corruption {
            path,
            offset,
            reason,
        }) => {
            assert_eq!((path, offset), (second.clone(), 40), "{reason}");
        }
        other => panic!("expected corruption, got {:?}", other.map(|r| r.2)),
    }
    assert_eq!(fs::read(&second).unwrap(), bytes);
    // A short file that is not the start of a header is no torn header either.
    fs::write(&second, b"XY").unwrap();
    assert!(matches!(
        reopen(dir.path(), 1 << 20),
        Err(EngineError::Corruption { offset: 0, .. })
    ));
    // Zeros only: torn, reset in place to an empty segment.
    fs::write(&second, [0u8; 64]).unwrap();
    let (mut wal, seen, replayed) = reopen(dir.path(), 1 << 20).unwrap();
    assert_eq!(seen, vec![b"kept".to_vec()]);
    assert_eq!(
        (replayed.dropped[0].offset, replayed.dropped[0].bytes),
        (0, 64)
    );
    assert_eq!(fs::read(&second).unwrap(), segment::header());
    assert_eq!(
        wal.append(b"next").unwrap(),
        RecordPos {
            segment: 2,
            offset: HEADER_LEN as u64
        }
    );
}

#[test]
fn wal_recover_changes_nothing_until_open() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 40]).collect();
    write_all(dir.path(), 100, &payloads);
    let wal_dir = dir.path().join(WAL_DIR);
    let last = segment_file(dir.path(), 3);
    let len = fs::metadata(&last).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let snapshot = || -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = fs::read_dir(&wal_dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let bytes = fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot();
    // Replay from segment 2: segment 1 is flushed, segment 3 has a torn tail.
    let mut seen = 0;
    let recovered = Wal::recover(&wal_dir, Start::At(2), |_, _, _| {
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 3);
    assert_eq!(snapshot(), before);
    let (_, replayed) = recovered.open(100).unwrap();
    assert_eq!(replayed.dropped.len(), 1);
    let names: Vec<PathBuf> = snapshot().into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, vec![segment_file(dir.path(), 2), last.clone()]);
    assert_eq!(fs::metadata(&last).unwrap().len(), 8 + 48);
}

#[test]
fn wal_start_segment_named_by_the_manifest_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join(WAL_DIR);
    let refused = |start: u64| match Wal::recover(&wal_dir, Start::At(start), |_, _, _| Ok(())) {
        Err(EngineError::Missing { path, reason }) => {
            assert_eq!(path, wal_dir.join(segment::file_name(start)));
            reason
        }
        other => panic!("expected missing, got {other:?}"),
    };
    // No directory at all: refused, and not created.
    assert!(refused(3).ends_with("does not exist"));
    assert!(!wal_dir.exists());
    write_all(
        dir.path(),
        100,
        &(0..6u8).map(|i| vec![i; 40]).collect::<Vec<_>>(),
    );
    assert!(refused(5).ends_with("holds no segment from it on"));
    for seq in 1..=3 {
        fs::remove_file(segment_file(dir.path(), seq)).unwrap();
    }
    assert!(refused(1).ends_with("holds no segment from it on"));
    // A new log (no manifest names a segment yet) may be empty.
    assert!(Wal::recover(&wal_dir, Start::First, |_, _, _| Ok(())).is_ok());
}

#[test]
fn wal_clean_log_replays_everything_without_drops() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 1 + i as usize]).collect();
    write_all(dir.path(), 1 << 20, &payloads);
    let (_, seen, replayed) = reopen(dir.path(), 1 << 20).unwrap();
    assert_eq!(seen, payloads);
    assert!(replayed.dropped.is_empty());
}

#[test]
fn wal_rolls_segments_past_the_limit_and_replays_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i; 40]).collect();
    let written = write_all(dir.path(), 100, &payloads);
    // 8-byte header + 48-byte frames: a segment rolls once past 100 bytes, so it holds 2 records.
    let segments: Vec<u64> = written.iter().map(|w| w.pos.segment).collect();
    assert_eq!(segments, (0..30u64).map(|i| 1 + i / 2).collect::<Vec<_>>());
    for seq in 1..15 {
        assert_eq!(
            fs::metadata(segment_file(dir.path(), seq)).unwrap().len(),
            8 + 2 * 48
        );
    }
    let (_, seen, _) = reopen(dir.path(), 100).unwrap();
    assert_eq!(seen, payloads);
}

#[test]
fn wal_one_record_larger_than_a_segment_still_fits() {
    let dir = tempfile::tempdir().unwrap();
    let payloads = vec![vec![1u8; 500], vec![2u8; 10], vec![3u8; 500], vec![4u8; 10]];
    let written = write_all(dir.path(), 64, &payloads);
    // Segment 2 is under the limit after the small record, so the big one still goes there.
    assert_eq!(
        written.iter().map(|w| w.pos.segment).collect::<Vec<_>>(),
        vec![1, 2, 2, 3]
    );
    assert_eq!(reopen(dir.path(), 64).unwrap().1, payloads);
}

#[test]
fn wal_damage_in_an_older_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 40]).collect();
    write_all(dir.path(), 100, &payloads);
    let first = segment_file(dir.path(), 1);
    let mut bytes = fs::read(&first).unwrap();
    bytes[60] ^= 0xff; // inside the second record (offset 56)
    fs::write(&first, &bytes).unwrap();
    match reopen(dir.path(), 100) {
        Err(EngineError::Corruption {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(path, first);
            assert_eq!(offset, 56);
            assert!(reason.starts_with("checksum mismatch"), "{reason}");
        }
        other => panic!("expected corruption, got {:?}", other.map(|r| r.1)),
    }
}

#[test]
fn wal_missing_middle_segment_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 40]).collect();
    write_all(dir.path(), 100, &payloads);
    fs::remove_file(segment_file(dir.path(), 2)).unwrap();
    match reopen(dir.path(), 100) {
        Err(EngineError::Missing { path, reason }) => {
            assert_eq!(path, segment_file(dir.path(), 2));
            assert!(reason.contains("00000003.wal"), "{reason}");
        }
        other => panic!("expected missing, got {:?}", other.map(|r| r.1)),
    }
}

#[test]
fn wal_torn_header_of_a_fresh_segment_is_reset_in_place() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), 1 << 20, &[b"kept".to_vec()]);
    fs::write(segment_file(dir.path(), 2), &segment::header()[..3]).unwrap();
    let (mut wal, seen, replayed) = reopen(dir.path(), 1 << 20).unwrap();
    assert_eq!(seen, vec![b"kept".to_vec()]);
    assert_eq!(replayed.dropped.len(), 1);
    assert_eq!(
        (replayed.dropped[0].offset, replayed.dropped[0].bytes),
        (0, 3)
    );
    assert_eq!(
        wal.append(b"next").unwrap(),
        RecordPos {
            segment: 2,
            offset: HEADER_LEN as u64
        }
    );
}

#[test]
fn wal_probe_leaves_nothing_behind_and_a_leftover_is_ignored_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10]).collect();
    write_all(dir.path(), 1 << 20, &payloads);
    let wal_dir = dir.path().join(WAL_DIR);
    probe_dir(&wal_dir).unwrap();
    let names: Vec<String> = fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![segment::file_name(1)]);
    // A crash mid-probe leaves the file: replay skips it, and the next probe replaces and removes it.
    fs::write(wal_dir.join(PROBE_FILE), b"torn").unwrap();
    let (_, seen, replayed) = reopen(dir.path(), 1 << 20).unwrap();
    assert_eq!(seen, payloads);
    assert!(replayed.dropped.is_empty());
    probe_dir(&wal_dir).unwrap();
    assert!(!wal_dir.join(PROBE_FILE).exists());
}

#[test]
fn wal_probe_of_a_directory_that_is_gone_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join(WAL_DIR);
    // Root ignores permission bits: a plain file where the directory was breaks it for everyone.
    fs::write(&wal_dir, b"not a directory").unwrap();
    let err = probe_dir(&wal_dir).unwrap_err();
    let probe = wal_dir.join(PROBE_FILE);
    assert!(
        matches!(&err, EngineError::Io { op: "create health probe file", path, .. } if *path == probe),
        "{err}"
    );
    assert!(
        err.to_string().contains(&probe.display().to_string()),
        "{err}"
    );
}
