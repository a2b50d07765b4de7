//! The real binary on the ClickHouse backend when ClickHouse goes away: killed (a crash, SIGKILL) or
//! frozen (SIGSTOP) mid-run, writes and queries answer `503 STORAGE_UNAVAILABLE` fast once the circuit
//! opens and health says why; when ClickHouse returns, the same Luminate process recovers by itself and
//! every write it acknowledged before the outage is there. (A crash rather than a graceful stop: it is
//! the harsher case for acknowledged writes, and 18.16's graceful stop waits 10–20 s for idle
//! keep-alive connections.) Also start-up: an unreachable ClickHouse starts Luminate
//! degraded (and it recovers), while refused credentials, the native port and a foreign table stop it
//! with a message naming the address or key.

#![cfg(feature = "clickhouse")] // a build without the backend has nothing to test here
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::time::{Duration, Instant};

use common::{Launch, Luminate, eventually, now_ms, point};
use luminate_clickhouse::testing::{self, ClickhouseServer, PASSWORD_USER};
use serde_json::{Value, json};

/// The breaker's cool-down in the outage scenarios: long enough that the fail-fast checks after the
/// circuit opens all run before the first probe, even on a loaded machine.
const COOL_DOWN: &str = "5s";

/// Points per write batch, and batches written before the outage.
const BATCH: usize = 100;
const BATCHES_BEFORE: usize = 5;

fn batch(phase: &str, n: usize) -> Vec<Value> {
    let now = now_ms();
    (0..BATCH)
        .map(|i| {
            point(
                "outage",
                now - i as i64,
                (n * BATCH + i) as f64,
                &[("phase", phase), ("customer", &format!("c{}", i % 7))],
            )
        })
        .collect()
}

/// Stored points per phase.
fn counts_by_phase(server: &Luminate) -> Vec<(String, u64)> {
    let body = server.query(&json!({
        "queryType": "aggregate", "metricName": "outage", "aggregation": "count",
        "groupBy": ["phase"], "timeRange": {"relative": "1h"},
    }));
    let mut counts: Vec<(String, u64)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["groupKey"]["phase"].as_str().unwrap().to_owned(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    counts.sort();
    counts
}

/// Asserts a `503 STORAGE_UNAVAILABLE` whose message contains `reason`.
fn assert_unavailable((status, body): (u16, Value), reason: &str) {
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "STORAGE_UNAVAILABLE", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(reason), "{message}");
}

/// Asserts that health answers 503 with the storage unhealthy, its reason containing `reason`.
fn assert_unhealthy(server: &Luminate, reason: &str) {
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["storage"]["backend"], "clickhouse");
    assert_eq!(health["storage"]["status"], "unavailable");
    assert_eq!(health["storage"]["disk_used_bytes"], Value::Null);
    let error = health["storage"]["error"].as_str().unwrap();
    assert!(error.contains(reason), "{error}");
    assert_eq!(health["checks"]["storage"]["status"], "fail");
    assert_eq!(health["checks"]["storage"]["message"], error);
}

fn assert_healthy(server: &Luminate) {
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["storage"]["status"], "healthy");
    assert!(health["storage"]["disk_used_bytes"].as_u64().unwrap() > 0);
}

fn query_count() -> Value {
    json!({"queryType": "aggregate", "metricName": "outage", "aggregation": "count",
           "timeRange": {"relative": "1h"}})
}

/// Writes `during` batches until the circuit opens (at most 3 writes: the breaker's threshold), each
/// answered `503 STORAGE_UNAVAILABLE` within `limit`; returns the messages before the circuit opened.
fn write_until_the_circuit_opens(server: &Luminate, limit: Duration) -> Vec<String> {
    let mut before_open = Vec::new();
    for n in 0..3 {
        let ((status, body), took) = timed(|| server.write(&batch("during", n)));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("STORAGE_UNAVAILABLE")),
            "{body}"
        );
        assert!(took < limit, "{took:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap().to_owned();
        if message.contains("circuit open") {
            return before_open;
        }
        before_open.push(message);
    }
    before_open
}

