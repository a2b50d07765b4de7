//! Measures the engine's write path (a measurement, not a timed test): `THREADS` request threads write
//! `POINTS` points of `api_latency` shaped like `luminate bench`'s dataset — 100 000 Zipf customers
//! (s = 1.1) × (endpoint, region, status_code) combinations, about 2 M series of 5 points at 10 M points,
//! timestamps in time order over one hour, one-decimal values — as `PointBatch`es of 10 000 points into an
//! engine in a temp dir with `SyncPolicy::Always` and the default head size (so the head is flushed and
//! parts are compacted while writing). Reports points/s and CPU per point, split by thread: the request
//! threads (only their `write_batch` calls; building the batch is not counted), the writer thread, the
//! fsync thread (`sync = always`), the flusher and the compactor, and the fsyncs' count and time.
//!
//! `cargo run --release -p luminate-engine --example ingest_bench -- [POINTS] [THREADS]`
//! (defaults 10000000 and 2).
#![allow(clippy::unwrap_used, reason = "a measurement program fails loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use luminate_engine::{CardinalityLimits, Engine, EngineConfig, EngineObserver, SyncPolicy};
use luminate_model::batch::PointBatchBuilder;
use luminate_model::testkit::Rng;
use luminate_model::validate::CheckedPoint;
use luminate_model::{PointBatch, Tenant};

const BATCH: u64 = 10_000;
const CUSTOMERS: u32 = 100_000;
const COMBINATIONS: u32 = 1_000;
const SERIES_TARGET: f64 = 2_000_000.0;
const HOUR_START: i64 = 1_800_000_000_000;
const HOUR_MS: i64 = 3_600_000;
const ENDPOINTS: [&str; 20] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/invoices",
    "/api/v1/products",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/checkout",
    "/api/v1/sessions",
    "/api/v1/auth/token",
    "/api/v1/reports",
    "/api/v1/exports",
    "/api/v1/webhooks",
    "/api/v1/events",
    "/api/v1/metrics",
    "/api/v1/alerts",
    "/api/v1/dashboards",
    "/api/v1/teams",
    "/api/v1/billing",
    "/api/v1/audit",
];
const REGIONS: [&str; 5] = [
    "eu-west-1",
    "us-east-1",
    "us-west-2",
    "ap-southeast-1",
    "sa-east-1",
];
const STATUS_CODES: [&str; 10] = [
    "200", "201", "204", "400", "401", "403", "404", "429", "500", "503",
];

/// The dataset's shape: the Zipf table and how many combinations each customer draws from.
struct Shape {
    zipf_cdf: Vec<f64>,
    combos_per_customer: u32,
    customer_names: Vec<String>,
    points: u64,
}

