//! `GET /api/v1/health` of the real binary, check by check: each backend lists exactly its checks
//! (`storage`, `disk_space`, `wal_writable` on the embedded engine; `storage`, `clickhouse_reachable` on
//! ClickHouse), all `pass` on a healthy server; a WAL directory broken while the server runs fails
//! `wal_writable` naming the path (503); a disk floor above the free space makes `disk_space` warn with
//! the numbers while the server stays ready (200, `degraded`); a stopped ClickHouse fails
//! `clickhouse_reachable` naming its address and the check recovers when it restarts; a ClickHouse that
//! was down at start-up is reported with the reason.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use common::{Launch, Luminate};
use serde_json::Value;

const EMBEDDED_CHECKS: [&str; 4] = ["storage", "disk_space", "wal_writable", "parts_intact"];
#[cfg(feature = "clickhouse")]
const CLICKHOUSE_CHECKS: [&str; 2] = ["storage", "clickhouse_reachable"];

/// The health answer, after asserting that it lists exactly `names`, in that order, each with a status
/// and a time.
fn health_with_checks(server: &Luminate, names: &[&str]) -> (u16, Value) {
    let (status, health) = server.get("/api/v1/health");
    let checks = health["checks"].as_object().unwrap();
    assert_eq!(
        checks.keys().map(String::as_str).collect::<Vec<_>>(),
        names,
        "{health}"
    );
    for (name, check) in checks {
        assert!(
            ["pass", "warn", "fail"].contains(&check["status"].as_str().unwrap()),
            "{name}: {check}"
        );
        assert!(check["duration_ms"].is_u64(), "{name}: {check}");
    }
    (status, health)
}

/// Asserts 200 `healthy` with every check of `names` passing.
fn assert_all_pass(server: &Luminate, names: &[&str]) -> Value {
    let (status, health) = health_with_checks(server, names);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy", "{health}");
    for name in names {
        assert_eq!(health["checks"][name]["status"], "pass", "{health}");
    }
    health
}

/// A check's message.
fn message<'a>(health: &'a Value, check: &str) -> &'a str {
    health["checks"][check]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{check} has no message: {health}"))
}

#[test]
fn embedded_healthy_server_passes_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let health = assert_all_pass(&server, &EMBEDDED_CHECKS);
    let wal = dir.path().join("wal");
    assert_eq!(
        message(&health, "wal_writable"),
        format!(
            "created, wrote, fsynced and removed a file in {}",
            wal.display()
        )
    );
    let disk = message(&health, "disk_space");
    assert!(
        disk.contains(&format!(
            "available on the filesystem holding {}; warns below health.min_free_disk_bytes of 0 B \
             (0 bytes) or health.min_free_disk_ratio of 0.0%",
            dir.path().display()
        )),
        "{disk}"
    );
    assert!(!wal.join("health.probe").exists());
}

#[test]
fn embedded_wal_directory_broken_while_running_fails_wal_writable_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    assert_all_pass(&server, &EMBEDDED_CHECKS);

    // Root ignores permission bits, so break the directory for everyone: a plain file in its place.
    let wal = dir.path().join("wal");
    std::fs::remove_dir_all(&wal).unwrap();
    std::fs::write(&wal, b"not a directory").unwrap();
    let (status, health) = health_with_checks(&server, &EMBEDDED_CHECKS);
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["checks"]["wal_writable"]["status"], "fail");
    assert_eq!(
        message(&health, "wal_writable"),
        format!(
            "create health probe file {}: Not a directory (os error 20)",
            wal.join("health.probe").display()
        )
    );
    // Only the WAL is broken: the other checks still pass.
    assert_eq!(health["checks"]["storage"]["status"], "pass", "{health}");
    assert_eq!(health["checks"]["disk_space"]["status"], "pass", "{health}");

    // Repaired while running: healthy again, with nothing remembered.
    std::fs::remove_file(&wal).unwrap();
    std::fs::create_dir(&wal).unwrap();
    assert_all_pass(&server, &EMBEDDED_CHECKS);
}

#[test]
fn embedded_disk_floor_above_the_free_space_warns_with_the_numbers_and_stays_ready() {
    let dir = tempfile::tempdir().unwrap();
    // 1 PiB: more than any test machine has free.
    let server = Launch::new(dir.path())
        .env("LUMINATE_HEALTH_MIN_FREE_DISK_BYTES", "1125899906842624")
        .start();
    let (status, health) = health_with_checks(&server, &EMBEDDED_CHECKS);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["disk_space"]["status"], "warn");
    let disk = message(&health, "disk_space");
    let holding = format!(
        " available on the filesystem holding {}: below health.min_free_disk_bytes of 1.0 PiB \
         (1125899906842624 bytes)",
        dir.path().display()
    );
    assert!(disk.ends_with(&holding), "{disk}");
    // The numbers: "<human> (<bytes> bytes, <share>%) of <human>", the bytes being what statvfs says.
    let bytes: u64 = disk
        .split(" (")
        .nth(1)
        .and_then(|rest| rest.split(" bytes, ").next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > 0 && bytes < 1 << 50, "{disk}");
    assert!(disk.contains("%) of "), "{disk}");
    for name in ["storage", "wal_writable"] {
        assert_eq!(health["checks"][name]["status"], "pass", "{health}");
    }

    // The share floor: all of the filesystem.
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_HEALTH_MIN_FREE_DISK_RATIO", "1")
        .start();
    let (status, health) = health_with_checks(&server, &EMBEDDED_CHECKS);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["disk_space"]["status"], "warn");
    let disk = message(&health, "disk_space");
    let holding = format!(
        " available on the filesystem holding {}: below health.min_free_disk_ratio of 100.0%",
        dir.path().display()
    );
    assert!(disk.ends_with(&holding), "{disk}");
}

