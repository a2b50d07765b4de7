//! End-to-end lifecycle scenarios against the real binary: crash durability (`kill -9`), graceful
//! shutdown on SIGTERM, the data-directory lock, configuration errors and overrides, and retention
//! (configured policies, admin overrides that survive a restart, and `503` for an override on a full
//! disk), and the admin flush that settles the stored data. Graceful shutdown, retention and the flush run on both backends (`embedded::…`, `clickhouse::…`); the
//! WAL's crash durability, the data-directory lock and the full disk are the embedded engine's own.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::{
    Backend, Launch, Luminate, counts_by_round_and_writer, eventually, now_ms, point,
    write_until_killed,
};
use serde_json::json;

on_each_backend!(
    sigterm_finishes_the_in_flight_request_and_exits_zero,
    retention_policy_deletes_expired_points_only,
    admin_retention_override_survives_restart,
    admin_flush_settles_the_data_without_changing_an_answer
);

const WRITERS: usize = 4;
const BATCH: u64 = 20;

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // (round, writer) → (points acknowledged, points sent)
    let mut expected: HashMap<(String, String), (u64, u64)> = HashMap::new();
    for round in 0..3 {
        let server = Launch::new(dir.path()).start();
        let results = write_until_killed(
            &server,
            "durable",
            round,
            WRITERS,
            BATCH,
            Duration::from_millis(400),
        );
        server.kill9();
        for (writer, acked, sent) in results {
            assert!(
                acked > 0,
                "round {round}: {writer} had no write acknowledged before the kill"
            );
            expected.insert((format!("r{round}"), writer), (acked, sent));
        }

        let restarted = Luminate::start(dir.path());
        let counts = counts_by_round_and_writer(&restarted, "durable");
        for (key, (acked, sent)) in &expected {
            let stored = counts.get(key).copied().unwrap_or(0);
            assert!(
                *acked <= stored && stored <= *sent,
                "{key:?}: {acked} acknowledged, {sent} sent, {stored} stored after kill -9 and restart"
            );
        }
        restarted.kill9();
    }
}

fn sigterm_finishes_the_in_flight_request_and_exits_zero(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let now = now_ms();
    let body = json!({"metrics": [point("graceful", now, 1.0, &[]), point("graceful", now, 2.0, &[]), point("graceful", now, 3.0, &[])]})
        .to_string();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    write!(
        stream,
        "POST /api/v1/write HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    // The request is now in flight (headers and half the body received) when the signal arrives.
    thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    thread::sleep(Duration::from_millis(300));
    stream.write_all(rest).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"accepted":3,"rejected":0,"errors":[]}"#),
        "{response}"
    );

    let launch = server.launch().clone();
    let status = server.wait();
    assert_eq!(status.code(), Some(0), "clean exit after SIGTERM");
    let restarted = launch.start();
    assert_eq!(restarted.count("graceful"), 3);
    assert_eq!(restarted.terminate().code(), Some(0));
}

#[test]
fn second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Luminate::start(dir.path());
    let (status, output) = Launch::new(dir.path()).run_to_exit();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("locked by another process"), "{output}");
    assert_eq!(
        first.get("/api/v1/health").0,
        200,
        "the first server is unaffected"
    );
}

#[test]
fn configuration_errors_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("luminate.yaml");
    std::fs::write(&config, "server:\n  host: 127.0.0.1\n  prot: 8080\n").unwrap();
    let (status, output) = Launch::new(&dir.path().join("data"))
        .config(&config)
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("unknown field `prot`") && output.contains("server"),
        "{output}"
    );

    std::fs::write(&config, "retention:\n  cleanup_interval: hourly\n").unwrap();
    let (status, output) = Launch::new(&dir.path().join("data"))
        .config(&config)
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("retention.cleanup_interval"), "{output}");

    let (status, output) = Launch::new(&dir.path().join("data"))
        .env("LUMINATE__SERVER__PROT", "1")
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("LUMINATE__SERVER__PROT"), "{output}");
}

#[test]
fn port_comes_from_luminate_server_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let launch = Launch {
        no_listen_flag: true,
        ..Launch::new(dir.path())
    }
    .env("LUMINATE_SERVER_PORT", &port.to_string());
    let server = launch.start();
    assert_eq!(server.base, format!("http://127.0.0.1:{port}"));
    assert_eq!(server.get("/api/v1/health").0, 200);
}

fn retention_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("retention.yaml");
    std::fs::write(
        &path,
        "retention:\n  cleanup_interval: 1s\n  policies:\n    - metric_pattern: \"debug_*\"\n      retention: 1h\n",
    )
    .unwrap();
    path
}

fn retention_policy_deletes_expired_points_only(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend
        .launch(&dir.path().join("data"))
        .config(&retention_config(dir.path()))
        .start();
    let (now, hour) = (now_ms(), 3_600_000);
    let points = [
        point("debug_requests", now - 2 * hour, 1.0, &[]),
        point("debug_requests", now, 2.0, &[]),
        point("api_latency", now - 2 * hour, 3.0, &[]),
    ];
    assert_eq!(server.write(&points).0, 200);
    assert!(
        eventually(Duration::from_secs(15), || server.count("debug_requests")
            == 1),
        "{}",
        server.output()
    );
    assert_eq!(
        server.count("api_latency"),
        1,
        "the default retention (30d) keeps a 2h-old point"
    );
}

