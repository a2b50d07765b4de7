//! Measures the memory of the series index and the head at benchmark cardinality (a measurement, not a
//! timed test): writes `SERIES` series of `api_latency` shaped like `luminate bench` (customer_id from
//! 100 000 values, endpoint from 20, region from 5, status_code from 5), `POINTS` points per series,
//! through the public engine API, and reports bytes per series two ways: the engine's own accounting
//! (heap capacities of the index and the head) and the growth of the process' resident set.
//!
//! `cargo run --release -p luminate-engine --example index_memory -- [SERIES] [POINTS]`
//! (defaults 2000000 and 1).
#![allow(clippy::unwrap_used, reason = "a measurement program fails loudly")]

use std::time::Instant;

use luminate_engine::{CardinalityLimits, Engine, EngineConfig, SyncPolicy};
use luminate_model::{Dimensions, Point, Tenant};

/// (VmRSS, VmHWM) in bytes, from /proc (0 elsewhere).
fn rss() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<usize>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn series_dims(i: u64) -> Dimensions {
    // (customer, endpoint) is unique below 2 000 000 series; region and status are spread by a hash.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    Dimensions::from_pairs([
        ("customer_id".to_owned(), format!("cust-{:06}", i % 100_000)),
        (
            "endpoint".to_owned(),
            format!("/api/v1/endpoint-{}", (i / 100_000) % 20),
        ),
        ("region".to_owned(), format!("region-{}", h % 5)),
        (
            "status_code".to_owned(),
            ["200", "201", "400", "404", "500"][(h / 5 % 5) as usize].to_owned(),
        ),
    ])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let series: u64 = args.next().map_or(2_000_000, |a| a.parse().unwrap());
    let points: u64 = args.next().map_or(1, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (rss_before, _) = rss();
    let engine = Engine::open(EngineConfig {
        sync: SyncPolicy::None,
        limits: CardinalityLimits {
            max_series_per_metric: u64::MAX,
            max_metrics_per_tenant: 1_000,
        },
        ..EngineConfig::new(dir.path())
    })
    .unwrap();
    let tenant = Tenant::new("bench");
    let started = Instant::now();
    const BATCH: u64 = 10_000;
    for round in 0..points {
        for first in (0..series).step_by(BATCH as usize) {
            let batch: Vec<Point> = (first..(first + BATCH).min(series))
                .map(|i| Point {
                    name: "api_latency".to_owned(),
                    timestamp: 1_800_000_000_000 + (round * 10_000 + i % 10_000) as i64,
                    value: (i % 997) as f64,
                    dimensions: series_dims(i),
                })
                .collect();
            let outcome = engine.write(&tenant, batch).unwrap();
            assert!(outcome.rejected.is_empty());
        }
    }
    let elapsed = started.elapsed();
    let usage = engine.memory();
    let (rss_after, peak) = rss();
    let per = |bytes: u64| bytes as f64 / series as f64;
    println!(
        "{series} series, {} points written in {:.1}s ({:.0} points/s)",
        series * points,
        elapsed.as_secs_f64(),
        (series * points) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "engine accounting: index {:.1} B/series ({} MiB), head {:.1} B/point ({} MiB)",
        per(usage.index_bytes),
        usage.index_bytes >> 20,
        usage.head_bytes as f64 / usage.head_points.max(1) as f64,
        usage.head_bytes >> 20
    );
    let grown = rss_after.saturating_sub(rss_before) as u64;
    println!(
        "RSS: {:.1} B/series in all, {:.1} B/series minus the head (now {} MiB, peak {} MiB, {} MiB before opening)",
        per(grown),
        per(grown.saturating_sub(usage.head_bytes)),
        rss_after >> 20,
        peak >> 20,
        rss_before >> 20
    );
}
