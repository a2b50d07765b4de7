//! The writer thread's commit pipeline, observed through an engine whose fsyncs wait at a gate.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use luminate_model::{Dimensions, Point, Tenant};

use crate::wal::fsync_gate::{self, State};
use crate::{Engine, EngineConfig, EngineError};
use luminate_model::WriteOutcome;

/// Starts a write of one new series on its own thread; its answer comes on the channel.
fn write_in_background(
    engine: &Arc<Engine>,
    customer: &str,
) -> mpsc::Receiver<Result<WriteOutcome, EngineError>> {
    let (tx, rx) = mpsc::channel();
    let (engine, customer) = (Arc::clone(engine), customer.to_owned());
    std::thread::spawn(move || {
        let point = Point {
            name: "m".to_owned(),
            timestamp: 1,
            value: 1.0,
            dimensions: Dimensions::from_pairs([("customer".to_owned(), customer)]),
        };
        let _ = tx.send(engine.write(&Tenant::new("t"), vec![point]));
    });
    rx
}

/// Waits (at most 10 s) until the first WAL segment holds more than `bytes`; returns its length.
fn wal_grows_past(dir: &std::path::Path, bytes: u64) -> u64 {
    let segment = dir.join("wal").join("00000001.wal");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let len = std::fs::metadata(&segment).map_or(0, |m| m.len());
        if len > bytes || Instant::now() > deadline {
            return len;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Opens an engine (fsync always) whose commit-group fsyncs wait at a gate; returns the length of
/// its empty WAL.
fn gated_engine(dir: &std::path::Path) -> (Arc<Engine>, Arc<fsync_gate::Gate>, u64) {
    let engine = Arc::new(Engine::open(EngineConfig::new(dir)).unwrap());
    let gate = fsync_gate::install(&dir.join("wal"));
    let empty = wal_grows_past(dir, 0);
    (engine, gate, empty)
}

#[test]
fn writers_are_answered_only_after_the_fsync_covering_their_record_while_the_next_group_is_staged()
{
    let dir = tempfile::tempdir().unwrap();
    let (engine, gate, empty) = gated_engine(dir.path());
    let first = write_in_background(&engine, "a");
    // The first write's record is appended and its fsync waits at the gate.
    assert!(gate.wait_for_arrivals(1));
    let after_first = wal_grows_past(dir.path(), empty);
    assert!(after_first > empty);
    // A second write is staged and appended meanwhile, behind the fsync in flight.
    let second = write_in_background(&engine, "b");
    assert!(wal_grows_past(dir.path(), after_first) > after_first);
    // Neither is answered nor visible: nothing is applied before it is durable.
    assert_eq!(
        first.recv_timeout(Duration::from_millis(50)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(second.try_recv().is_err());
    assert_eq!(engine.memory().head_points, 0);

    gate.set(State::Open);
    for answer in [first, second] {
        let outcome = answer
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(outcome.accepted, 1);
    }
    assert_eq!(engine.memory().head_points, 2);
    assert_eq!(engine.memory().series, 2);
}

#[test]
fn a_failed_fsync_fails_its_group_and_the_group_staged_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, gate, empty) = gated_engine(dir.path());
    let first = write_in_background(&engine, "a");
    assert!(gate.wait_for_arrivals(1));
    let after_first = wal_grows_past(dir.path(), empty);
    let second = write_in_background(&engine, "b");
    assert!(wal_grows_past(dir.path(), after_first) > after_first);

    gate.set(State::Fail);
    for answer in [first, second] {
        match answer.recv_timeout(Duration::from_secs(10)).unwrap() {
            Err(EngineError::Poisoned { reason }) => {
                assert!(reason.contains("injected fsync failure"), "{reason}")
            }
            other => panic!("expected Poisoned, got {other:?}"),
        }
    }
    assert_eq!(engine.memory().head_points, 0);
    assert!(matches!(
        write_in_background(&engine, "c")
            .recv_timeout(Duration::from_secs(10))
            .unwrap(),
        Err(EngineError::Poisoned { .. })
    ));
}

/// Syncs, flushes, deletes and snapshots drain the group in flight; under concurrent writes the fsync
/// thread's answer may arrive in the same group as the request that drains, and must still be found
/// (it was once waited for on the queue, forever). Several seconds of that, under a watchdog.
#[test]
fn requests_that_drain_under_concurrent_writes_never_wait_forever() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Engine::open(EngineConfig {
            head_max_points: 5_000,
            ..EngineConfig::new(dir.path())
        })
        .unwrap(),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0i64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let points = (0..50)
                        .map(|i| Point {
                            name: "m".to_owned(),
                            timestamp: n * 50 + i,
                            value: 1.0,
                            dimensions: Dimensions::from_pairs([("w".to_owned(), format!("{w}"))]),
                        })
                        .collect();
                    engine.write(&Tenant::new("t"), points).unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    let (done, finished) = mpsc::channel();
    let drainer = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut rounds = 0u32;
            while started.elapsed() < Duration::from_secs(3) {
                engine.sync().unwrap();
                if rounds.is_multiple_of(10) {
                    engine.flush().unwrap();
                    drop(engine.snapshot().unwrap());
                }
                rounds += 1;
            }
            let _ = done.send(rounds);
        })
    };
    let rounds = finished.recv_timeout(Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(rounds.is_ok(), "a draining request never returned");
    drainer.join().unwrap();
    for writer in writers {
        writer.join().unwrap();
    }
}
