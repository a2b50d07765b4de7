//! Idempotency keys through the engine: a keyed write's key and answer are logged with its batch, so a
//! reopened engine answers the same key with the first answer and stores nothing; keys outlive a flush
//! that deletes their segments; replay keeps only keys within the TTL and the capacity; WAL segments
//! of earlier builds (no keys) still replay.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{count, first_segment, point, tenant};
use luminate_engine::{Engine, EngineConfig, KeyWindow};
use luminate_model::keyed::{KeyedOutcome, KeyedResponse, KeyedWrite};
use luminate_model::{PointBatch, WriteOutcome};

fn config(dir: &Path, keys: KeyWindow) -> EngineConfig {
    EngineConfig {
        keys,
        ..common::config(dir)
    }
}

/// A key whose answer names the call (`call`), so a replay shows which call's answer it is.
fn keyed(key: &str, call: &str) -> KeyedWrite {
    let call = call.to_owned();
    KeyedWrite {
        key: key.to_owned(),
        respond: Box::new(move |o: &WriteOutcome| KeyedResponse {
            status: 200,
            body: format!("{{\"accepted\":{},\"call\":\"{call}\"}}", o.accepted)
                .into_bytes()
                .into(),
        }),
    }
}

fn batch(n: usize, series: &str) -> Arc<PointBatch> {
    Arc::new(PointBatch::from_points(
        (0..n).map(|i| point("m", 1_000 + i as i64, 1.0, &[("s", series)])),
    ))
}

/// The body of the answer, and whether it was a replay.
fn write(engine: &Engine, key: &str, call: &str, points: usize) -> (String, bool) {
    match engine
        .write_keyed(&tenant(), batch(points, call), keyed(key, call))
        .unwrap()
    {
        KeyedOutcome::Stored { outcome, response } => {
            assert_eq!(outcome.accepted, points);
            (String::from_utf8(response.body.to_vec()).unwrap(), false)
        }
        KeyedOutcome::Replayed(response) => {
            (String::from_utf8(response.body.to_vec()).unwrap(), true)
        }
    }
}

#[test]
fn a_reopened_engine_answers_a_logged_key_with_the_first_answer_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let engine = Engine::open(config(dir.path(), KeyWindow::default())).unwrap();
        let first = write(&engine, "k1", "first", 3);
        assert_eq!(
            first,
            (r#"{"accepted":3,"call":"first"}"#.to_owned(), false)
        );
        assert_eq!(write(&engine, "k1", "again", 3), (first.0.clone(), true));
        first.0
    };
    let engine = Engine::open(config(dir.path(), KeyWindow::default())).unwrap();
    assert_eq!(write(&engine, "k1", "retry", 3), (first, true));
    assert_eq!(count(&engine, &tenant(), "m"), 3);
    // Another key, and the same key of another tenant, are new writes.
    assert!(!write(&engine, "k2", "second", 2).1);
    let other = engine
        .write_keyed(
            &luminate_model::Tenant::new("other"),
            batch(1, "x"),
            keyed("k1", "other"),
        )
        .unwrap();
    assert!(matches!(other, KeyedOutcome::Stored { .. }));
    assert_eq!(count(&engine, &tenant(), "m"), 5);
}

#[test]
fn keys_outlive_a_flush_that_deletes_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let engine = Engine::open(config(dir.path(), KeyWindow::default())).unwrap();
        let first = write(&engine, "before-flush", "first", 4).0;
        engine.flush().unwrap();
        assert!(
            !first_segment(dir.path()).exists(),
            "the flush deleted the segment that logged the key"
        );
        assert!(write(&engine, "before-flush", "again", 4).1);
        // A second flush carries the carried-over keys over again.
        write(&engine, "between", "x", 1);
        engine.flush().unwrap();
        first
    };
    let engine = Engine::open(config(dir.path(), KeyWindow::default())).unwrap();
    assert_eq!(engine.part_count(), 2);
    assert_eq!(write(&engine, "before-flush", "retry", 4), (first, true));
    assert!(write(&engine, "between", "retry", 1).1);
    assert_eq!(count(&engine, &tenant(), "m"), 5);
}

