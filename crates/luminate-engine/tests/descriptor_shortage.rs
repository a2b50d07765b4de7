//! Running out of file descriptors is not a failed write: with every descriptor of the process taken, a
//! write that must open the next WAL segment, or open the WAL directory to fsync it, waits until a
//! descriptor is free and then succeeds. The engine is not poisoned (a failed write or fsync still
//! poisons it: poisoned_engine.rs).
//!
//! Each scenario runs in a child process — this test binary, run again for that one test — whose
//! open-file limit is lowered, so that taking every descriptor is quick and harms no other test.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::fs::File;
use std::process::Command;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::{count, point, tenant};
use luminate_engine::{Engine, EngineConfig};
use luminate_model::store::HealthStatus;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Set in the child process, which runs the scenario itself.
const CHILD: &str = "LUMINATE_DESCRIPTOR_SHORTAGE_CHILD";
/// The child's open-file limit: enough for the engine and the test harness, few to exhaust.
const CHILD_OPEN_FILES: u64 = 64;

/// Runs `scenario` in a child process under a low open-file limit.
fn in_child(test: &str, scenario: fn()) {
    if std::env::var_os(CHILD).is_some() {
        let hard = getrlimit(Resource::Nofile).maximum;
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(CHILD_OPEN_FILES),
                maximum: hard,
            },
        )
        .unwrap();
        scenario();
        return;
    }
    let status = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the scenario failed in the child: {status}"
    );
}

/// Opens files until the process has no descriptor left; returns them.
fn take_every_descriptor() -> Vec<File> {
    let mut taken = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => taken.push(file),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error()) => {
                return taken;
            }
            Err(e) => panic!("unexpected error taking descriptors: {e}"),
        }
    }
}

/// Writes once, takes every descriptor but `spare`, then writes again (which rolls the WAL: every
/// record does, with 1-byte segments): the write must wait, then succeed once the descriptors are
/// released. Returns whether the next segment existed while the write waited.
fn write_waits_for_descriptors(spare: usize) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        wal_segment_bytes: 1,
        ..common::config(dir.path())
    };
    let engine = Arc::new(Engine::open(config.clone()).unwrap());
    engine
        .write(&tenant(), vec![point("m", 1, 1.0, &[])])
        .unwrap();
    let mut taken = take_every_descriptor();
    taken.truncate(taken.len() - spare);

    let (tx, rx) = mpsc::channel();
    let writer = Arc::clone(&engine);
    std::thread::spawn(move || {
        let _ = tx.send(
            writer
                .write(&tenant(), vec![point("m", 2, 2.0, &[])])
                .map(drop),
        );
    });
    match rx.recv_timeout(Duration::from_millis(500)) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        other => panic!("the write should wait while no descriptor is free, got {other:?}"),
    }
    // `stat` needs no descriptor.
    let next_segment = dir.path().join("wal").join("00000002.wal").exists();
    drop(taken);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the write completes once descriptors are free")
        .expect("and succeeds");

    assert_eq!(engine.health().status, HealthStatus::Healthy);
    engine
        .write(&tenant(), vec![point("m", 3, 3.0, &[])])
        .unwrap();
    engine.sync().unwrap();
    assert_eq!(count(&engine, &tenant(), "m"), 3);
    drop(engine);
    let reopened = Engine::open(config).unwrap();
    assert_eq!(
        count(&reopened, &tenant(), "m"),
        3,
        "every point survives a restart"
    );
    next_segment
}

#[test]
fn write_waits_for_a_descriptor_to_open_the_next_wal_segment() {
    in_child(
        "write_waits_for_a_descriptor_to_open_the_next_wal_segment",
        || {
            assert!(
                !write_waits_for_descriptors(0),
                "with no descriptor, the next segment cannot be created yet"
            );
        },
    );
}

#[test]
fn write_waits_for_a_descriptor_to_fsync_the_wal_directory() {
    in_child(
        "write_waits_for_a_descriptor_to_fsync_the_wal_directory",
        || {
            assert!(
                write_waits_for_descriptors(1),
                "the one free descriptor went to the new segment: the directory fsync is what waits"
            );
        },
    );
}