fn admin_retention_override_survives_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let launch = backend
        .launch(&dir.path().join("data"))
        .config(&retention_config(dir.path()));
    let server = launch.start();
    let (status, body) = server.post_json(
        "/api/v1/admin/retention",
        &json!({"metric_name": "short_lived", "retention_days": 1}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["metric_name"].clone(), body["retention_days"].clone()),
        (json!("short_lived"), json!(1))
    );
    let applied_at = body["applied_at"].as_str().unwrap();
    assert!(
        applied_at.len() >= 20 && applied_at.ends_with('Z'),
        "{applied_at}"
    );
    let (status, body) = server.post_json(
        "/api/v1/admin/retention",
        &json!({"metric_name": "x", "retention_days": 0}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
    assert_eq!(server.terminate().code(), Some(0));

    // Only after the restart are there points for the override to act on.
    let server = launch.start();
    let two_days_ago = now_ms() - 2 * 86_400_000;
    assert_eq!(
        server
            .write(&[
                point("short_lived", two_days_ago, 1.0, &[]),
                point("control", two_days_ago, 1.0, &[])
            ])
            .0,
        200
    );
    assert!(
        eventually(Duration::from_secs(15), || server.count("short_lived") == 0),
        "{}",
        server.output()
    );
    assert_eq!(
        server.count("control"),
        1,
        "without an override a 2-day-old point stays"
    );
}

/// A full disk while an admin sets a retention: `503 STORAGE_UNAVAILABLE` naming the file and the OS's
/// words, not `500`; nothing is changed, and once the disk has room again the same request succeeds.
/// (The override's temporary file is made a link to `/dev/full`, whose writes fail with `ENOSPC` even
/// for root: a chmod would not stop a test running as root.)
#[test]
fn admin_retention_on_a_full_disk_answers_503_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Luminate::start(&data);
    let temp = data.join("retention.json.tmp");
    std::os::unix::fs::symlink("/dev/full", &temp).unwrap();
    let request = json!({"metric_name": "short_lived", "retention_days": 1});
    let (status, body) = server.post_json("/api/v1/admin/retention", &request);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("STORAGE_UNAVAILABLE")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("retention.json.tmp") && message.contains("No space left on device"),
        "{message}"
    );
    assert!(!data.join("retention.json").exists());
    // The failed temporary file is removed (nothing half-written stays); room again: the same request
    // is stored.
    assert!(
        std::fs::symlink_metadata(&temp).is_err(),
        "{temp:?} remains"
    );
    let (status, body) = server.post_json("/api/v1/admin/retention", &request);
    assert_eq!(status, 200, "{body}");
    assert!(data.join("retention.json").exists());
    assert_eq!(server.terminate().code(), Some(0));
}

/// Every part file of an embedded data directory.
fn part_files(data: &std::path::Path) -> usize {
    std::fs::read_dir(data.join("parts"))
        .map(|dir| {
            dir.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "part"))
            })
            .count()
        })
        .unwrap_or(0)
}

fn admin_flush_settles_the_data_without_changing_an_answer(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = backend.launch(&data).start();
    let t0 = now_ms() - 3_600_000;
    let query = json!({
        "queryType": "aggregate", "metricName": "settled", "aggregation": "sum",
        "groupBy": ["host"], "timeRange": {"start": t0, "end": t0 + 1_000_000}
    });
    let results = |server: &Luminate| server.query(&query)["results"].clone();
    let mut answers = Vec::new();
    // Three rounds, each settled: the embedded engine flushes each into a part and merges them.
    for round in 0..3_i64 {
        let points: Vec<_> = (0..50_i64)
            .map(|i| {
                let host = format!("h{}", i % 5);
                point(
                    "settled",
                    t0 + round * 1000 + i,
                    (round * 50 + i) as f64,
                    &[("host", &host)],
                )
            })
            .collect();
        assert_eq!(server.write(&points).0, 200);
        answers.push(results(&server));
        let (status, body) = server.post_json("/api/v1/admin/flush", &json!({}));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["settled"], json!(true), "{body}");
        assert!(body["took_ms"].is_u64(), "{body}");
        assert_eq!(
            results(&server),
            answers[round as usize],
            "a flush changed an answer"
        );
        if backend == Backend::Embedded {
            assert_eq!(part_files(&data), 1, "the rounds so far in one merged part");
        }
    }
    let sums: HashMap<String, f64> = answers[2]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["groupKey"]["host"].as_str().unwrap().to_owned(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect();
    // Host h{k} holds i = k, k+5, ... of each round r, valued 50r + i.
    let expected: HashMap<String, f64> = (0..5)
        .map(|k| {
            let sum = (0..3)
                .flat_map(|r| (k..50).step_by(5).map(move |i| (50 * r + i) as f64))
                .sum();
            (format!("h{k}"), sum)
        })
        .collect();
    assert_eq!(sums, expected);
    assert_eq!(server.terminate().code(), Some(0));
    if backend == Backend::Embedded {
        // The answers survive a restart from the settled parts alone.
        let server = backend.launch(&data).start();
        assert_eq!(results(&server), answers[2]);
    }
}