#[test]
fn replay_forgets_keys_past_the_ttl_by_their_logged_time() {
    let dir = tempfile::tempdir().unwrap();
    let short = KeyWindow {
        ttl: Duration::from_millis(3_000),
        capacity: 100,
    };
    {
        let engine = Engine::open(config(dir.path(), short)).unwrap();
        // Carried over by the flush (a KEY_WINDOW record), and logged after it (a KEYED_WRITE): both
        // expire by the time of their write, not of the flush or of the replay.
        write(&engine, "carried", "first", 1);
        engine.flush().unwrap();
        write(&engine, "logged", "first", 1);
        std::thread::sleep(Duration::from_millis(3_100));
        write(&engine, "young", "first", 1);
    }
    let engine = Engine::open(config(dir.path(), short)).unwrap();
    assert!(write(&engine, "young", "retry", 1).1);
    for key in ["carried", "logged"] {
        assert_eq!(
            write(&engine, key, "retry", 1),
            (r#"{"accepted":1,"call":"retry"}"#.to_owned(), false),
            "past its TTL {key} is a new write"
        );
    }
    assert_eq!(count(&engine, &tenant(), "m"), 5);
}

#[test]
fn replay_keeps_the_newest_keys_up_to_the_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let big = KeyWindow {
        capacity: 10,
        ..KeyWindow::default()
    };
    {
        let engine = Engine::open(config(dir.path(), big)).unwrap();
        for k in ["a", "b", "c"] {
            write(&engine, k, "first", 1);
        }
    }
    let two = KeyWindow {
        capacity: 2,
        ..KeyWindow::default()
    };
    let engine = Engine::open(config(dir.path(), two)).unwrap();
    assert!(write(&engine, "c", "retry", 1).1);
    assert!(write(&engine, "b", "retry", 1).1);
    assert!(!write(&engine, "a", "retry", 1).1, "a was the oldest");
    assert_eq!(count(&engine, &tenant(), "m"), 4);
}

#[test]
fn a_segment_of_an_earlier_build_replays_beside_keyed_writes() {
    let dir = tempfile::tempdir().unwrap();
    // A WRITE_BATCH record as builds before keyed writes logged it (layout: `record.rs`): tenant
    // "acme", new series 0 = m{s="old"}, one point (0, 7, 2.5).
    #[rustfmt::skip]
    let payload: Vec<u8> = [
        &[1u8][..], &[4, 0, 0, 0], b"acme",
        &[1, 0, 0, 0], &[0, 0, 0, 0], &[1, 0, 0, 0], b"m",
        &[1, 0], &[1, 0, 0, 0], b"s", &[3, 0, 0, 0], b"old",
        &[1, 0, 0, 0], &[0, 0, 0, 0], &7i64.to_le_bytes(), &2.5f64.to_bits().to_le_bytes(),
    ]
    .concat();
    let mut segment = b"LWAL\x01\0\0\0".to_vec();
    segment.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    segment.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    segment.extend_from_slice(&payload);
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();
    std::fs::write(first_segment(dir.path()), &segment).unwrap();
    {
        let engine = Engine::open(config(dir.path(), KeyWindow::default())).unwrap();
        assert_eq!(engine.recovery_report().records_replayed, 1);
        assert_eq!(count(&engine, &tenant(), "m"), 1);
        assert!(!write(&engine, "new", "first", 2).1);
    }
    let engine = Engine::open(config(dir.path(), KeyWindow::default())).unwrap();
    assert_eq!(engine.recovery_report().records_replayed, 2);
    assert_eq!(count(&engine, &tenant(), "m"), 3);
    assert!(write(&engine, "new", "retry", 2).1);
}

#[test]
fn a_keyed_write_that_stores_nothing_is_not_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path(), KeyWindow::default())).unwrap();
    let empty = Arc::new(PointBatch::from_points(Vec::new()));
    for _ in 0..2 {
        let outcome = engine
            .write_keyed(&tenant(), Arc::clone(&empty), keyed("nothing", "empty"))
            .unwrap();
        assert!(
            matches!(&outcome, KeyedOutcome::Stored { outcome, .. } if outcome.accepted == 0),
            "{outcome:?}"
        );
    }
    drop(engine);
    let engine = Engine::open(config(dir.path(), KeyWindow::default())).unwrap();
    assert_eq!(
        engine.recovery_report().records_replayed,
        0,
        "nothing was logged"
    );
}
