//! The WAL probe of health checks: on a working engine it creates, fsyncs and removes a file in the WAL
//! directory and leaves nothing behind; a WAL directory that no longer takes files (removed, or replaced
//! by a plain file — root ignores permission bits, so tests break it this way) fails naming the file;
//! a poisoned engine fails with the poison's reason whatever the directory says.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use common::{point, tenant};
use luminate_engine::{Engine, EngineConfig, EngineError};

#[test]
fn wal_probe_passes_on_a_working_engine_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(dir.path());
    let wal_dir = dir.path().join("wal");
    assert_eq!(engine.probe_wal().unwrap(), wal_dir);
    assert_eq!(engine.probe_wal().unwrap(), wal_dir);
    let names: Vec<_> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("00000001.wal")]);
}

#[test]
fn wal_probe_fails_naming_the_file_while_the_wal_directory_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(dir.path());
    let wal_dir = dir.path().join("wal");
    let probe = wal_dir.join("health.probe").display().to_string();

    std::fs::remove_dir_all(&wal_dir).unwrap();
    let err = engine.probe_wal().unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("create health probe file {probe}: ")),
        "{err}"
    );

    std::fs::write(&wal_dir, b"a file where the directory was").unwrap();
    let err = engine.probe_wal().unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("create health probe file {probe}: ")),
        "{err}"
    );

    // Repaired: the probe passes again (nothing in the engine remembers the failure).
    std::fs::remove_file(&wal_dir).unwrap();
    std::fs::create_dir(&wal_dir).unwrap();
    assert_eq!(engine.probe_wal().unwrap(), wal_dir);
}

#[test]
fn wal_probe_of_a_poisoned_engine_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Every record after the first rolls to a new segment; a directory taking the next segment's name
    // makes that roll fail, which poisons the engine (as in poisoned_engine.rs).
    let config = EngineConfig {
        wal_segment_bytes: 1,
        ..common::config(dir.path())
    };
    let engine = Engine::open(config).unwrap();
    engine
        .write(&tenant(), vec![point("m", 1, 1.0, &[])])
        .unwrap();
    std::fs::create_dir(dir.path().join("wal").join("00000002.wal")).unwrap();
    assert!(
        engine
            .write(&tenant(), vec![point("m", 2, 2.0, &[])])
            .is_err()
    );
    match engine.probe_wal() {
        Err(EngineError::Poisoned { reason }) => {
            assert!(reason.contains("00000002.wal"), "{reason}")
        }
        other => panic!("expected Poisoned, got {other:?}"),
    }
}
