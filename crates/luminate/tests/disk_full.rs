//! A full disk, through the real binary on a real full file system: the test mounts a small tmpfs
//! (it runs as root, as CI does; the mount is undone by a guard, also when the test fails), puts the
//! data directory and a filler file on it, and writes until the server answers `503`. Then: every
//! write, delete, retention change and flush is refused with `503 STORAGE_UNAVAILABLE` naming the disk
//! (writes with `Retry-After`), while queries and discovery answer exactly what was acknowledged and
//! health says `unhealthy` with the space left. Deleting the filler frees space: writes resume in the
//! same process, and a restart (after `kill -9`, then after SIGTERM, which exits 0) finds every
//! acknowledged point exactly once and nothing of a refused write.
//!
//! Also: an engine poisoned by a failure it cannot recover from (the next WAL segment's name taken)
//! still stops cleanly on SIGTERM — exit 0, with the reason logged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Launch, Luminate, eventually, now_ms, point};
use serde_json::{Value, json};

/// Size of the test's file system.
const TMPFS_BYTES: u64 = 8 << 20;
/// The filler written first; deleting it frees this much.
const FILLER_BYTES: usize = 4 << 20;
/// Points per batch while filling the disk.
const BATCH: usize = 500;

/// A tmpfs of `size` bytes mounted at a fresh directory under a temp dir; unmounted on drop.
struct Tmpfs {
    mount_point: PathBuf,
    // Removed after the unmount (fields drop in order).
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: u64) -> Self {
        let parent = tempfile::tempdir().unwrap();
        let mount_point = parent.path().join("disk");
        std::fs::create_dir(&mount_point).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            mount_point,
            _parent: parent,
        }
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount_point)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a server that outlived a panic): detach it now, freed when the last user goes.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mount_point)
                .status();
        }
    }
}

/// Writes `bytes` to `path` (or until the disk is full when `None`); returns the bytes written.
fn fill(path: &Path, bytes: Option<usize>) -> usize {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0x55u8; 4096];
    let mut written = 0;
    while bytes.is_none_or(|b| written < b) {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    file.sync_all().unwrap();
    written
}

/// A response with its headers.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

fn send(server: &Luminate, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = server.url(path);
    let response = match (method, body) {
        ("POST", Some(body)) => agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes()),
        ("POST", None) => agent.post(&url).send_empty(),
        ("DELETE", _) => agent.delete(&url).call(),
        _ => agent.get(&url).call(),
    };
    let mut response = response.expect("HTTP exchange");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        retry_after,
        body,
    }
}

/// The writes of the test: batch `b` holds points of metric `disk` with dimension `batch=b<b>`, one
/// per series `s<i>`, all at the batch's own timestamp (so every point is distinct).
struct Writer {
    base: i64,
    next: usize,
    /// Acknowledged batches and their sizes.
    acked: BTreeMap<String, u64>,
    /// Batches refused with 503.
    refused: Vec<String>,
}

impl Writer {
    fn new() -> Self {
        Self {
            base: now_ms() - 600_000,
            next: 0,
            acked: BTreeMap::new(),
            refused: Vec::new(),
        }
    }

    /// Sends the next batch of `size` points; returns the reply (recording it).
    fn write(&mut self, server: &Luminate, size: usize) -> Reply {
        let name = format!("b{:05}", self.next);
        let timestamp = self.base + self.next as i64;
        self.next += 1;
        let points: Vec<Value> = (0..size)
            .map(|i| {
                let series = format!("s{i}");
                point(
                    "disk",
                    timestamp,
                    i as f64,
                    &[("batch", name.as_str()), ("series", series.as_str())],
                )
            })
            .collect();
        let reply = send(
            server,
            "POST",
            "/api/v1/write",
            Some(&json!({ "metrics": points })),
        );
        match reply.status {
            200 => {
                self.acked.insert(name, size as u64);
            }
            503 => self.refused.push(name),
            other => panic!("write answered {other}: {}", reply.body),
        }
        reply
    }

