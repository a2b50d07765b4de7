//! The protocol ingest rule (`Engine::write_samples`, docs/ingest.md): per series, a sample is stored
//! only when its timestamp is after the newest sample the series holds. A retried or resent batch
//! stores nothing twice — within one process, between concurrent writers, and after a restart that
//! rebuilds the newest from the WAL and from parts. JSON writes (`Engine::write`) never deduplicate.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::sync::Arc;

use common::{count, open, point, tenant};
use luminate_engine::Engine;
use luminate_model::{Point, PointBatch, WriteOutcome};

fn samples(engine: &Engine, points: &[Point]) -> WriteOutcome {
    engine
        .write_samples(
            &tenant(),
            Arc::new(PointBatch::from_points(points.to_vec())),
        )
        .unwrap()
}

/// (accepted, duplicates, out of order).
fn counts(o: &WriteOutcome) -> (usize, usize, usize) {
    assert!(o.rejected.is_empty(), "{:?}", o.rejected);
    (o.accepted, o.duplicates, o.out_of_order)
}

fn up(job: &str, ts: i64, v: f64) -> Point {
    point("up", ts, v, &[("job", job)])
}

/// Two series, three samples each.
fn scrape() -> Vec<Point> {
    let mut points = Vec::new();
    for job in ["a", "b"] {
        for t in [1_000, 2_000, 3_000] {
            points.push(up(job, t, t as f64));
        }
    }
    points
}

#[test]
fn a_retried_batch_stores_nothing_twice_and_counts_why() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    assert_eq!(counts(&samples(&engine, &scrape())), (6, 0, 0));
    // Each series' newest is a duplicate; its two earlier samples are older than the newest.
    assert_eq!(counts(&samples(&engine, &scrape())), (0, 2, 4));
    assert_eq!(count(&engine, &tenant(), "up"), 6);
    // The same timestamp with another value is not stored either; a newer one is.
    let next = [
        up("a", 3_000, 9.0),
        up("a", 4_000, 4.0),
        up("a", 4_000, 4.0),
    ];
    assert_eq!(counts(&samples(&engine, &next)), (1, 1, 1));
    assert_eq!(count(&engine, &tenant(), "up"), 7);
}

#[test]
fn json_writes_are_never_deduplicated_but_set_the_newest_protocol_writes_compare_with() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let json = vec![up("a", 3_000, 3_000.0), up("a", 3_000, 3_000.0)];
    assert_eq!(engine.write(&tenant(), json.clone()).unwrap().accepted, 2);
    assert_eq!(engine.write(&tenant(), json).unwrap().accepted, 2);
    assert_eq!(counts(&samples(&engine, &scrape())), (3, 1, 2));
    assert_eq!(count(&engine, &tenant(), "up"), 7);
}

#[test]
fn concurrent_retries_of_one_batch_store_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(open(dir.path()));
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || samples(&engine, &scrape()).accepted)
        })
        .collect();
    let stored: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
    assert_eq!(stored, 6);
    assert_eq!(count(&engine, &tenant(), "up"), 6);
}

#[test]
fn the_newest_survives_a_restart_from_the_wal_and_from_parts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    samples(&engine, &scrape());
    // job a's samples go to a part; job b gets a newer sample in the head (the WAL) after it.
    engine.flush().unwrap();
    assert_eq!(counts(&samples(&engine, &[up("b", 4_000, 4.0)])), (1, 0, 0));
    drop(engine);

    let engine = open(dir.path());
    assert_eq!(engine.part_count(), 1);
    let mut resend = scrape();
    resend.push(up("b", 4_000, 4.0));
    assert_eq!(counts(&samples(&engine, &resend)), (0, 2, 5));
    assert_eq!(count(&engine, &tenant(), "up"), 7);
    let next = [up("a", 3_001, 1.0), up("b", 4_001, 1.0)];
    assert_eq!(counts(&samples(&engine, &next)), (2, 0, 0));
    drop(engine);

    // Again, now that every sample is in parts or the WAL of the second run.
    let engine = open(dir.path());
    assert_eq!(counts(&samples(&engine, &next)), (0, 2, 0));
    assert_eq!(count(&engine, &tenant(), "up"), 9);
}

#[test]
fn a_delete_that_empties_a_series_lets_its_samples_in_again_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    samples(&engine, &scrape());
    engine.flush().unwrap();
    samples(&engine, &[up("b", 10_000, 1.0)]);
    // Empties job a (in a part: a tombstone) and keeps job b's newest.
    engine.delete_before(&tenant(), "up", 5_000).unwrap();
    let resend = [up("a", 3_000, 3.0), up("b", 3_000, 3.0)];
    assert_eq!(counts(&samples(&engine, &resend)), (1, 0, 1));
    drop(engine);

    let engine = open(dir.path());
    assert_eq!(counts(&samples(&engine, &resend)), (0, 1, 1));
    engine.delete_before(&tenant(), "up", 20_000).unwrap();
    drop(engine);
    let engine = open(dir.path());
    assert_eq!(counts(&samples(&engine, &resend)), (2, 0, 0));
}
