//! Micro-benchmark of query execution and part decoding (a measurement, not a timed test): writes a
//! high-cardinality metric through the public engine API, then times a fixed set of plans three ways —
//! with every point in the head, after a flush to parts, and after compaction — and prints the median of
//! `RUNS` runs per plan in milliseconds, and the fastest. Part scans exercise the pco codecs; head scans
//! the columns.
//!
//! The data is shaped like `luminate bench`'s (`crates/luminate/src/bench/dataset.rs`): 100 000 customers
//! drawn from a Zipf law (s = 1.1), each using the same number of the 1 000 (endpoint, region, status)
//! combinations, that number chosen so that about `SERIES` distinct series come out; the queries are the
//! benchmark's group-bys and discovery calls (Q2–Q6, Q9, Q10) plus a few more shapes.
//!
//! `cargo run --release -p luminate-engine --example exec_bench -- [SERIES] [POINTS_PER_SERIES]`
//! (defaults 200000 and 10: 2 million points; the benchmark's dataset is `2000000 5`). `EXEC_BENCH_ONLY`
//! selects the plans whose name contains one of its `|`-separated substrings, `EXEC_BENCH_RUNS` the runs.
#![allow(clippy::unwrap_used, reason = "a measurement program fails loudly")]

use std::time::{Duration, Instant};

use luminate_engine::{CardinalityLimits, Engine, EngineConfig, SyncPolicy};
use luminate_model::{
    Aggregation, Dimensions, Filter, Point, QueryContext, QueryKind, QueryPlan, Tenant,
};

const RUNS: usize = 5;
const T0: i64 = 1_800_000_000_000;
const SPAN_MS: i64 = 3_600_000;

const CUSTOMERS: usize = 100_000;
const ZIPF_S: f64 = 1.1;
const COMBINATIONS: u64 = 1_000;
const REGIONS: [&str; 5] = ["r0", "r1", "r2", "r3", "r4"];
const STATUS: [&str; 10] = [
    "200", "201", "204", "400", "401", "403", "404", "429", "500", "503",
];

/// SplitMix64: the same points on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Customers by Zipf rank, and how many combinations each uses.
struct Dataset {
    cdf: Vec<f64>,
    combos: u64,
}

impl Dataset {
    fn new(points: u64, series_target: u64) -> Self {
        let weights: Vec<f64> = (1..=CUSTOMERS).map(|r| (r as f64).powf(-ZIPF_S)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        // Expected distinct series with `k` combinations per customer; the `k` closest to the target.
        let expected = |k: u64| -> f64 {
            let k = k as f64;
            weights
                .iter()
                .map(|w| k * (1.0 - (1.0 - 1.0 / k).powf(points as f64 * w / total)))
                .sum()
        };
        let combos = (1..=COMBINATIONS)
            .min_by(|&a, &b| {
                (expected(a) - series_target as f64)
                    .abs()
                    .total_cmp(&(expected(b) - series_target as f64).abs())
            })
            .unwrap();
        Self { cdf, combos }
    }

    fn customer(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(CUSTOMERS - 1)
    }

    fn dims(&self, customer: usize, slot: u64) -> Dimensions {
        // Slots of one customer are distinct combinations (7 is coprime with 1 000).
        let combination = (customer as u64 * 389 + slot * 7) % COMBINATIONS;
        Dimensions::from_pairs([
            ("customer_id".to_owned(), format!("cust_{}", customer + 1)),
            ("endpoint".to_owned(), format!("/api/e{}", combination / 50)),
            (
                "region".to_owned(),
                REGIONS[(combination / 10 % 5) as usize].to_owned(),
            ),
            (
                "status_code".to_owned(),
                STATUS[(combination % 10) as usize].to_owned(),
            ),
        ])
    }
}

fn plan(
    kind: QueryKind,
    filters: &[(&str, &str)],
    group_by: &[&str],
    interval_ms: Option<i64>,
    limit: usize,
) -> QueryPlan {
    QueryPlan {
        kind,
        metric: "api_latency".to_owned(),
        start: T0,
        end: T0 + SPAN_MS,
        filters: filters
            .iter()
            .map(|(k, v)| Filter::equals(*k, *v))
            .collect(),
        group_by: group_by.iter().map(|k| (*k).to_owned()).collect(),
        interval_ms,
        limit,
        timeout: Duration::from_secs(30),
    }
}

fn plans() -> Vec<(&'static str, QueryPlan)> {
    vec![
        (
            "Q1 range one customer",
            plan(
                QueryKind::Range,
                &[("customer_id", "cust_1063")],
                &[],
                None,
                10_000,
            ),
        ),
        (
            "Q3 count by customer top10",
            plan(
                QueryKind::Aggregate(Aggregation::Count),
                &[],
                &["customer_id"],
                None,
                10,
            ),
        ),
        (
            "Q2 avg by customer top10",
            plan(
                QueryKind::Aggregate(Aggregation::Avg),
                &[],
                &["customer_id"],
                None,
                10,
            ),
        ),
        (
            "Q4 p95 by customer top10",
            plan(
                QueryKind::Aggregate(Aggregation::P95),
                &[],
                &["customer_id"],
                None,
                10,
            ),
        ),
        (
            "Q5 p99 by endpoint, region=r1",
            plan(
                QueryKind::Aggregate(Aggregation::P99),
                &[("region", "r1")],
                &["endpoint"],
                None,
                100,
            ),
        ),
        (
            "Q6 sum by region,status",
            plan(
                QueryKind::Aggregate(Aggregation::Sum),
                &[],
                &["region", "status_code"],
                None,
                100,
            ),
        ),
        (
            "sum by endpoint, 1m buckets",
            plan(
                QueryKind::Aggregate(Aggregation::Sum),
                &[],
                &["endpoint"],
                Some(60_000),
                100,
            ),
        ),
        (
            "integral by region",
            plan(
                QueryKind::Aggregate(Aggregation::Integral),
                &[],
                &["region"],
                None,
                100,
            ),
        ),
        (
            "rate by region, 1m",
            plan(QueryKind::Rate, &[], &["region"], Some(60_000), 100),
        ),
    ]
}

/// Median and minimum of `RUNS` runs of `f` (`EXEC_BENCH_RUNS` when set: more runs for a profile), in
/// ms. On a shared machine the minimum is the steadier figure.
fn time_ms(mut f: impl FnMut()) -> (f64, f64) {
    let runs = std::env::var("EXEC_BENCH_RUNS").map_or(RUNS, |r| r.parse().unwrap());
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[runs / 2], times[0])
}

