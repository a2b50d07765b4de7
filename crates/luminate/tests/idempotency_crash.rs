//! `Idempotency-Key`s survive a crash: after `kill -9` and a restart the client's retry gets the first
//! answer back — status and body byte for byte, marked `Idempotent-Replayed: true` — and every point
//! is stored once. On the embedded engine because the key and the answer are logged in the WAL record
//! of the batch (also after a flush deleted that segment; a key older than
//! `batch_write.idempotency_key_ttl` when the server restarts is a new write); on ClickHouse because a
//! keyed batch is stored under an id derived from its key and points, and counted before it is
//! inserted (docs/clickhouse.md, "Idempotency keys").

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::time::Duration;

use common::{Backend, Launch, Luminate, now_ms, point};
use serde_json::{Value, json};

/// An answer as the client received it: status, body bytes, and whether it was marked a replay.
#[derive(Debug, PartialEq)]
struct Raw {
    status: u16,
    body: Vec<u8>,
    replayed: bool,
}

/// POSTs `{"metrics": points}` with `key`, and returns the answer unparsed.
fn keyed_write(server: &Luminate, key: &str, points: &[Value]) -> Raw {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let body = json!({ "metrics": points }).to_string();
    let mut response = agent
        .post(server.url("/api/v1/write"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .send(body.as_bytes())
        .unwrap();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    Raw {
        status: response.status().as_u16(),
        body: response.body_mut().read_to_vec().unwrap(),
        replayed,
    }
}

/// `n` valid points of `metric` and one invalid one (a name starting with a digit) in the middle, so
/// the answer is a 207 that names it: more of the answer to compare than `{"accepted": n}`.
fn batch(metric: &str, n: usize) -> Vec<Value> {
    let now = now_ms();
    let mut points: Vec<Value> = (0..n)
        .map(|i| {
            point(
                metric,
                now - 1_000 - i as i64,
                i as f64,
                &[("i", &i.to_string())],
            )
        })
        .collect();
    points.insert(n / 2, point("9invalid", now, 1.0, &[]));
    points
}

on_each_backend!(a_retry_after_kill_9_gets_the_first_answer_byte_for_byte_and_stores_once);

fn a_retry_after_kill_9_gets_the_first_answer_byte_for_byte_and_stores_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let launch = backend.launch(dir.path());
    let points = batch("crash_keyed", 5);
    let server = launch.start();
    let first = keyed_write(&server, "retry-after-crash", &points);
    assert_eq!(
        first.status,
        207,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert!(!first.replayed);
    let first_body: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(
        (
            first_body["accepted"].as_u64(),
            first_body["rejected"].as_u64()
        ),
        (Some(5), Some(1))
    );
    assert_eq!(first_body["errors"][0]["index"], 2);
    server.kill9();

    let restarted = launch.start();
    let retry = keyed_write(&restarted, "retry-after-crash", &points);
    assert_eq!(
        (retry.status, retry.body.as_slice(), retry.replayed),
        (first.status, first.body.as_slice(), true),
        "the retry after kill -9 gets the first answer"
    );
    assert_eq!(restarted.count("crash_keyed"), 5, "stored once");
    // Remembered by the restarted server's cache now, and still the same bytes.
    let again = keyed_write(&restarted, "retry-after-crash", &points);
    assert_eq!((again.body, again.replayed), (first.body, true));
    // Another key is another write.
    let other = keyed_write(&restarted, "another", &points);
    assert!(!other.replayed);
    assert_eq!(restarted.count("crash_keyed"), 10);
}

#[test]
fn keys_survive_a_flush_that_deleted_their_wal_segment_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch::new(dir.path());
    let points = batch("flushed_keyed", 8);
    let server = launch.start();
    let first = keyed_write(&server, "flushed-then-crashed", &points);
    assert_eq!(first.status, 207);
    let (status, body) = server.post_json("/api/v1/admin/flush", &Value::Null);
    assert_eq!(status, 200, "{body}");
    assert!(
        !dir.path().join("wal").join("00000001.wal").exists(),
        "the flush deleted the segment that logged the key"
    );
    assert!(std::fs::read_dir(dir.path().join("parts")).unwrap().count() > 0);
    server.kill9();

    let restarted = launch.start();
    let retry = keyed_write(&restarted, "flushed-then-crashed", &points);
    assert_eq!(
        (retry.status, retry.body.as_slice(), retry.replayed),
        (first.status, first.body.as_slice(), true)
    );
    assert_eq!(restarted.count("flushed_keyed"), 8, "stored once");
}

#[test]
fn a_key_older_than_the_ttl_when_the_server_restarts_is_a_new_write() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough for a restart under a loaded CI machine to fit in it.
    let ttl = Duration::from_secs(10);
    let launch = Launch::new(dir.path()).env("LUMINATE__BATCH_WRITE__IDEMPOTENCY_KEY_TTL", "10s");
    let points = batch("expired_keyed", 3);
    let server = launch.start();
    let first = keyed_write(&server, "expires", &points);
    // Taken after the answer, so after the time the key was logged with.
    let written = std::time::Instant::now();
    assert_eq!(first.status, 207);
    // Within the TTL the key is remembered across the crash ...
    assert!(!keyed_write(&server, "young", &points).replayed);
    server.kill9();
    let restarted = launch.start();
    assert!(keyed_write(&restarted, "young", &points).replayed);
    restarted.kill9();
    // ... past it, it is not: the TTL counts from the write, whatever the restarts in between.
    std::thread::sleep((ttl + Duration::from_millis(200)).saturating_sub(written.elapsed()));
    let restarted = launch.start();
    let retry = keyed_write(&restarted, "expires", &points);
    assert_eq!((retry.status, retry.replayed), (207, false));
    assert_eq!(
        retry.body, first.body,
        "the same batch gets the same answer"
    );
    assert_eq!(
        restarted.count("expired_keyed"),
        9,
        "stored again: the key had expired"
    );
}
