//! A failed WAL write poisons the engine: the write that hit it and every later write, delete and sync
//! fail with `Poisoned`; health says why; what was acknowledged is still served, and survives restart.
//!
//! The failure is injected through the file system: the next WAL segment's name is taken by a directory,
//! so rolling to it fails. An fsync failure takes the same path in the writer (`Committer::sync_now`)
//! but cannot be provoked without a fault-injecting block device.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use common::{count, point, tenant};
use luminate_engine::{Engine, EngineConfig, EngineError};
use luminate_model::store::HealthStatus;

#[test]
fn failed_wal_write_poisons_every_later_write() {
    let dir = tempfile::tempdir().unwrap();
    // Every record after the first rolls to a new segment.
    let config = EngineConfig {
        wal_segment_bytes: 1,
        ..common::config(dir.path())
    };
    let engine = Engine::open(config.clone()).unwrap();
    engine
        .write(&tenant(), vec![point("m", 1, 1.0, &[])])
        .unwrap();
    let blocker = dir.path().join("wal").join("00000002.wal");
    std::fs::create_dir(&blocker).unwrap();

    let poisoned = |r: Result<(), EngineError>| match r {
        Err(EngineError::Poisoned { reason }) => {
            assert!(reason.contains("00000002.wal"), "{reason}")
        }
        other => panic!("expected Poisoned, got {other:?}"),
    };
    poisoned(
        engine
            .write(&tenant(), vec![point("m", 2, 2.0, &[])])
            .map(drop),
    );
    poisoned(
        engine
            .write(&tenant(), vec![point("m", 3, 3.0, &[])])
            .map(drop),
    );
    poisoned(engine.write(&tenant(), vec![]).map(drop));
    poisoned(engine.delete_before(&tenant(), "m", 10).map(drop));
    poisoned(engine.sync());
    let health = engine.health();
    assert_eq!(health.status, HealthStatus::Unavailable);
    assert!(health.error.unwrap().contains("00000002.wal"));
    // Reads keep serving what was acknowledged, and nothing else.
    assert_eq!(count(&engine, &tenant(), "m"), 1);
    drop(engine);

    std::fs::remove_dir(&blocker).unwrap();
    let engine = Engine::open(config).unwrap();
    assert_eq!(count(&engine, &tenant(), "m"), 1);
    assert_eq!(engine.health().status, HealthStatus::Healthy);
    engine
        .write(&tenant(), vec![point("m", 4, 4.0, &[])])
        .unwrap();
    assert_eq!(count(&engine, &tenant(), "m"), 2);
}
