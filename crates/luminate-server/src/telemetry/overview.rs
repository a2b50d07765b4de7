//! The figures behind `GET /api/v1/status/overview`: process-wide totals kept beside the labelled
//! Prometheus metrics (plain atomics: summing a labelled family would mean walking it), snapshots of them
//! taken by the collector, and the summary of its latest round. Rates and latency percentiles are over
//! the window between the oldest snapshot kept and now — about a minute — computed the way Prometheus'
//! `histogram_quantile` does, from the same bucket bounds as the duration histograms.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::DURATION_BUCKETS;

/// Snapshots older than this are dropped (the overview's window).
const WINDOW: Duration = Duration::from_secs(60);

/// Cumulative counts of a duration histogram over [`DURATION_BUCKETS`] plus `+Inf`.
#[derive(Debug, Default)]
struct Latencies {
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
}

impl Latencies {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> [u64; DURATION_BUCKETS.len() + 1] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }
}

/// Process-wide totals since start.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    points_ingested: AtomicU64,
    points_rejected: AtomicU64,
    write_requests: AtomicU64,
    query_requests: AtomicU64,
    query_errors: AtomicU64,
    rate_limited: AtomicU64,
    requests: AtomicU64,
    server_errors: AtomicU64,
    write_latency: Latencies,
    query_latency: Latencies,
    snapshots: Mutex<VecDeque<Snapshot>>,
    collected: Mutex<Option<Collected>>,
}

/// The totals at one moment.
#[derive(Debug, Clone)]
struct Snapshot {
    at: Instant,
    points_ingested: u64,
    write_requests: u64,
    query_requests: u64,
    requests: u64,
    server_errors: u64,
    write_latency: [u64; DURATION_BUCKETS.len() + 1],
    query_latency: [u64; DURATION_BUCKETS.len() + 1],
}