impl Shape {
    fn new(points: u64) -> Self {
        let weights: Vec<f64> = (1..=CUSTOMERS).map(|r| f64::from(r).powf(-1.1)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let zipf_cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        let expected: Vec<f64> = weights.iter().map(|w| w / total * points as f64).collect();
        // Expected distinct series when each customer draws from k combinations (as `luminate bench`).
        let distinct = |k: u32| -> f64 {
            let k = f64::from(k);
            expected
                .iter()
                .map(|&n| k * (1.0 - (n * (1.0 - 1.0 / k).ln()).exp()))
                .sum()
        };
        let (mut lo, mut hi) = (1u32, COMBINATIONS);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if distinct(mid) < SERIES_TARGET {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Self {
            zipf_cdf,
            combos_per_customer: lo,
            customer_names: (1..=CUSTOMERS).map(|c| format!("cust_{c}")).collect(),
            points,
        }
    }

    /// Batch `n` (points `n × BATCH ..`), deterministic.
    fn batch(&self, n: u64) -> PointBatch {
        let mut rng = Rng::new(n.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x6C61_7465);
        let first = n * BATCH;
        let last = (first + BATCH).min(self.points);
        let body = String::new();
        let mut builder = PointBatchBuilder::new(&body, (last - first) as usize);
        for i in first..last {
            let timestamp = HOUR_START + (i as i128 * HOUR_MS as i128 / self.points as i128) as i64;
            let u = rng.next_unit();
            let customer = self
                .zipf_cdf
                .partition_point(|&c| c <= u)
                .min(self.zipf_cdf.len() - 1);
            let slot = rng.below(u64::from(self.combos_per_customer));
            // An affine permutation of the combinations per customer (odd, not a multiple of 5).
            let mut a = ((customer as u64).wrapping_mul(0x9E37_79B9) % 1000) | 1;
            if a.is_multiple_of(5) {
                a += 2;
            }
            let combination = ((a * slot + customer as u64 * 7) % u64::from(COMBINATIONS)) as usize;
            let endpoint = combination % 20;
            let base = 200 + 151 * endpoint as u64;
            let tenths = base / 2 + rng.below(base * 2);
            let dims = [
                ("customer_id", self.customer_names[customer].as_str()),
                ("endpoint", ENDPOINTS[endpoint]),
                ("region", REGIONS[combination / 20 % 5]),
                ("status_code", STATUS_CODES[combination / 100]),
            ];
            builder.push(
                &CheckedPoint {
                    name: "api_latency",
                    timestamp,
                    value: tenths as f64 / 10.0,
                },
                &dims,
            );
        }
        builder.finish(body).unwrap()
    }
}

/// Counts the WAL's fsyncs and the time they took, and the flushes.
#[derive(Debug, Default)]
struct Syncs {
    count: AtomicU64,
    nanos: AtomicU64,
    flushes: AtomicU64,
}

impl EngineObserver for Syncs {
    fn wal_synced(&self, elapsed: Duration, _ok: bool) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    fn flushed(&self, _elapsed: Duration, _ok: bool) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }
}

/// CPU time of a thread so far, in ns (from its schedstat; 0 where there is none).
fn cpu_ns(task: &str) -> u64 {
    std::fs::read_to_string(format!("{task}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU ns of every thread of this process, by thread name.
fn cpu_by_thread() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        out.push((name.trim().to_owned(), cpu_ns(&path.to_string_lossy())));
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let points: u64 = args.next().map_or(10_000_000, |a| a.parse().unwrap());
    let threads: u64 = args.next().map_or(2, |a| a.parse().unwrap());
    let shape = Arc::new(Shape::new(points));
    let dir = tempfile::tempdir().unwrap();
    let syncs = Arc::new(Syncs::default());
    let engine = Arc::new(
        Engine::open(EngineConfig {
            sync: SyncPolicy::Always,
            limits: CardinalityLimits {
                max_series_per_metric: u64::MAX,
                max_metrics_per_tenant: 1_000,
            },
            observer: Arc::clone(&syncs) as Arc<dyn EngineObserver>,
            ..EngineConfig::new(dir.path())
        })
        .unwrap(),
    );
    let tenant = Tenant::new("bench");
    let batches = points.div_ceil(BATCH);
    let next = Arc::new(AtomicU64::new(0));
    let before = cpu_by_thread();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (engine, shape, next, tenant) = (
                Arc::clone(&engine),
                Arc::clone(&shape),
                Arc::clone(&next),
                tenant.clone(),
            );
            let thread = std::thread::Builder::new().name(format!("request-{i}"));
            thread
                .spawn(move || {
                    // The CPU of the write calls only: the batches are built here too, but not measured.
                    let mut write_ns = 0;
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= batches {
                            break;
                        }
                        let batch = Arc::new(shape.batch(n));
                        let cpu = cpu_ns("/proc/thread-self");
                        let outcome = engine.write_batch(&tenant, batch).unwrap();
                        write_ns += cpu_ns("/proc/thread-self") - cpu;
                        assert!(outcome.rejected.is_empty());
                    }
                    write_ns
                })
                .unwrap()
        })
        .collect();
    let request_ns: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let elapsed = started.elapsed();
    let after = cpu_by_thread();
    // Thread names are cut to 15 bytes by the kernel ("luminate-compac").
    let thread_ns = |name: &str| {
        let sum = |v: &[(String, u64)]| -> u64 {
            v.iter()
                .filter(|(n, _)| name.starts_with(n.as_str()) && !n.is_empty())
                .map(|(_, ns)| ns)
                .sum()
        };
        sum(&after) - sum(&before)
    };
    let per_point = |ns: u64| ns as f64 / 1000.0 / points as f64;
    let (writer, fsync, flusher, compactor) = (
        thread_ns("luminate-wal"),
        thread_ns("luminate-fsync"),
        thread_ns("luminate-flush"),
        thread_ns("luminate-compact"),
    );
    let series = engine.memory().series;
    println!(
        "{points} points, {series} series, {threads} threads: {:.2} s, {:.3} M points/s",
        elapsed.as_secs_f64(),
        points as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "CPU µs/point: engine {:.3} = requests {:.3} + writer {:.3} + fsync {:.3} + flusher {:.3} + compactor {:.3}",
        per_point(request_ns + writer + fsync + flusher + compactor),
        per_point(request_ns),
        per_point(writer),
        per_point(fsync),
        per_point(flusher),
        per_point(compactor),
    );
    let fsyncs = syncs.count.load(Ordering::Relaxed);
    println!(
        "{fsyncs} fsyncs ({:.0} points each, {:.2} ms on average, {:.1} % of the wall time), {} flushes",
        points as f64 / fsyncs.max(1) as f64,
        syncs.nanos.load(Ordering::Relaxed) as f64 / 1e6 / fsyncs.max(1) as f64,
        syncs.nanos.load(Ordering::Relaxed) as f64 / 1e7 / elapsed.as_secs_f64(),
        syncs.flushes.load(Ordering::Relaxed),
    );
}
