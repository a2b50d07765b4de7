//! The checks behind `GET /api/v1/health` (CONTRACT §7) and the verdict over them.
//!
//! [`run`] runs the storage's own report (the `storage` check) and every named check the backend offers
//! ([`MetricsStore::checks`]: `disk_space` and `wal_writable` on the embedded engine,
//! `clickhouse_reachable` on ClickHouse) at once, each on a task of its own, timed and bounded by
//! [`CHECK_TIMEOUT`]: a hung backend makes its check fail saying so, and neither hangs the route nor
//! hides the other checks. The verdict: `unhealthy` (503) when a check fails, `degraded` (still 200)
//! when one only warns, else `healthy`.
//!
//! Owns the disk-space policy of the `health` section ([`disk_space`], which the embedded store runs):
//! space below a floor is a `warn`, not a `fail`. Taking a node out of rotation because its disk is
//! filling would not free a byte — its data and its writers stay — and would turn a slow trend into an
//! outage; operators alert on the warning. A filesystem with nothing left is a `fail`: the next write
//! is refused anyway (and the engine's own report says so while it refuses writes; it recovers by
//! itself once space is freed). Renders nothing: the route does.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use luminate_model::MetricsStore;
use luminate_model::store::{CheckOutcome, CheckStatus, HealthStatus, StorageHealth};

use crate::config::HealthConfig;
use crate::disk::{self, DiskSpace};

/// Longest wait for any one check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The name of the check that is the storage's own report ([`MetricsStore::health`]).
pub const STORAGE_CHECK: &str = "storage";
/// The name of the embedded engine's disk-space check.
pub const DISK_SPACE_CHECK: &str = "disk_space";

/// One check, run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Its key in `checks`.
    pub name: &'static str,
    /// What it found.
    pub outcome: CheckOutcome,
    /// How long it took (at most about [`CHECK_TIMEOUT`]).
    pub duration: Duration,
}

/// Everything health reports.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The storage's own report (`storage` in the answer).
    pub storage: StorageHealth,
    /// `storage` first, then the backend's checks in its order.
    pub checks: Vec<CheckReport>,
}

/// The server's health over all checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passes: 200.
    Healthy,
    /// None fails, some warn: still 200 (ready), but an operator should look.
    Degraded,
    /// A check fails: 503.
    Unhealthy,
}

impl Verdict {
    /// How `status` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl HealthReport {
    /// `unhealthy` when any check fails, `degraded` when any warns, else `healthy`.
    pub fn verdict(&self) -> Verdict {
        let any = |status| self.checks.iter().any(|c| c.outcome.status == status);
        if any(CheckStatus::Fail) {
            Verdict::Unhealthy
        } else if any(CheckStatus::Warn) {
            Verdict::Degraded
        } else {
            Verdict::Healthy
        }
    }
}

/// Runs the storage's report and every check of `store` concurrently, each bounded by `timeout`
/// ([`CHECK_TIMEOUT`] for the route).
pub async fn run(store: &Arc<dyn MetricsStore>, timeout: Duration) -> HealthReport {
    let storage = {
        let store = Arc::clone(store);
        tokio::spawn(bounded(timeout, async move { store.health().await }))
    };
    let named: Vec<_> = store
        .checks()
        .into_iter()
        .map(|check| (check.name, tokio::spawn(bounded(timeout, check.probe))))
        .collect();
    let seconds = timeout.as_secs_f64();

    let (storage, storage_took) = match storage.await {
        Ok((Some(health), took)) => (health, took),
        Ok((None, took)) => (
            StorageHealth::unavailable(format!(
                "storage health check did not answer within {seconds}s"
            )),
            took,
        ),
        Err(e) => (
            StorageHealth::unavailable(format!("storage health check failed: {e}")),
            Duration::ZERO,
        ),
    };
    let mut checks = vec![CheckReport {
        name: STORAGE_CHECK,
        outcome: match (&storage.status, &storage.error) {
            (HealthStatus::Healthy, _) => CheckOutcome::pass(),
            (HealthStatus::Unavailable, error) => CheckOutcome::fail(
                error
                    .clone()
                    .unwrap_or_else(|| "the storage is unavailable".into()),
            ),
        },
        duration: storage_took,
    }];
    for (name, task) in named {
        let (outcome, duration) = match task.await {
            Ok((Some(outcome), took)) => (outcome, took),
            Ok((None, took)) => (
                CheckOutcome::fail(format!("{name} check did not answer within {seconds}s")),
                took,
            ),
            Err(e) => (
                CheckOutcome::fail(format!("{name} check failed: {e}")),
                Duration::ZERO,
            ),
        };
        checks.push(CheckReport {
            name,
            outcome,
            duration,
        });
    }
    HealthReport { storage, checks }
}