/// Runs `f` and returns its result with how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

/// Waits (at most 15 s) for health to turn green by itself.
fn wait_for_recovery(server: &Luminate) {
    assert!(
        eventually(Duration::from_secs(15), || server.get("/api/v1/health").0
            == 200),
        "no recovery; server output:\n{}",
        server.output()
    );
}

#[test]
fn crashed_clickhouse_gives_fast_503s_and_the_same_process_recovers_with_every_ack() {
    let mut clickhouse = ClickhouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .clickhouse(&[&clickhouse.address()], "outage_stop")
        .env("LUMINATE_CLICKHOUSE_BREAKER_COOL_DOWN", COOL_DOWN)
        .start();
    let pid = server.pid();
    for n in 0..BATCHES_BEFORE {
        assert_eq!(server.write(&batch("before", n)).0, 200);
    }
    assert_healthy(&server);

    clickhouse.kill();
    // Until the circuit opens (3 outages), each call tries ClickHouse: refused at once.
    let tried = write_until_the_circuit_opens(&server, Duration::from_secs(2));
    assert!(
        tried
            .first()
            .is_some_and(|m| m.contains("cannot connect to ClickHouse")),
        "{tried:?}"
    );
    // Open: writes, queries, discovery and health fail fast with the breaker's reason.
    let (answer, took) = timed(|| server.write(&batch("during", 9)));
    assert_unavailable(answer, "circuit open");
    assert!(took < Duration::from_millis(300), "{took:?}");
    let (answer, took) = timed(|| server.post_json("/api/v1/query", &query_count()));
    assert_unavailable(answer, "3 consecutive failures");
    assert!(took < Duration::from_millis(300), "{took:?}");
    assert_unavailable(server.get("/api/v1/metrics"), "circuit open");
    assert_unhealthy(&server, "circuit open");

    clickhouse.start_again();
    wait_for_recovery(&server);
    assert_eq!(server.pid(), pid, "the same process");
    assert_eq!(server.write(&batch("after", 0)).0, 200);
    // Every acknowledged point, and none of the refused ones.
    assert_eq!(
        counts_by_phase(&server),
        vec![
            ("after".to_owned(), BATCH as u64),
            ("before".to_owned(), (BATCHES_BEFORE * BATCH) as u64)
        ]
    );
}

