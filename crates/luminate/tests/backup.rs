//! `luminate backup` and `luminate restore` through the real binary: a backup taken under concurrent
//! write load restores into a server that answers identically for everything acknowledged before the
//! backup began; flushes and compactions while a snapshot is held do not break it; restore refuses a
//! non-empty directory, a tampered file and an unfinished backup; the ClickHouse backend's refusal;
//! the admin scope; a snapshot's lease running out releases its files.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Launch, Luminate, eventually, now_ms, point};
use serde_json::{Value, json};
use tenant_client::{Client, token, with_secret};

const HOUR: i64 = 3_600_000;
/// Points written before a backup, in batches of `BATCH`.
const BEFORE_POINTS: i64 = 12_000;
const BATCH: i64 = 500;

/// The outcome of one run of the binary.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `luminate <args>` (stdout and stderr piped), without the developer's LUMINATE_* variables.
fn luminate(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luminate"));
    cmd.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `luminate backup --server URL -o DIR [extra]`.
fn backup(server: &Luminate, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "backup",
        "--server",
        &server.base,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    luminate(&args)
}

/// `luminate restore BACKUP DATA_DIR`.
fn restore(backup: &Path, data_dir: &Path) -> Run {
    luminate(&[
        "restore",
        backup.to_str().unwrap(),
        data_dir.to_str().unwrap(),
    ])
}

/// A server that flushes its head every 2 000 points (each freeze rolls the WAL to a new segment): a
/// backup under load meets flushes, segment deletions and compactions (a partition of 4 parts is
/// merged).
fn busy_server(dir: &Path) -> Luminate {
    Launch::new(dir)
        .env("LUMINATE__STORAGE__EMBEDDED__HEAD_MAX_POINTS", "2000")
        .start()
}

/// `BEFORE_POINTS` points of `load` from `t0`, a second apart, over 40 customers and 4 regions; a
/// deleted metric; a retention override; a dashboard.
fn write_before(server: &Luminate, t0: i64) {
    for b in 0..BEFORE_POINTS / BATCH {
        let points: Vec<Value> = (0..BATCH)
            .map(|i| {
                let n = b * BATCH + i;
                let customer = format!("c{}", n % 40);
                let region = format!("r{}", n % 4);
                let dims = [("customer", customer.as_str()), ("region", region.as_str())];
                point("load", t0 + 1_000 * n, (n % 97) as f64 + 0.5, &dims)
            })
            .collect();
        assert_eq!(server.write(&points).0, 200);
    }
    let gone: Vec<Value> = (0..100)
        .map(|i| point("gone", t0 + 1_000 * i, i as f64, &[("k", "v")]))
        .collect();
    assert_eq!(server.write(&gone).0, 200);
    let (status, body) = server.delete(&format!(
        "/api/v1/admin/metrics/gone?before={}",
        t0 + 50_000
    ));
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.post_json(
        "/api/v1/admin/retention",
        &json!({"metric_name": "load", "retention_days": 30}),
    );
    assert_eq!(status, 200, "{body}");
    let dashboard = json!({"id": "ops", "title": "Ops", "tags": ["prod"],
        "timeRange": {"relative": "1h"},
        "panels": [{"id": "p", "title": "load", "type": "timeseries",
            "gridPosition": {"x": 0, "y": 0, "w": 24, "h": 6},
            "query": {"queryType": "aggregate", "metricName": "load", "aggregation": "p95"}}]});
    let (status, body) = server.post_json("/api/v1/dashboards", &dashboard);
    assert_eq!(status, 201, "{body}");
}

/// The answers over `[t0, t1)` that a restored server must give exactly, without their timings.
fn answers(server: &Luminate, t0: i64, t1: i64) -> Vec<Value> {
    let range = json!({"start": t0, "end": t1});
    let queries = [
        json!({"queryType": "aggregate", "metricName": "load", "aggregation": "count",
               "groupBy": ["customer"], "timeRange": range}),
        json!({"queryType": "aggregate", "metricName": "load", "aggregation": "sum",
               "groupBy": ["region"], "timeRange": range}),
        json!({"queryType": "aggregate", "metricName": "load", "aggregation": "p95",
               "groupBy": ["customer"], "timeRange": range, "limit": 1000}),
        json!({"queryType": "aggregate", "metricName": "load", "aggregation": "avg",
               "groupBy": ["region"], "interval": "15m", "timeRange": range, "limit": 1000}),
        json!({"queryType": "range", "metricName": "load", "filters": {"customer": "c7"},
               "timeRange": range}),
        json!({"queryType": "aggregate", "metricName": "gone", "aggregation": "count",
               "timeRange": range}),
    ];
    let mut out: Vec<Value> = queries
        .iter()
        .map(|q| {
            let mut answer = server.query(q);
            answer.as_object_mut().unwrap().remove("executionTimeMs");
            answer
        })
        .collect();
    let (status, dashboard) = server.get("/api/v1/dashboards/ops");
    assert_eq!(status, 200, "{dashboard}");
    out.push(dashboard);
    out
}

/// The writers' tally: batches acknowledged per writer.
type Acked = Arc<Vec<AtomicU64>>;

/// Writers that write `live` from `t0` on, batch after batch, each batch's points carrying the
/// batch's number as value, until `stop`.
fn start_writers(
    base: &str,
    writers: usize,
    t0: i64,
    stop: &Arc<AtomicBool>,
) -> (Acked, Vec<std::thread::JoinHandle<()>>) {
    let acked: Acked = Arc::new((0..writers).map(|_| AtomicU64::new(0)).collect());
    let handles = (0..writers)
        .map(|w| {
            let (acked, stop, client) = (Arc::clone(&acked), Arc::clone(stop), Client::at(base));
            std::thread::spawn(move || {
                let writer = format!("w{w}");
                let mut batch = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    let points: Vec<Value> = (0..100)
                        .map(|i| {
                            let t = t0 + (batch * 100 + i) * 10 + w as i64;
                            point("live", t, batch as f64, &[("writer", writer.as_str())])
                        })
                        .collect();
                    let reply = client.send(
                        "POST",
                        "/api/v1/write",
                        None,
                        Some(&json!({"metrics": points})),
                    );
                    assert_eq!(reply.status, 200, "{reply:?}");
                    acked[w].store(batch as u64 + 1, Ordering::SeqCst);
                    batch += 1;
                }
            })
        })
        .collect();
    (acked, handles)
}