/// `probe`'s output (`None` past `timeout`) and how long it took.
async fn bounded<T>(timeout: Duration, probe: impl Future<Output = T>) -> (Option<T>, Duration) {
    let started = Instant::now();
    let output = tokio::time::timeout(timeout, probe).await.ok();
    (output, started.elapsed())
}

/// The `disk_space` check of the filesystem holding `data_dir` under the floors of `config` (see the
/// module's doc for why a shortfall warns). Blocks on statvfs(3): run it off the async threads.
pub fn disk_space(data_dir: &Path, config: &HealthConfig) -> CheckOutcome {
    match disk::disk_space(data_dir) {
        Ok(space) => assess(space, data_dir, config),
        Err(e) => CheckOutcome::fail(format!(
            "cannot read the space of the filesystem holding {}: {e}",
            data_dir.display()
        )),
    }
}

/// The verdict on `space`, with the numbers and the floors.
fn assess(space: DiskSpace, data_dir: &Path, config: &HealthConfig) -> CheckOutcome {
    let found = format!(
        "{} ({} bytes, {}) of {} available on the filesystem holding {}",
        human_bytes(space.available_bytes),
        space.available_bytes,
        percent(space.available_ratio()),
        human_bytes(space.total_bytes),
        data_dir.display()
    );
    if space.available_bytes == 0 {
        return CheckOutcome::fail(format!("{found}: the disk is full, writes fail"));
    }
    let bytes_floor = format!(
        "health.min_free_disk_bytes of {} ({} bytes)",
        human_bytes(config.min_free_disk_bytes),
        config.min_free_disk_bytes
    );
    let ratio_floor = format!(
        "health.min_free_disk_ratio of {}",
        percent(config.min_free_disk_ratio)
    );
    let mut below = Vec::new();
    if space.available_bytes < config.min_free_disk_bytes {
        below.push(bytes_floor.as_str());
    }
    if space.available_ratio() < config.min_free_disk_ratio {
        below.push(ratio_floor.as_str());
    }
    if below.is_empty() {
        CheckOutcome::pass().with_message(format!(
            "{found}; warns below {bytes_floor} or {ratio_floor}"
        ))
    } else {
        CheckOutcome::warn(format!("{found}: below {}", below.join(" and ")))
    }
}

