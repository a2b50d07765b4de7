//! One engine per data directory: a second open fails with `Locked` until the first engine is dropped.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use luminate_engine::{Engine, EngineError};

#[test]
fn second_open_of_a_data_dir_is_locked_until_the_first_engine_drops() {
    let dir = tempfile::tempdir().unwrap();
    // The data directory (and its parents) are created when missing.
    let data_dir = dir.path().join("nested").join("data");
    let first = Engine::open(common::config(&data_dir)).unwrap();
    match Engine::open(common::config(&data_dir)) {
        Err(EngineError::Locked { path }) => assert_eq!(path, data_dir.join("LOCK")),
        other => panic!("expected Locked, got {other:?}"),
    }
    first
        .write(&common::tenant(), vec![common::point("m", 1, 1.0, &[])])
        .unwrap();
    drop(first);
    let second = Engine::open(common::config(&data_dir)).unwrap();
    assert_eq!(common::count(&second, &common::tenant(), "m"), 1);
}