    /// Sends batches of `size` until one is refused; returns the refusal.
    fn until_refused(&mut self, server: &Luminate, size: usize) -> Reply {
        for _ in 0..100_000 {
            let reply = self.write(server, size);
            if reply.status == 503 {
                return reply;
            }
        }
        panic!("the disk never filled");
    }

    fn acked_points(&self) -> u64 {
        self.acked.values().sum()
    }
}

/// Stored points of `disk` per batch.
fn stored_by_batch(server: &Luminate) -> BTreeMap<String, u64> {
    let body = server.query(&json!({
        "queryType": "aggregate", "metricName": "disk", "aggregation": "count",
        "groupBy": ["batch"], "timeRange": {"relative": "1h"}, "limit": 1000,
    }));
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|g| {
            (
                g["groupKey"]["batch"].as_str().unwrap().to_owned(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every acknowledged batch stored whole and once, nothing of a refused one.
fn assert_exactly_the_acknowledged(server: &Luminate, writer: &Writer) {
    let stored = stored_by_batch(server);
    assert_eq!(stored, writer.acked, "stored points per batch");
    for refused in &writer.refused {
        assert!(!stored.contains_key(refused), "refused {refused} is stored");
    }
}

fn assert_refused_naming_the_disk(reply: &Reply, disk: &Path, what: &str) {
    assert_eq!(reply.status, 503, "{what}: {}", reply.body);
    assert_eq!(
        reply.body["error"]["code"], "STORAGE_UNAVAILABLE",
        "{what}: {}",
        reply.body
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&disk.display().to_string())
            && message.contains("No space left on device"),
        "{what}: {message}"
    );
}

#[test]
fn a_full_disk_refuses_writes_serves_reads_and_recovers_without_a_restart() {
    let tmpfs = Tmpfs::mount(TMPFS_BYTES);
    let disk = tmpfs.path().to_path_buf();
    let filler = disk.join("filler");
    assert_eq!(fill(&filler, Some(FILLER_BYTES)), FILLER_BYTES);
    let data_dir = disk.join("data");
    let launch = Launch::new(&data_dir);
    let server = launch.start();
    let mut writer = Writer::new();

    // Fill the rest of the disk with writes: the first refusal names the disk and says when to retry.
    let refused = writer.until_refused(&server, BATCH);
    assert!(
        writer.acked.len() > 10,
        "{} batches fit",
        writer.acked.len()
    );
    assert_refused_naming_the_disk(&refused, &data_dir.join("wal"), "write");
    assert_eq!(refused.retry_after.as_deref(), Some("5"));
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "bytes free of {TMPFS_BYTES} on the file system holding {}",
            data_dir.join("wal").display()
        )),
        "{message}"
    );
    // Take the last free page too, then the WAL's last partial page with one-point writes: from now on
    // nothing fits anywhere, whatever its size.
    fill(&disk.join("top-up"), None);
    writer.until_refused(&server, 1);

    // Reads answer exactly what was acknowledged.
    assert_exactly_the_acknowledged(&server, &writer);
    assert_eq!(server.count("disk"), writer.acked_points());
    let (status, metrics) = server.get("/api/v1/metrics");
    assert_eq!((status, metrics), (200, json!({"metrics": ["disk"]})));
    let (status, keys) = server.get("/api/v1/metrics/disk/dimensions");
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["dimensions"], json!(["batch", "series"]));
    let (status, values) = server.get("/api/v1/metrics/disk/dimensions/series/values?prefix=s0");
    assert_eq!(status, 200, "{values}");
    assert_eq!(
        values["values"],
        json!([{"value": "s0", "points": writer.acked.len()}])
    );

    // Health is unhealthy, with the space left.
    let health = send(&server, "GET", "/api/v1/health", None);
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.body["status"], "unhealthy");
    let error = health.body["storage"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("disk full: write stalled for want of space")
            && error.contains("writes that do not fit are refused")
            && error.contains(&format!("bytes free of {TMPFS_BYTES}")),
        "{error}"
    );
    assert_eq!(health.body["checks"]["disk_space"]["status"], "fail");
    // Liveness stays up: a restart frees no space (the pod would only replay its WAL again).
    let live = send(&server, "GET", "/api/v1/health/live", None);
    assert_eq!(
        (live.status, live.body.clone()),
        (200, json!({"status": "alive"}))
    );

    // Admin routes that need the disk are refused the same way: 503, not 500.
    let long_name = format!("m{}", "x".repeat(250));
    let delete = send(
        &server,
        "DELETE",
        &format!("/api/v1/admin/metrics/{long_name}?before={}", now_ms()),
        None,
    );
    assert_refused_naming_the_disk(&delete, &data_dir.join("wal"), "delete");
    let retention = send(
        &server,
        "POST",
        "/api/v1/admin/retention",
        Some(&json!({"metric_name": "disk", "retention_days": 3})),
    );
    assert_refused_naming_the_disk(&retention, &data_dir, "retention");
    let flush = send(&server, "POST", "/api/v1/admin/flush", None);
    assert_refused_naming_the_disk(&flush, &data_dir.join("wal"), "flush");
    assert!(!data_dir.join("retention.json.tmp").exists());
    assert_exactly_the_acknowledged(&server, &writer);

    // Free space: writes, admin routes and health recover in the same process.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(disk.join("top-up")).unwrap();
    assert_eq!(writer.write(&server, BATCH).status, 200);
    assert!(
        eventually(Duration::from_secs(10), || send(
            &server,
            "GET",
            "/api/v1/health",
            None
        )
        .status
            == 200),
        "health did not recover: {}",
        send(&server, "GET", "/api/v1/health", None).body
    );
    let retention = send(
        &server,
        "POST",
        "/api/v1/admin/retention",
        Some(&json!({"metric_name": "disk", "retention_days": 3})),
    );
    assert_eq!(retention.status, 200, "{}", retention.body);
    let flush = send(&server, "POST", "/api/v1/admin/flush", None);
    assert_eq!(flush.status, 200, "{}", flush.body);
    assert_eq!(writer.write(&server, BATCH).status, 200);
    assert_exactly_the_acknowledged(&server, &writer);
    assert!(
        server.output().contains("space available again: resumed"),
        "{}",
        server.output()
    );

    // A crash, then a clean stop: every acknowledged point once, nothing of a refused write.
    server.kill9();
    let server = launch.start();
    assert_exactly_the_acknowledged(&server, &writer);
    assert_eq!(writer.write(&server, BATCH).status, 200);
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
    let server = launch.start();
    assert_exactly_the_acknowledged(&server, &writer);
    assert_eq!(server.count("disk"), writer.acked_points());
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn a_poisoned_engine_stops_cleanly_on_sigterm_with_the_reason_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // The smallest segment allowed, so that the test's writes make the WAL roll.
    let launch =
        Launch::new(&data_dir).env("LUMINATE__STORAGE__EMBEDDED__WAL_SEGMENT_SIZE", "1048576");
    let server = launch.start();
    let segment = data_dir.join("wal").join("00000001.wal");
    let mut writer = Writer::new();
    while std::fs::metadata(&segment).unwrap().len() < 1 << 20 {
        assert_eq!(writer.write(&server, 5000).status, 200);
    }
    // The next segment's name is taken by a directory: rolling to it fails, and no retry mends that.
    std::fs::create_dir(data_dir.join("wal").join("00000002.wal")).unwrap();
    let reply = writer.write(&server, 1);
    assert_eq!(reply.status, 503, "{}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("poisoned"), "{message}");
    assert_eq!(reply.retry_after, None);
    assert_exactly_the_acknowledged(&server, &writer);
    // Only a restart recovers a poisoned engine: liveness fails, naming why.
    let live = send(&server, "GET", "/api/v1/health/live", None);
    assert_eq!(live.status, 503, "{}", live.body);
    assert_eq!(live.body["status"], "restart_needed");
    let reason = live.body["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("engine is poisoned after a failed write or fsync: ")
            && reason.contains("00000002.wal"),
        "{reason}"
    );

    server.signal("TERM");
    assert!(
        eventually(Duration::from_secs(30), || server
            .output()
            .contains("closing a poisoned engine")),
        "{}",
        server.output()
    );
    assert_eq!(server.wait().code(), Some(0));
}