/// `12.3%`.
fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `21.8 GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cardinality_guard::CardinalityGuard;
    use crate::storage::EmbeddedStore;
    use crate::testing::MemoryStore;

    const GIB: u64 = 1 << 30;

    fn floors(min_free_disk_bytes: u64, min_free_disk_ratio: f64) -> HealthConfig {
        HealthConfig {
            min_free_disk_bytes,
            min_free_disk_ratio,
        }
    }

    fn space(available_bytes: u64, total_bytes: u64) -> DiskSpace {
        DiskSpace {
            total_bytes,
            available_bytes,
        }
    }

    #[test]
    fn disk_space_passes_above_both_floors_with_the_numbers() {
        let outcome = assess(
            space(30 * GIB, 100 * GIB),
            Path::new("/data"),
            &floors(GIB, 0.05),
        );
        assert_eq!(
            outcome,
            CheckOutcome::pass().with_message(
                "30.0 GiB (32212254720 bytes, 30.0%) of 100.0 GiB available on the filesystem holding \
                 /data; warns below health.min_free_disk_bytes of 1.0 GiB (1073741824 bytes) or \
                 health.min_free_disk_ratio of 5.0%"
                    .into()
            )
        );
    }

    #[test]
    fn disk_space_warns_below_either_floor_naming_it() {
        let dir = Path::new("/data");
        // 4 GiB of 100: below the ratio only.
        assert_eq!(
            assess(space(4 * GIB, 100 * GIB), dir, &floors(GIB, 0.05)),
            CheckOutcome::warn(
                "4.0 GiB (4294967296 bytes, 4.0%) of 100.0 GiB available on the filesystem holding \
                 /data: below health.min_free_disk_ratio of 5.0%"
                    .into()
            )
        );
        // 512 MiB of 2 GiB: below the byte floor only.
        assert_eq!(
            assess(space(GIB / 2, 2 * GIB), dir, &floors(GIB, 0.05)),
            CheckOutcome::warn(
                "512.0 MiB (536870912 bytes, 25.0%) of 2.0 GiB available on the filesystem holding \
                 /data: below health.min_free_disk_bytes of 1.0 GiB (1073741824 bytes)"
                    .into()
            )
        );
        // Both.
        let both = assess(space(GIB / 2, 100 * GIB), dir, &floors(GIB, 0.05));
        assert_eq!(both.status, CheckStatus::Warn);
        assert!(both.message.unwrap().ends_with(
            ": below health.min_free_disk_bytes of 1.0 GiB (1073741824 bytes) and \
                 health.min_free_disk_ratio of 5.0%"
        ));
        // Floors of 0 are off: only a full disk is reported.
        assert_eq!(
            assess(space(1, 100 * GIB), dir, &floors(0, 0.0)).status,
            CheckStatus::Pass
        );
    }

    #[test]
    fn disk_space_fails_when_full_or_unreadable() {
        assert_eq!(
            assess(space(0, 100 * GIB), Path::new("/data"), &floors(0, 0.0)),
            CheckOutcome::fail(
                "0 B (0 bytes, 0.0%) of 100.0 GiB available on the filesystem holding /data: the disk \
                 is full, writes fail"
                    .into()
            )
        );
        assert_eq!(
            disk_space(Path::new("/nonexistent/luminate"), &HealthConfig::default()),
            CheckOutcome::fail(
                "cannot read the space of the filesystem holding /nonexistent/luminate: No such file \
                 or directory (os error 2)"
                    .into()
            )
        );
    }

    #[test]
    fn disk_space_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            disk_space(dir.path(), &floors(0, 0.0)).status,
            CheckStatus::Pass
        );
        let outcome = disk_space(dir.path(), &floors(u64::MAX, 0.0));
        assert_eq!(outcome.status, CheckStatus::Warn);
        assert!(outcome.message.unwrap().ends_with(
            "below health.min_free_disk_bytes of 16.0 EiB (18446744073709551615 bytes)"
        ));
    }

    #[test]
    fn byte_counts_read_in_binary_units() {
        let shown: Vec<String> = [0, 1023, 1024, 1536, 5 * GIB + GIB / 10, u64::MAX]
            .into_iter()
            .map(human_bytes)
            .collect();
        assert_eq!(
            shown,
            ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.1 GiB", "16.0 EiB"]
        );
    }

    fn names(report: &HealthReport) -> Vec<&'static str> {
        report.checks.iter().map(|c| c.name).collect()
    }

    #[tokio::test]
    async fn checks_run_at_once_each_bounded_and_the_worst_decides() {
        let timeout = Duration::from_millis(300);
        let store = MemoryStore::with_checks(vec![
            ("fast", CheckOutcome::pass(), Duration::ZERO),
            (
                "slow",
                CheckOutcome::warn("slow".into()),
                Duration::from_millis(100),
            ),
            ("hung", CheckOutcome::pass(), Duration::from_secs(60)),
        ]);
        let store: Arc<dyn MetricsStore> = Arc::new(store);
        let started = Instant::now();
        let report = run(&store, timeout).await;
        let took = started.elapsed();
        assert_eq!(names(&report), ["storage", "fast", "slow", "hung"]);
        let outcomes: Vec<_> = report.checks.iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            [
                CheckOutcome::pass(),
                CheckOutcome::pass(),
                CheckOutcome::warn("slow".into()),
                CheckOutcome::fail("hung check did not answer within 0.3s".into()),
            ]
        );
        assert!(report.checks[3].duration >= timeout);
        // The hung check was given up at its bound, not awaited.
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(report.verdict(), Verdict::Unhealthy);
        assert_eq!(report.storage.status, HealthStatus::Healthy);
    }

    #[tokio::test]
    async fn a_warning_degrades_and_only_passes_are_healthy() {
        let warned: Arc<dyn MetricsStore> = Arc::new(MemoryStore::with_checks(vec![(
            "low",
            CheckOutcome::warn("low".into()),
            Duration::ZERO,
        )]));
        assert_eq!(
            run(&warned, CHECK_TIMEOUT).await.verdict(),
            Verdict::Degraded
        );
        let plain: Arc<dyn MetricsStore> = Arc::new(MemoryStore::default());
        let report = run(&plain, CHECK_TIMEOUT).await;
        assert_eq!(names(&report), ["storage"]);
        assert_eq!(report.verdict(), Verdict::Healthy);
    }

    #[tokio::test]
    async fn the_cardinality_guard_forwards_its_stores_checks() {
        let inner: Arc<dyn MetricsStore> = Arc::new(MemoryStore::with_checks(vec![(
            "inner",
            CheckOutcome::fail("down".into()),
            Duration::ZERO,
        )]));
        let guard = crate::storage::forward::Forward::store(CardinalityGuard::new(inner, 10, 2));
        let report = run(&guard, CHECK_TIMEOUT).await;
        assert_eq!(names(&report), ["storage", "inner"]);
        assert_eq!(report.checks[1].outcome, CheckOutcome::fail("down".into()));
        assert_eq!(report.verdict(), Verdict::Unhealthy);
    }

    async fn embedded(dir: &Path, health: HealthConfig) -> Arc<dyn MetricsStore> {
        let config = luminate_engine::EngineConfig::new(dir);
        Arc::new(EmbeddedStore::open(config, health).await.unwrap())
    }

    #[tokio::test]
    async fn the_embedded_store_checks_its_disk_and_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = embedded(dir.path(), floors(0, 0.0)).await;
        let report = run(&store, CHECK_TIMEOUT).await;
        assert_eq!(
            names(&report),
            ["storage", "disk_space", "wal_writable", "parts_intact"]
        );
        assert!(
            report
                .checks
                .iter()
                .all(|c| c.outcome.status == CheckStatus::Pass),
            "{report:?}"
        );
        let wal = dir.path().join("wal");
        assert_eq!(
            report.checks[2].outcome.message.as_deref(),
            Some(
                format!(
                    "created, wrote, fsynced and removed a file in {}",
                    wal.display()
                )
                .as_str()
            )
        );
        assert_eq!(report.verdict(), Verdict::Healthy);

        // Root ignores permission bits: a plain file where the WAL directory was breaks it for anyone.
        std::fs::remove_dir_all(&wal).unwrap();
        std::fs::write(&wal, b"not a directory").unwrap();
        let report = run(&store, CHECK_TIMEOUT).await;
        let probe = wal.join("health.probe");
        assert_eq!(
            report.checks[2].outcome,
            CheckOutcome::fail(format!(
                "create health probe file {}: Not a directory (os error 20)",
                probe.display()
            ))
        );
        assert_eq!(report.verdict(), Verdict::Unhealthy);
    }

    #[tokio::test]
    async fn the_embedded_store_warns_below_its_disk_floor() {
        let dir = tempfile::tempdir().unwrap();
        let store = embedded(dir.path(), floors(u64::MAX, 0.0)).await;
        let report = run(&store, CHECK_TIMEOUT).await;
        assert_eq!(report.checks[1].name, "disk_space");
        assert_eq!(report.checks[1].outcome.status, CheckStatus::Warn);
        assert_eq!(report.verdict(), Verdict::Degraded);
    }
}