// --- Block summaries (issue 16, item 1): moments over whole parts, with buckets holding whole
// blocks, and a range cutting the part's only block (rows scanned as before). ---

/// The moments plans that block summaries serve, and one range they cannot.
fn summary_plans() -> Vec<(&'static str, QueryPlan)> {
    let by_customer = |agg: Aggregation, interval_ms: Option<i64>| {
        plan(
            QueryKind::Aggregate(agg),
            &[],
            &["customer_id"],
            interval_ms,
            10,
        )
    };
    let mut cut = by_customer(Aggregation::Avg, None);
    cut.start = T0 + SPAN_MS / 2;
    vec![
        ("sum by customer top10", by_customer(Aggregation::Sum, None)),
        ("min by customer top10", by_customer(Aggregation::Min, None)),
        ("max by customer top10", by_customer(Aggregation::Max, None)),
        (
            "avg by customer, 1h buckets",
            by_customer(Aggregation::Avg, Some(3_600_000)),
        ),
        ("avg by customer, last 30 min", cut),
    ]
}

/// Bytes of the data directory's parts per point.
fn part_bytes_per_point(dir: &std::path::Path, points: u64) -> f64 {
    let bytes: u64 = std::fs::read_dir(dir.join("parts"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    bytes as f64 / points as f64
}

/// `exec_bench -- SERIES POINTS bytes`: the parts' bytes per point on data shaped like
/// `bench/peers.sh`'s (each point of a series at a random millisecond of the hour, one-decimal values
/// drawn at random), the shape whose summaries compress least; no timings.
fn measure_part_bytes(series: u64, per_series: u64) {
    let points = series * per_series;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig {
        sync: SyncPolicy::None,
        head_max_points: u64::MAX,
        limits: CardinalityLimits {
            max_series_per_metric: u64::MAX,
            max_metrics_per_tenant: 1_000,
        },
        ..EngineConfig::new(dir.path())
    })
    .unwrap();
    let tenant = Tenant::new("bench");
    let mix = |n: u64, salt: u64| {
        let h = (n ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 29)
    };
    for first in (0..points).step_by(10_000) {
        let batch: Vec<Point> = (first..(first + 10_000).min(points))
            .map(|n| Point {
                name: "api_latency".to_owned(),
                timestamp: T0 + (mix(n, 1) % SPAN_MS as u64) as i64,
                value: (mix(n, 2) % 5_000) as f64 / 10.0,
                dimensions: spread_dims(n % series),
            })
            .collect();
        engine.write(&tenant, batch).unwrap();
    }
    engine.flush().unwrap();
    println!(
        "random times and values: parts {:.3} bytes per point",
        part_bytes_per_point(dir.path(), points)
    );
}

// --- End of block summaries. ---

/// Dimensions of series `i` for `measure_part_bytes`: customers and endpoints spread evenly.
fn spread_dims(i: u64) -> Dimensions {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    Dimensions::from_pairs([
        ("customer_id".to_owned(), format!("cust_{}", i % 50_000)),
        (
            "endpoint".to_owned(),
            format!("/api/e{}", (i / 50_000) % 20),
        ),
        ("region".to_owned(), format!("r{}", h % 5)),
        (
            "status_code".to_owned(),
            ["200", "201", "404", "500"][(h / 5 % 4) as usize].to_owned(),
        ),
    ])
}

fn time_plans(engine: &Engine, tenant: &Tenant, label: &str) {
    println!("\n{label} ({} parts)", engine.part_count());
    let only = std::env::var("EXEC_BENCH_ONLY").ok();
    for (name, plan) in plans().into_iter().chain(summary_plans()) {
        if only
            .as_deref()
            .is_some_and(|o| !o.split('|').any(|o| name.contains(o)))
        {
            continue;
        }
        let (median, min) = time_ms(|| {
            engine
                .query(tenant, &plan, &QueryContext::new(plan.timeout))
                .unwrap();
        });
        println!("  {name:<30} {median:>9.2} ms (min {min:.2})");
    }
    let (median, min) = time_ms(|| {
        let values = engine
            .dimension_values(tenant, "api_latency", "customer_id", "", 100)
            .unwrap();
        assert_eq!(values.len(), 100);
    });
    println!(
        "  {:<30} {median:>9.2} ms (min {min:.2})",
        "Q9 top 100 customers by points"
    );
    let (median, min) = time_ms(|| {
        assert_eq!(engine.cardinality(tenant, Some("api_latency")).len(), 1);
    });
    println!(
        "  {:<30} {median:>9.2} ms (min {min:.2})",
        "Q10 series count (cardinality)"
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let series: u64 = args.next().map_or(200_000, |a| a.parse().unwrap());
    let per_series: u64 = args.next().map_or(10, |a| a.parse().unwrap());
    if args.next().as_deref() == Some("bytes") {
        measure_part_bytes(series, per_series);
        return;
    }
    let points = series * per_series;
    let dataset = Dataset::new(points, series);
    let dir = tempfile::tempdir().unwrap();
    let defaults = EngineConfig::new(dir.path());
    let engine = Engine::open(EngineConfig {
        sync: SyncPolicy::None,
        head_max_points: u64::MAX,
        limits: CardinalityLimits {
            max_series_per_metric: u64::MAX,
            max_metrics_per_tenant: 1_000,
        },
        // `EXEC_BENCH_SUMMARY_MIN_ROWS=0` summarises every part (the benchmark's shape has 5 rows per
        // series and block, under the default).
        summary_min_rows: std::env::var("EXEC_BENCH_SUMMARY_MIN_ROWS")
            .map_or(defaults.summary_min_rows, |v| v.parse().unwrap()),
        ..defaults
    })
    .unwrap();
    let tenant = Tenant::new("bench");
    let started = Instant::now();
    let batch_size = 10_000u64;
    let mut rng = Rng(7);
    for first in (0..points).step_by(batch_size as usize) {
        let batch: Vec<Point> = (first..(first + batch_size).min(points))
            .map(|n| {
                let customer = dataset.customer(&mut rng);
                let slot = rng.next() % dataset.combos;
                Point {
                    name: "api_latency".to_owned(),
                    timestamp: T0 + (n as i64 * SPAN_MS) / points as i64,
                    value: (rng.next() % 5_000) as f64 / 10.0,
                    dimensions: dataset.dims(customer, slot),
                }
            })
            .collect();
        engine.write(&tenant, batch).unwrap();
    }
    let written = engine.cardinality(&tenant, Some("api_latency"))[0].series;
    println!(
        "wrote {points} points in {written} series ({} combinations per customer) in {:.2} s",
        dataset.combos,
        started.elapsed().as_secs_f64()
    );
    time_plans(&engine, &tenant, "all points in the head");
    let started = Instant::now();
    engine.flush().unwrap();
    println!("\nflush: {:.2} s", started.elapsed().as_secs_f64());
    println!(
        "parts: {:.3} bytes per point",
        part_bytes_per_point(dir.path(), points)
    );
    time_plans(&engine, &tenant, "after flush");
    engine.compact().unwrap();
    println!(
        "parts: {:.3} bytes per point",
        part_bytes_per_point(dir.path(), points)
    );
    time_plans(&engine, &tenant, "after compaction");
}