/// What the collector's latest round found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Collected {
    /// The storage reported itself healthy.
    pub storage_up: bool,
    /// Bytes of stored data, when the backend tells.
    pub disk_bytes: Option<u64>,
    /// Bytes left on the data directory's filesystem (embedded).
    pub filesystem_available_bytes: Option<u64>,
    /// Series with stored points, every tenant.
    pub series: u64,
    /// Metrics with stored points, every tenant.
    pub metrics: u64,
    /// Tenants with data.
    pub tenants: u64,
    /// When the round ended, Unix ms.
    pub at_ms: i64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Totals {
    pub(crate) fn points(&self, ingested: u64, rejected: u64) {
        add(&self.points_ingested, ingested);
        add(&self.points_rejected, rejected);
    }

    pub(crate) fn write(&self, elapsed: Duration) {
        add(&self.write_requests, 1);
        self.write_latency.observe(elapsed);
    }

    pub(crate) fn query(&self, elapsed: Option<Duration>, failed: bool) {
        if let Some(elapsed) = elapsed {
            add(&self.query_requests, 1);
            self.query_latency.observe(elapsed);
        }
        if failed {
            add(&self.query_errors, 1);
        }
    }

    pub(crate) fn rate_limited(&self) {
        add(&self.rate_limited, 1);
    }

    pub(crate) fn request(&self, server_error: bool) {
        add(&self.requests, 1);
        if server_error {
            add(&self.server_errors, 1);
        }
    }

    fn snapshot(&self, at: Instant) -> Snapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            at,
            points_ingested: load(&self.points_ingested),
            write_requests: load(&self.write_requests),
            query_requests: load(&self.query_requests),
            requests: load(&self.requests),
            server_errors: load(&self.server_errors),
            write_latency: self.write_latency.snapshot(),
            query_latency: self.query_latency.snapshot(),
        }
    }

    /// Keeps a snapshot of now and what the collector found (called by each collection).
    pub(crate) fn collected(&self, collected: Collected) {
        let now = Instant::now();
        let mut snapshots = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        snapshots.push_back(self.snapshot(now));
        // Keep the newest one older than the window, so that the window is always covered.
        while snapshots.len() > 2 && snapshots[1].at + WINDOW <= now {
            snapshots.pop_front();
        }
        drop(snapshots);
        *self.collected.lock().unwrap_or_else(|e| e.into_inner()) = Some(collected);
    }

    /// The overview now.
    pub fn overview(&self) -> Overview {
        let now = self.snapshot(Instant::now());
        let base = self
            .snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            .cloned();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let window = base.as_ref().map(|b| now.at.duration_since(b.at));
        let rate = |current: u64, earlier: fn(&Snapshot) -> u64| match (&base, window) {
            (Some(b), Some(w)) if w.as_secs_f64() > 0.0 => {
                Some(current.saturating_sub(earlier(b)) as f64 / w.as_secs_f64())
            }
            _ => None,
        };
        let latency = |current: &[u64; DURATION_BUCKETS.len() + 1],
                       earlier: fn(&Snapshot) -> [u64; DURATION_BUCKETS.len() + 1],
                       q: f64| {
            let counts: Vec<u64> = match &base {
                Some(b) => {
                    let e = earlier(b);
                    current
                        .iter()
                        .zip(e.iter())
                        .map(|(c, e)| c.saturating_sub(*e))
                        .collect()
                }
                None => current.to_vec(),
            };
            quantile_ms(&counts, q)
        };
        Overview {
            window_seconds: window.map(|w| w.as_secs_f64()),
            ingestion: Ingestion {
                points_per_second: rate(now.points_ingested, |s| s.points_ingested),
                write_requests_per_second: rate(now.write_requests, |s| s.write_requests),
                points_ingested_total: now.points_ingested,
                points_rejected_total: load(&self.points_rejected),
                write_requests_total: now.write_requests,
            },
            queries: Queries {
                requests_per_second: rate(now.query_requests, |s| s.query_requests),
                requests_total: now.query_requests,
                errors_total: load(&self.query_errors),
            },
            latency_ms: LatencySummary {
                write_p95: latency(&now.write_latency, |s| s.write_latency, 0.95),
                write_p99: latency(&now.write_latency, |s| s.write_latency, 0.99),
                query_p95: latency(&now.query_latency, |s| s.query_latency, 0.95),
                query_p99: latency(&now.query_latency, |s| s.query_latency, 0.99),
            },
            errors: Errors {
                server_errors_per_second: rate(now.server_errors, |s| s.server_errors),
                requests_per_second: rate(now.requests, |s| s.requests),
                server_errors_total: now.server_errors,
                rate_limited_total: load(&self.rate_limited),
            },
            collected: self
                .collected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// The `q` quantile of a histogram's per-bucket counts (the last one is `+Inf`), in milliseconds,
/// interpolated linearly inside its bucket as Prometheus' `histogram_quantile` does; an observation
/// past the last bound answers that bound. `None` with no observations.
fn quantile_ms(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, &n) in counts.iter().enumerate() {
        if n > 0 && (seen + n) as f64 >= rank {
            let Some(&upper) = DURATION_BUCKETS.get(i) else {
                return Some(DURATION_BUCKETS[DURATION_BUCKETS.len() - 1] * 1000.0);
            };
            let lower = if i == 0 { 0.0 } else { DURATION_BUCKETS[i - 1] };
            let inside = (rank - seen as f64) / n as f64;
            return Some((lower + (upper - lower) * inside) * 1000.0);
        }
        seen += n;
    }
    None
}

/// The body of `GET /api/v1/status/overview`. Rates and percentiles are `null` until the collector has
/// taken its first snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// The window rates and percentiles cover, seconds.
    pub window_seconds: Option<f64>,
    /// Writes.
    pub ingestion: Ingestion,
    /// Queries.
    pub queries: Queries,
    /// Latency percentiles over the window.
    pub latency_ms: LatencySummary,
    /// Errors.
    pub errors: Errors,
    /// What the collector's latest round found.
    pub collected: Option<Collected>,
}

