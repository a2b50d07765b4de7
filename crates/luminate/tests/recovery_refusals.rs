//! Start-ups the embedded engine must refuse, through the real binary: a data directory that lost its
//! `MANIFEST`, a manifest whose WAL segments are gone, a flipped bit before complete records of the last
//! WAL segment. Each exits non-zero naming the file, changes no byte of the data directory, and once
//! the file is put back the server starts and answers every point written before.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Launch, eventually, now_ms, point};

/// Points per write; the head is flushed once it holds `FLUSH_AT` of them.
const BATCH: usize = 10;
const FLUSH_AT: usize = 30;

fn launch(dir: &Path) -> Launch {
    Launch::new(dir).env(
        "LUMINATE__STORAGE__EMBEDDED__HEAD_MAX_POINTS",
        &FLUSH_AT.to_string(),
    )
}

/// Every file under `dir`: relative path → (length, hash of the bytes); directories as `name/`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel.join(""), (0, 0));
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let mut h = DefaultHasher::new();
                bytes.hash(&mut h);
                out.insert(rel, (bytes.len() as u64, h.finish()));
            }
        }
    }
    out
}

/// Writes `batches` batches of `metric`, each acknowledged.
fn write_batches(server: &common::Luminate, metric: &str, batches: usize) {
    for b in 0..batches {
        let now = now_ms();
        let points: Vec<_> = (0..BATCH)
            .map(|i| point(metric, now - i as i64, 1.0, &[("batch", &b.to_string())]))
            .collect();
        let (status, body) = server.write(&points);
        assert_eq!(status, 200, "{body}");
    }
}

/// A server's life before the damage: points flushed to parts (the WAL then restarts at segment 2),
/// more points in the WAL only, a clean stop. Returns the points written.
fn write_flush_write_stop(dir: &Path) -> u64 {
    let server = launch(dir).start();
    write_batches(&server, "kept", FLUSH_AT / BATCH);
    let flushed = eventually(Duration::from_secs(15), || {
        let parts = std::fs::read_dir(dir.join("parts")).map_or(0, |d| d.count());
        parts > 0 && !dir.join("wal").join("00000001.wal").exists()
    });
    assert!(flushed, "no flush: {}", server.output());
    write_batches(&server, "kept", 2);
    assert_eq!(server.terminate().code(), Some(0));
    (FLUSH_AT + 2 * BATCH) as u64
}

/// Starts over `dir` expecting a refusal: exit code non-zero, output naming each of `names`, and not
/// one byte of the data directory changed.
fn assert_refused(dir: &Path, names: &[&str]) {
    let before = snapshot(dir);
    let (status, output) = launch(dir).run_to_exit();
    assert_ne!(status.code(), Some(0), "{output}");
    for name in names {
        assert!(output.contains(name), "no {name:?} in:\n{output}");
    }
    assert!(!output.contains("luminate listening on"), "{output}");
    assert_eq!(
        snapshot(dir),
        before,
        "the refused start changed the data directory"
    );
}

fn assert_all_points_answered(dir: &Path, written: u64) {
    let server = launch(dir).start();
    assert_eq!(server.count("kept"), written);
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn a_start_without_the_manifest_is_refused_and_deletes_no_part() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_flush_write_stop(dir.path());
    let manifest = dir.path().join("MANIFEST");
    let saved = std::fs::read(&manifest).unwrap();
    let parts = std::fs::read_dir(dir.path().join("parts")).unwrap().count();

    std::fs::remove_file(&manifest).unwrap();
    let missing = format!("{} is missing", manifest.display());
    let found = match parts {
        1 => "1 file in".to_owned(),
        n => format!("{n} files in"),
    };
    assert_refused(dir.path(), &[&missing, &found]);

    // Only the temp file a crash mid-write would leave: refused too, naming it.
    std::fs::write(dir.path().join("MANIFEST.tmp"), &saved).unwrap();
    assert_refused(dir.path(), &[&missing, "MANIFEST.tmp is there"]);

    std::fs::rename(dir.path().join("MANIFEST.tmp"), &manifest).unwrap();
    assert_all_points_answered(dir.path(), written);
}

#[test]
fn a_start_whose_wal_segments_are_gone_is_refused_naming_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_flush_write_stop(dir.path());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("MANIFEST")).unwrap()).unwrap();
    let wal_start = manifest["wal_start"].as_u64().unwrap();
    assert!(wal_start > 1, "{manifest}");
    let wal = dir.path().join("wal");
    let expected = wal.join(format!("{wal_start:08}.wal"));
    let missing = format!("{} is missing", expected.display());
    let saved: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    assert!(saved.iter().any(|(p, _)| *p == expected), "{saved:?}");

    for (path, _) in &saved {
        std::fs::remove_file(path).unwrap();
    }
    assert_refused(dir.path(), &[&missing]);
    std::fs::remove_dir(&wal).unwrap();
    assert_refused(dir.path(), &[&missing, "does not exist"]);
    assert!(!wal.exists(), "the refused start created the WAL directory");

    std::fs::create_dir(&wal).unwrap();
    for (path, bytes) in &saved {
        std::fs::write(path, bytes).unwrap();
    }
    assert_all_points_answered(dir.path(), written);
}

#[test]
fn a_flipped_bit_before_complete_records_of_the_last_segment_is_refused_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    // The default head holds every point: one WAL segment, one record per write.
    let server = Launch::new(dir.path()).start();
    write_batches(&server, "kept", 5);
    assert_eq!(server.terminate().code(), Some(0));
    let segment = dir.path().join("wal").join("00000001.wal");
    let clean = std::fs::read(&segment).unwrap();
    // Records follow the 8-byte segment header: length (u32 LE), crc32c, payload.
    let mut records = Vec::new();
    let mut at = 8;
    while at < clean.len() {
        records.push(at);
        at += 8 + u32::from_le_bytes(clean[at..at + 4].try_into().unwrap()) as usize;
    }
    assert!(records.len() >= 5, "{records:?}");

    let mut damaged = clean.clone();
    damaged[records[1] + 8 + 3] ^= 0x04;
    std::fs::write(&segment, &damaged).unwrap();
    let location = format!(
        "corruption in {} at offset {}: checksum mismatch",
        segment.display(),
        records[1]
    );
    assert_refused(dir.path(), &[&location, "not a torn tail"]);
    assert_eq!(std::fs::read(&segment).unwrap(), damaged);

    std::fs::write(&segment, &clean).unwrap();
    let server = Launch::new(dir.path()).start();
    assert_eq!(server.count("kept"), 5 * BATCH as u64);
    assert_eq!(server.terminate().code(), Some(0));
}