/// Per writer of `live`: (points, sum of values) in `server`.
fn live_tally(server: &Luminate, writers: usize) -> Vec<(u64, f64)> {
    let range = json!({"start": now_ms() - 2 * HOUR, "end": now_ms() + HOUR});
    let answer = server.query(&json!({"queryType": "aggregate", "metricName": "live",
        "aggregation": "sum", "groupBy": ["writer"], "timeRange": range}));
    let mut by_writer = vec![(0, 0.0); writers];
    for group in answer["results"].as_array().unwrap() {
        let writer = group["groupKey"]["writer"].as_str().unwrap();
        let w: usize = writer[1..].parse().unwrap();
        by_writer[w] = (
            group["count"].as_u64().unwrap(),
            group["value"].as_f64().unwrap(),
        );
    }
    by_writer
}

#[test]
fn a_backup_under_write_load_restores_with_identical_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = busy_server(&dir.path().join("data"));
    let t0 = now_ms() - 5 * HOUR;
    let t1 = t0 + 1_000 * BEFORE_POINTS;
    write_before(&server, t0);
    let expected = answers(&server, t0, t1);

    let stop = Arc::new(AtomicBool::new(false));
    let writers = 3;
    let (acked, handles) = start_writers(&server.base, writers, now_ms() - HOUR, &stop);
    assert!(eventually(Duration::from_secs(30), || acked
        .iter()
        .all(|a| a.load(Ordering::SeqCst) >= 5)));
    // Flushes forced all along, besides those the load makes.
    let flusher = {
        let (stop, client) = (Arc::clone(&stop), Client::at(&server.base));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let reply = client.send("POST", "/api/v1/admin/flush", None, None);
                assert_eq!(reply.status, 200, "{reply:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let acked_before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let out = dir.path().join("backup");
    let run = backup(&server, &out, &[]);
    let acked_after: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    assert_eq!(run.code, 0, "{run:?}");
    // Piped: nothing printed.
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    stop.store(true, Ordering::SeqCst);
    // The writers went on while the backup ran.
    assert!(
        acked_after.iter().zip(&acked_before).any(|(a, b)| a > b),
        "{acked_before:?} -> {acked_after:?}"
    );
    for handle in handles {
        handle.join().unwrap();
    }
    flusher.join().unwrap();
    // Released: nothing held, nothing pinned left in the data directory.
    let (_, held) = server.get("/api/v1/admin/backups");
    assert_eq!(held, json!({"backups": []}));
    assert!(eventually(Duration::from_secs(10), || !dir
        .path()
        .join("data/backups")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())));

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("backup.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "luminate-backup");
    assert_eq!(manifest["backend"], "embedded");
    let paths: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for prefix in [
        "MANIFEST",
        "parts/",
        "wal/",
        "series/",
        "retention.json",
        "dashboards/",
    ] {
        assert!(
            paths.iter().any(|p| p.starts_with(prefix)),
            "{prefix} in {paths:?}"
        );
    }

    let restored_dir = dir.path().join("restored");
    let run = restore(&out, &restored_dir);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let restored = Launch::new(&restored_dir).start();
    assert_eq!(answers(&restored, t0, t1), expected);
    // Every batch acknowledged before the backup began is there; each writer's batches form a prefix
    // (batch k's points have the value k) of what it sent, whole batches only.
    let live = live_tally(&restored, writers);
    eprintln!(
        "batches per writer: acknowledged before the backup {acked_before:?}, when it ended \
         {acked_after:?}, restored {:?}; {} files",
        live.iter().map(|l| l.0 / 100).collect::<Vec<_>>(),
        paths.len()
    );
    for (w, &(points, sum)) in live.iter().enumerate() {
        assert_eq!(points % 100, 0, "writer {w}: {points} points");
        let batches = points / 100;
        assert!(
            batches >= acked_before[w],
            "writer {w}: {batches} < {}",
            acked_before[w]
        );
        assert!(batches <= acked[w].load(Ordering::SeqCst) + 1);
        let prefix_sum = 100.0 * (batches * batches.saturating_sub(1) / 2) as f64;
        assert_eq!(sum, prefix_sum, "writer {w}");
    }
}

/// A file of a snapshot, downloaded with `GET …/files/{path}`: status, bytes and the CRC header.
fn download(base: &str, id: &str, path: &str) -> (u16, Vec<u8>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(format!("{base}/api/v1/admin/backups/{id}/files/{path}"))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    let crc = response
        .headers()
        .get("x-luminate-crc32c")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    (status, bytes, crc)
}

#[test]
fn flushes_compactions_and_deletes_while_a_snapshot_is_held_do_not_change_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = busy_server(&data);
    let t0 = now_ms() - 5 * HOUR;
    let t1 = t0 + 1_000 * BEFORE_POINTS;
    write_before(&server, t0);
    let expected = answers(&server, t0, t1);

    let (status, snapshot) = server.post_json("/api/v1/admin/backups", &json!({}));
    assert_eq!(status, 201, "{snapshot}");
    let id = snapshot["id"].as_str().unwrap();
    let files = snapshot["files"].as_array().unwrap().clone();
    let parts: Vec<&str> = files
        .iter()
        .filter_map(|f| f["path"].as_str().filter(|p| p.starts_with("parts/")))
        .collect();
    assert!(parts.len() >= 2, "{parts:?}");
    // Everything changes on disk: more points, flushes, every partition merged into one part (the
    // snapshot's parts unlinked), a delete, WAL segments replayed and removed.
    for round in 0..3 {
        let points: Vec<Value> = (0..3_000)
            .map(|i| point("load", t0 + 500 + 4_000 * i, 1.0, &[("customer", "late")]))
            .collect();
        for chunk in points.chunks(1_000) {
            assert_eq!(server.write(chunk).0, 200);
        }
        let (status, body) = server.post_json("/api/v1/admin/flush", &json!({}));
        assert_eq!(status, 200, "{round}: {body}");
    }
    let (status, _) = server.delete(&format!(
        "/api/v1/admin/metrics/load?before={}",
        t0 + 60_000
    ));
    assert_eq!(status, 200);
    let (status, _) = server.post_json("/api/v1/admin/flush", &json!({}));
    assert_eq!(status, 200);
    assert!(
        parts.iter().all(|p| !data.join(p).exists()),
        "compaction replaced every part the snapshot holds"
    );
    assert_ne!(answers(&server, t0, t1), expected);

    // The snapshot still serves its bytes: written down as `luminate backup` does, they restore.
    let out = dir.path().join("backup");
    for file in &files {
        let path = file["path"].as_str().unwrap();
        let (status, bytes, crc) = download(&server.base, id, path);
        assert_eq!(status, 200, "{path}");
        assert_eq!(bytes.len() as u64, file["size"].as_u64().unwrap(), "{path}");
        assert_eq!(crc, file["crc32c"].as_str().unwrap(), "{path}");
        assert_eq!(format!("{:08x}", crc32c::crc32c(&bytes)), crc, "{path}");
        let to = out.join("data").join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    let manifest = json!({"format": "luminate-backup", "version": 1, "snapshot": id,
        "backend": "embedded", "server": server.base, "luminate_version": "test",
        "created_at": "2026-01-01T00:00:00Z", "total_bytes": snapshot["total_bytes"],
        "files": files});
    std::fs::write(out.join("backup.json"), manifest.to_string()).unwrap();
    let (status, body) = server.delete(&format!("/api/v1/admin/backups/{id}"));
    assert_eq!((status, &body), (200, &json!({"id": id, "released": true})));
    assert!(eventually(Duration::from_secs(10), || !data
        .join("backups")
        .join(id)
        .exists()));
    let (status, body) = server.delete(&format!("/api/v1/admin/backups/{id}"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );

    let restored_dir = dir.path().join("restored");
    let run = restore(&out, &restored_dir);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        answers(&Launch::new(&restored_dir).start(), t0, t1),
        expected
    );
}

/// A small server, its backup taken with the CLI: (dir, server, backup directory).
fn backed_up() -> (tempfile::TempDir, Luminate, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(&dir.path().join("data")).start();
    let points: Vec<Value> = (0..200)
        .map(|i| point("m", now_ms() - HOUR + i, i as f64, &[("k", "v")]))
        .collect();
    assert_eq!(server.write(&points).0, 200);
    let (status, _) = server.post_json("/api/v1/admin/flush", &json!({}));
    assert_eq!(status, 200);
    assert_eq!(server.write(&points[..10]).0, 200);
    let out = dir.path().join("backup");
    let run = backup(&server, &out, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    (dir, server, out)
}

#[test]
fn restore_refuses_a_directory_that_is_not_empty() {
    let (dir, server, out) = backed_up();
    let target = dir.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("keep.txt"), b"mine").unwrap();
    let run = restore(&out, &target);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
    assert!(run.stderr.contains("Nothing was written"), "{}", run.stderr);
    let names: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    // The backup's own output directory is refused the same way by a second backup.
    let again = backup(&server, &out, &[]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("is not empty"), "{}", again.stderr);
}

#[test]
fn restore_refuses_a_tampered_or_unfinished_backup() {
    let (dir, _server, out) = backed_up();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("backup.json")).unwrap()).unwrap();
    let part = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .find(|p| p.starts_with("parts/"))
        .unwrap()
        .to_owned();
    let file = out.join("data").join(&part);
    let original = std::fs::read(&file).unwrap();

    // One byte flipped.
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x01;
    std::fs::write(&file, &flipped).unwrap();
    let target = dir.path().join("target");
    let run = restore(&out, &target);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(&part), "{}", run.stderr);
    assert!(run.stderr.contains("CRC-32C"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert!(!target.exists());

    // Cut short.
    std::fs::write(&file, &original[..original.len() - 1]).unwrap();
    let run = restore(&out, &target);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("bytes where"), "{}", run.stderr);
    assert!(!target.exists());

    // Unfinished: the files are there, the backup's manifest is not.
    std::fs::write(&file, &original).unwrap();
    std::fs::rename(out.join("backup.json"), dir.path().join("aside.json")).unwrap();
    let run = restore(&out, &target);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("did not finish"), "{}", run.stderr);
    assert!(!target.exists());

    // Put back whole, it restores.
    std::fs::rename(dir.path().join("aside.json"), out.join("backup.json")).unwrap();
    let run = restore(&out, &target);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(Launch::new(&target).start().count("m"), 210);
}