/// Writes in the overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ingestion {
    /// Points stored per second over the window.
    pub points_per_second: Option<f64>,
    /// Write requests per second over the window.
    pub write_requests_per_second: Option<f64>,
    /// Since start.
    pub points_ingested_total: u64,
    /// Since start.
    pub points_rejected_total: u64,
    /// Since start.
    pub write_requests_total: u64,
}

/// Queries in the overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queries {
    /// Queries run per second over the window.
    pub requests_per_second: Option<f64>,
    /// Since start.
    pub requests_total: u64,
    /// Since start, parse errors included.
    pub errors_total: u64,
}

/// Latency percentiles in the overview, ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Of the write route.
    pub write_p95: Option<f64>,
    /// Of the write route.
    pub write_p99: Option<f64>,
    /// Of queries.
    pub query_p95: Option<f64>,
    /// Of queries.
    pub query_p99: Option<f64>,
}

/// Errors in the overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Errors {
    /// 5xx answers per second over the window.
    pub server_errors_per_second: Option<f64>,
    /// All answers per second over the window.
    pub requests_per_second: Option<f64>,
    /// 5xx answers since start.
    pub server_errors_total: u64,
    /// 429 answers since start.
    pub rate_limited_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_buckets_like_prometheus() {
        let mut counts = vec![0u64; DURATION_BUCKETS.len() + 1];
        // 100 observations in (5 ms, 10 ms]: p95 is 95 % of the way through that bucket.
        counts[4] = 100;
        assert_eq!(quantile_ms(&counts, 0.95), Some(5.0 + 5.0 * 0.95));
        // One slow one past the last bound: p99 of 100 stays in the bucket, the max answers 30 s.
        counts[4] = 99;
        counts[DURATION_BUCKETS.len()] = 1;
        assert!((quantile_ms(&counts, 0.99).unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(quantile_ms(&counts, 1.0), Some(30_000.0));
        assert_eq!(quantile_ms(&[0; DURATION_BUCKETS.len() + 1], 0.5), None);
    }

    #[test]
    fn rates_and_percentiles_cover_the_window_since_the_oldest_snapshot() {
        let totals = Totals::default();
        // Before the window: these do not count in rates or percentiles.
        for _ in 0..50 {
            totals.write(Duration::from_secs(2));
        }
        totals.collected(Collected::default());
        std::thread::sleep(Duration::from_millis(200));
        totals.points(1_000, 3);
        for _ in 0..10 {
            totals.write(Duration::from_micros(700));
            totals.request(false);
        }
        totals.query(Some(Duration::from_millis(30)), false);
        totals.query(None, true);
        totals.request(true);
        let o = totals.overview();
        let window = o.window_seconds.unwrap();
        assert!(window >= 0.2, "{window}");
        let per_second = |n: f64| n / window;
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < b * 0.05;
        assert!(close(o.ingestion.points_per_second, per_second(1_000.0)));
        assert!(close(
            o.ingestion.write_requests_per_second,
            per_second(10.0)
        ));
        assert!(close(o.errors.server_errors_per_second, per_second(1.0)));
        assert_eq!(o.ingestion.points_ingested_total, 1_000);
        assert_eq!(o.ingestion.points_rejected_total, 3);
        assert_eq!(o.ingestion.write_requests_total, 60);
        assert_eq!((o.queries.requests_total, o.queries.errors_total), (1, 1));
        // Only the ten fast writes are in the window: (0.5 ms, 1 ms].
        let p95 = o.latency_ms.write_p95.unwrap();
        assert!(p95 > 0.5 && p95 <= 1.0, "{p95}");
        let q = o.latency_ms.query_p99.unwrap();
        assert!(q > 25.0 && q <= 50.0, "{q}");
        assert_eq!(o.collected, Some(Collected::default()));
    }
}
