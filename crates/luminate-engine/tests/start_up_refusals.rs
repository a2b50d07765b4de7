//! Start-up that must refuse, and change nothing: a data directory holding data without its manifest,
//! a manifest whose WAL segments are gone. And the starts that must still succeed: a new directory, a
//! directory from a build that wrote no manifest before its first flush.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{count, open, point, tenant};
use luminate_engine::{Engine, EngineError};

/// Every file under `dir` (relative path → bytes), directories as empty entries ending in `/`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel.join(""), Vec::new());
                pending.push(path);
            } else {
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Writes 3 batches of 10 points, flushes them to parts, writes 2 more batches to the WAL; returns
/// the points written.
fn write_flush_write(dir: &Path) -> u64 {
    let engine = open(dir);
    let batch = |b: i64| {
        (0..10)
            .map(|i| point("m", b * 100 + i, 1.0, &[("host", &format!("h{i}"))]))
            .collect::<Vec<_>>()
    };
    for b in 0..3 {
        engine.write(&tenant(), batch(b)).unwrap();
    }
    engine.flush().unwrap();
    assert!(engine.part_count() > 0);
    for b in 3..5 {
        engine.write(&tenant(), batch(b)).unwrap();
    }
    50
}

fn open_err(dir: &Path) -> EngineError {
    Engine::open(common::config(dir)).unwrap_err()
}

#[test]
fn a_lost_manifest_with_parts_refuses_to_start_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_flush_write(dir.path());
    let manifest = dir.path().join("MANIFEST");
    let saved = fs::read(&manifest).unwrap();
    fs::remove_file(&manifest).unwrap();
    let before = snapshot(dir.path());
    let parts = fs::read_dir(dir.path().join("parts")).unwrap().count();

    match open_err(dir.path()) {
        EngineError::Missing { path, reason } => {
            assert_eq!(path, manifest);
            assert_eq!(parts, 1, "one partition flushed");
            assert!(
                reason.contains("holds data without it: 1 file in "),
                "{reason}"
            );
            assert!(reason.contains("WAL segments from "), "{reason}");
        }
        other => panic!("expected missing, got {other:?}"),
    }
    assert_eq!(snapshot(dir.path()), before);

    // Renamed to MANIFEST.tmp (as a crash mid-write would leave a new one): refused too, and named.
    fs::write(dir.path().join("MANIFEST.tmp"), &saved).unwrap();
    let before = snapshot(dir.path());
    let err = open_err(dir.path());
    assert!(err.to_string().contains("MANIFEST.tmp is there"), "{err}");
    assert_eq!(snapshot(dir.path()), before);

    // Put back: every point is there.
    fs::rename(dir.path().join("MANIFEST.tmp"), &manifest).unwrap();
    let engine = open(dir.path());
    assert_eq!(count(&engine, &tenant(), "m"), written);
}

#[test]
fn a_lost_manifest_is_noticed_by_the_wal_alone_once_parts_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    write_flush_write(dir.path());
    fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    for part in fs::read_dir(dir.path().join("parts")).unwrap() {
        fs::remove_file(part.unwrap().path()).unwrap();
    }
    let before = snapshot(dir.path());
    let err = open_err(dir.path());
    assert!(
        matches!(&err, EngineError::Missing { reason, .. } if reason.contains("00000002.wal on")),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_new_directory_starts_and_writes_its_manifest_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = open(&data);
    assert!(data.join("MANIFEST").is_file());
    assert!(data.join("wal").join("00000001.wal").is_file());
    drop(engine);
    // Its WAL is then expected: losing it is noticed even before the first flush.
    fs::remove_dir_all(data.join("wal")).unwrap();
    let err = open_err(&data);
    assert!(
        matches!(&err, EngineError::Missing { path, .. } if path.ends_with("wal/00000001.wal")),
        "{err}"
    );
    assert!(!data.join("wal").exists());
}

#[test]
fn a_directory_of_a_build_without_a_first_manifest_starts_from_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine
        .write(
            &tenant(),
            vec![point("m", 1, 1.0, &[]), point("m", 2, 2.0, &[])],
        )
        .unwrap();
    drop(engine);
    // What such a build left: the WAL from segment 1, an empty parts directory, no manifest.
    fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    let engine = open(dir.path());
    assert_eq!(count(&engine, &tenant(), "m"), 2);
    assert!(dir.path().join("MANIFEST").is_file());
}

#[test]
fn wal_segments_gone_refuse_to_start_naming_the_first_one_the_manifest_expects() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_flush_write(dir.path());
    let wal = dir.path().join("wal");
    let saved = snapshot(&wal);
    assert_eq!(
        saved.keys().collect::<Vec<_>>(),
        [Path::new("00000002.wal")],
        "the flush deleted segment 1"
    );
    fs::remove_file(wal.join("00000002.wal")).unwrap();
    let before = snapshot(dir.path());
    match open_err(dir.path()) {
        EngineError::Missing { path, reason } => {
            assert_eq!(path, wal.join("00000002.wal"));
            assert!(reason.ends_with("holds no segment from it on"), "{reason}");
        }
        other => panic!("expected missing, got {other:?}"),
    }
    assert_eq!(snapshot(dir.path()), before);

    // The whole directory gone: refused, and not created.
    fs::remove_dir(&wal).unwrap();
    let err = open_err(dir.path());
    assert!(err.to_string().ends_with("does not exist"), "{err}");
    assert!(!wal.exists());

    // Put back: every point is there.
    fs::create_dir(&wal).unwrap();
    for (name, bytes) in saved {
        fs::write(wal.join(name), bytes).unwrap();
    }
    let engine = open(dir.path());
    assert_eq!(count(&engine, &tenant(), "m"), written);
}

#[test]
fn a_manifest_naming_a_file_outside_the_parts_is_refused_before_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    write_flush_write(dir.path());
    let manifest = dir.path().join("MANIFEST");
    let text = fs::read_to_string(&manifest).unwrap();
    // A FIFO elsewhere, named by its absolute path: opening it for reading would block start-up.
    let elsewhere = tempfile::tempdir().unwrap();
    let fifo = elsewhere.path().join("fifo");
    // Made in-process: a `mkfifo` child forked while another test of this binary holds an engine
    // open would hold that engine's `LOCK` until it execs, and the other test's reopen fails as
    // `Locked` (seen once in CI, then 1 in 240 runs of six binaries at once).
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    let file = text
        .split("\"file\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let named = fifo.to_str().unwrap();
    fs::write(&manifest, text.replace(&file, named)).unwrap();
    let before = snapshot(dir.path());
    match open_err(dir.path()) {
        EngineError::Corruption { path, reason, .. } => {
            assert_eq!(path, fifo);
            assert_eq!(
                reason,
                format!("manifest entry names {named:?}, not a part file")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(dir.path()), before, "nothing changed");
}