#[test]
fn backups_need_the_admin_scope() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Launch::new(&dir.path().join("data"))).start();
    let client = Client::of(&server);
    let reader = token("acme", &["read", "write"]);
    let admin = token("acme", &["admin"]);
    let none = client.send("POST", "/api/v1/admin/backups", None, None);
    assert_eq!((none.status, none.code()), (401, "UNAUTHORIZED"));
    let bearer = format!("Bearer {reader}");
    for (method, path) in [
        ("POST", "/api/v1/admin/backups"),
        ("GET", "/api/v1/admin/backups"),
        ("GET", "/api/v1/admin/backups/x/files/MANIFEST"),
        ("DELETE", "/api/v1/admin/backups/x"),
    ] {
        let reply = client.send(method, path, Some(&bearer), None);
        assert_eq!(
            (reply.status, reply.code()),
            (403, "FORBIDDEN"),
            "{method} {path}"
        );
    }
    let out = dir.path().join("backup");
    let run = backup(&server, &out, &["--token", &reader]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("403 FORBIDDEN"), "{}", run.stderr);
    assert!(!out.join("backup.json").exists());
    let run = backup(&server, &out, &["--token", &admin, "--ttl", "soon"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--ttl"), "{}", run.stderr);

    // The refused backup wrote nothing: the same directory takes the next one.
    let run = backup(&server, &out, &["--token", &admin]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(out.join("backup.json").is_file());
}

#[test]
fn a_snapshot_whose_lease_runs_out_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Launch::new(&data).start();
    assert_eq!(
        server.write(&[point("m", now_ms(), 1.0, &[("k", "v")])]).0,
        200
    );
    let (status, snapshot) = server.post_raw("/api/v1/admin/backups?ttl=1s", &[], Vec::new());
    assert_eq!(status, 201, "{snapshot}");
    assert_eq!(snapshot["ttl_seconds"], 1);
    let id = snapshot["id"].as_str().unwrap().to_owned();
    assert!(data.join("backups").join(&id).is_dir());
    let (_, held) = server.get("/api/v1/admin/backups");
    assert_eq!(held["backups"][0]["id"], id.as_str());
    // Nobody downloads it: it is released within about a second, its links removed.
    assert!(eventually(Duration::from_secs(10), || !data
        .join("backups")
        .join(&id)
        .exists()));
    let (_, held) = server.get("/api/v1/admin/backups");
    assert_eq!(held, json!({"backups": []}));
    let (status, body) = server.get(&format!("/api/v1/admin/backups/{id}/files/MANIFEST"));
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // A bad lease is refused; a snapshot held when the server dies is gone after its restart.
    let (status, body) = server.post_raw("/api/v1/admin/backups?ttl=2d", &[], Vec::new());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
    let (status, snapshot) = server.post_raw("/api/v1/admin/backups", &[], Vec::new());
    assert_eq!(status, 201);
    let id = snapshot["id"].as_str().unwrap().to_owned();
    assert!(data.join("backups").join(&id).is_dir());
    server.kill9();
    let restarted = Launch::new(&data).start();
    assert!(!data.join("backups").exists());
    assert_eq!(restarted.count("m"), 1);
}

/// On a terminal (a pseudo-terminal from util-linux's `script`) the backup draws its progress —
/// bytes and files — on stderr.
#[test]
fn progress_is_drawn_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(&dir.path().join("data")).start();
    assert_eq!(
        server.write(&[point("m", now_ms(), 1.0, &[("k", "v")])]).0,
        200
    );
    let out = dir.path().join("backup");
    let command = format!(
        "{} backup --server {} -o {}",
        env!("CARGO_BIN_EXE_luminate"),
        server.base,
        out.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &command, "/dev/null"]);
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            cmd.env_remove(key);
        }
    }
    let run = cmd.stdin(Stdio::null()).output().unwrap();
    let terminal = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{terminal}");
    assert!(terminal.contains("files, "), "{terminal}");
    assert!(
        terminal.contains(&format!("in {}", out.display())),
        "{terminal}"
    );
}

/// The ClickHouse backend keeps nothing a snapshot could pin: the route answers `400 UNSUPPORTED`
/// pointing at ClickHouse's own tools, and `luminate backup` says so.
#[cfg(feature = "clickhouse")]
#[test]
fn the_clickhouse_backend_refuses_with_a_pointer_to_its_own_tools() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::Backend::Clickhouse
        .launch(&dir.path().join("data"))
        .start();
    let (status, body) = server.post_raw("/api/v1/admin/backups", &[], Vec::new());
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "UNSUPPORTED");
    assert_eq!(body["error"]["details"]["backend"], "clickhouse");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("FREEZE"), "{message}");
    assert!(message.contains("clickhouse-backup"), "{message}");
    let out = dir.path().join("backup");
    let run = backup(&server, &out, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("400 UNSUPPORTED"), "{}", run.stderr);
    assert!(!out.join("backup.json").exists());
}