#[test]
fn frozen_clickhouse_times_out_opens_the_circuit_and_recovers_when_it_thaws() {
    let clickhouse = ClickhouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .clickhouse(&[&clickhouse.address()], "outage_freeze")
        .env("LUMINATE_CLICKHOUSE_BREAKER_COOL_DOWN", COOL_DOWN)
        .env("LUMINATE_CLICKHOUSE_REQUEST_TIMEOUT", "1s")
        .start();
    for n in 0..BATCHES_BEFORE {
        assert_eq!(server.write(&batch("before", n)).0, 200);
    }

    clickhouse.pause();
    // A hung server accepts connections and never answers: a write waits for request_timeout, then
    // once more for the count that would tell whether its insert landed (its outcome is unknown).
    let tried = write_until_the_circuit_opens(&server, Duration::from_secs(4));
    assert!(
        !tried.is_empty()
            && tried
                .iter()
                .all(|m| m.contains("no answer from ClickHouse within 1s")),
        "{tried:?}"
    );
    let (answer, took) = timed(|| server.post_json("/api/v1/query", &query_count()));
    assert_unavailable(answer, "circuit open");
    assert!(took < Duration::from_millis(300), "{took:?}");
    let (answer, took) = timed(|| server.write(&batch("during", 9)));
    assert_unavailable(answer, "circuit open");
    assert!(took < Duration::from_millis(300), "{took:?}");
    assert_unhealthy(&server, "no answer from ClickHouse");

    clickhouse.resume();
    wait_for_recovery(&server);
    assert_eq!(server.write(&batch("after", 0)).0, 200);
    // A write that timed out may or may not have been stored by the frozen server (its outcome was
    // unknown, and it was answered 503): the acknowledged ones are all there.
    let counts = counts_by_phase(&server);
    let stored = |phase: &str| {
        counts
            .iter()
            .find(|(p, _)| p == phase)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(stored("before"), (BATCHES_BEFORE * BATCH) as u64);
    assert_eq!(stored("after"), BATCH as u64);
    assert!(stored("during") <= (3 * BATCH) as u64, "{counts:?}");
    assert_eq!(stored("during") % BATCH as u64, 0, "whole batches only");
}

#[test]
fn unreachable_clickhouse_at_start_serves_503s_then_recovers_by_itself() {
    let mut clickhouse = ClickhouseServer::start();
    clickhouse.kill();
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .clickhouse(&[&clickhouse.address()], "late_start")
        .start();
    let reason = "has not been reached since Luminate started";
    assert_unhealthy(&server, reason);
    assert_unhealthy(&server, &clickhouse.address());
    assert_unavailable(server.write(&batch("before", 0)), reason);
    assert_unavailable(server.post_json("/api/v1/query", &query_count()), reason);

    clickhouse.start_again();
    wait_for_recovery(&server);
    assert_eq!(server.write(&batch("after", 0)).0, 200);
    assert_eq!(
        counts_by_phase(&server),
        vec![("after".to_owned(), BATCH as u64)]
    );
    // The schema was created by the deferred open.
    assert_eq!(
        clickhouse
            .sql("SELECT count() FROM late_start.points")
            .unwrap()
            .trim(),
        BATCH.to_string()
    );
}

#[test]
fn start_up_refusals_exit_1_naming_the_address_or_key() {
    let clickhouse = testing::shared();
    let dir = tempfile::tempdir().unwrap();
    let refused = |launch: Launch| {
        let (status, output) = launch.run_to_exit();
        assert_eq!(status.code(), Some(1), "{output}");
        output
    };

    let (user, _) = PASSWORD_USER;
    let output = refused(
        Launch::new(dir.path())
            .clickhouse(&[&clickhouse.address()], "refusals")
            .env("LUMINATE_CLICKHOUSE_USERNAME", user)
            .env("LUMINATE_CLICKHOUSE_PASSWORD", "not-the-password"),
    );
    assert!(
        output.contains(&format!(
            "storage.clickhouse.addresses: {}",
            clickhouse.address()
        )),
        "{output}"
    );
    assert!(
        output.contains("Wrong password")
            && output.contains("check storage.clickhouse.username and storage.clickhouse.password"),
        "{output}"
    );

    // The native protocol's port answers HTTP with an error of its own.
    let native = format!("127.0.0.1:{}", clickhouse.ports().tcp);
    let output = refused(Launch::new(dir.path()).clickhouse(&[&native], "refusals"));
    assert!(
        output.contains(&native) && output.contains("native-protocol port"),
        "{output}"
    );

    clickhouse
        .sql("CREATE DATABASE IF NOT EXISTS foreign_db")
        .unwrap();
    clickhouse
        .sql(
            "CREATE TABLE IF NOT EXISTS foreign_db.points (ts DateTime, v Float64) \
             ENGINE = MergeTree() ORDER BY ts",
        )
        .unwrap();
    let output =
        refused(Launch::new(dir.path()).clickhouse(&[&clickhouse.address()], "foreign_db"));
    assert!(
        output.contains("database foreign_db") && output.contains("lacks the columns"),
        "{output}"
    );

    // A malformed address is a configuration error (exit 2) naming the key.
    let (status, output) = Launch::new(dir.path())
        .clickhouse(&["127.0.0.1"], "refusals")
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("storage.clickhouse.addresses") && output.contains("not host:port"),
        "{output}"
    );
}