#[cfg(feature = "clickhouse")]
mod clickhouse {
    use std::time::Duration;

    use luminate_clickhouse::testing::ClickhouseServer;

    use super::common::eventually;
    use super::*;

    #[test]
    fn healthy_clickhouse_passes_every_check() {
        let clickhouse = luminate_clickhouse::testing::shared();
        let dir = tempfile::tempdir().unwrap();
        let server = Launch::new(dir.path())
            .clickhouse(&[&clickhouse.address()], "health_ok")
            .start();
        let health = assert_all_pass(&server, &CLICKHOUSE_CHECKS);
        assert_eq!(
            message(&health, "clickhouse_reachable"),
            format!("SELECT 1 answered by {}", clickhouse.address())
        );
    }

    #[test]
    fn stopped_clickhouse_fails_reachability_naming_the_address_and_recovers() {
        let mut clickhouse = ClickhouseServer::start();
        let address = clickhouse.address();
        let dir = tempfile::tempdir().unwrap();
        let server = Launch::new(dir.path())
            .clickhouse(&[&address], "health_restart")
            .start();
        assert_all_pass(&server, &CLICKHOUSE_CHECKS);

        clickhouse.kill();
        let (status, health) = health_with_checks(&server, &CLICKHOUSE_CHECKS);
        assert_eq!(status, 503, "{health}");
        assert_eq!(health["status"], "unhealthy");
        assert_eq!(health["checks"]["clickhouse_reachable"]["status"], "fail");
        // The first ping may go out on a kept-alive connection the crash cut (broken mid-request);
        // later ones find nothing listening. Both name the address.
        let prefix = "1 of 1 ClickHouse addresses did not answer SELECT 1: ";
        let named = [
            format!("{prefix}cannot connect to ClickHouse at {address}: "),
            format!("{prefix}connection to ClickHouse at {address} failed mid-request: "),
        ];
        let reachable = message(&health, "clickhouse_reachable");
        assert!(
            named.iter().any(|n| reachable.starts_with(n)),
            "{reachable}"
        );
        assert_eq!(health["checks"]["storage"]["status"], "fail", "{health}");
        let (status, health) = health_with_checks(&server, &CLICKHOUSE_CHECKS);
        assert_eq!(status, 503, "{health}");
        let reachable = message(&health, "clickhouse_reachable");
        assert!(reachable.starts_with(&named[0]), "{reachable}");

        clickhouse.start_again();
        assert!(
            eventually(
                Duration::from_secs(15),
                || server.get("/api/v1/health").1["checks"]["clickhouse_reachable"]["status"]
                    == "pass"
            ),
            "no recovery; server output:\n{}",
            server.output()
        );
        // The storage check is the breaker's probe: it follows within a cool-down (500 ms here).
        assert!(
            eventually(Duration::from_secs(15), || server.get("/api/v1/health").0
                == 200),
            "{}",
            server.output()
        );
        assert_all_pass(&server, &CLICKHOUSE_CHECKS);
    }

    #[test]
    fn clickhouse_down_at_start_is_reported_until_it_is_reached() {
        let mut clickhouse = ClickhouseServer::start();
        clickhouse.kill();
        let address = clickhouse.address();
        let dir = tempfile::tempdir().unwrap();
        let server = Launch::new(dir.path())
            .clickhouse(&[&address], "health_late")
            .start();
        let (status, health) = health_with_checks(&server, &CLICKHOUSE_CHECKS);
        assert_eq!(status, 503, "{health}");
        assert_eq!(health["status"], "unhealthy");
        assert_eq!(health["checks"]["clickhouse_reachable"]["status"], "fail");
        let reachable = message(&health, "clickhouse_reachable");
        assert!(
            reachable.starts_with(&format!(
                "ClickHouse at {address} has not been reached since Luminate started (next attempt within 500ms): "
            )),
            "{reachable}"
        );
        assert_eq!(message(&health, "storage"), reachable, "{health}");

        clickhouse.start_again();
        assert!(
            eventually(Duration::from_secs(15), || server.get("/api/v1/health").0
                == 200),
            "no recovery; server output:\n{}",
            server.output()
        );
        assert_all_pass(&server, &CLICKHOUSE_CHECKS);
    }
}
