//! Measures what remembering idempotency keys across flushes costs (a measurement, not a timed test):
//! fills the window with `KEYS` keyed writes of one point each (36-character keys, the server's usual
//! 39-byte answer `{"accepted":1,"rejected":0,"errors":[]}`), then times what the carry-over adds to a
//! flush — a flush of a one-point head with the full window against the same flush with no keys — and
//! to a restart (replay of the carried-over window), and reports the bytes logged and the growth of the
//! resident set while the window filled (against the same writes without keys).
//!
//! `cargo run --release -p luminate-engine --example key_window_cost -- [KEYS]` (default 100000).
#![allow(clippy::unwrap_used, reason = "a measurement program fails loudly")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use luminate_engine::{Engine, EngineConfig, KeyWindow, SyncPolicy};
use luminate_model::keyed::{KeyedResponse, KeyedWrite};
use luminate_model::{Dimensions, Point, PointBatch, Tenant};

const ANSWER: &str = r#"{"accepted":1,"rejected":0,"errors":[]}"#;
const WRITERS: usize = 4;

fn open(dir: &Path, capacity: usize) -> Engine {
    Engine::open(EngineConfig {
        sync: SyncPolicy::None,
        keys: KeyWindow {
            ttl: Duration::from_secs(600),
            capacity,
        },
        ..EngineConfig::new(dir)
    })
    .unwrap()
}

fn one_point(i: u64) -> Arc<PointBatch> {
    Arc::new(PointBatch::from_points([Point {
        name: "m".to_owned(),
        timestamp: 1_800_000_000_000 + i as i64,
        value: 1.0,
        dimensions: Dimensions::from_pairs([("s".to_owned(), (i % 1000).to_string())]),
    }]))
}

/// Writes `n` one-point batches from [`WRITERS`] threads, keyed or not.
fn fill(engine: &Arc<Engine>, n: u64, keyed: bool) {
    let tenant = Tenant::new("acme");
    std::thread::scope(|s| {
        for w in 0..WRITERS as u64 {
            let (engine, tenant) = (Arc::clone(engine), tenant.clone());
            s.spawn(move || {
                for i in (w..n).step_by(WRITERS) {
                    if keyed {
                        let key = format!("{:08x}-0000-4000-8000-{:012x}", i >> 32, i);
                        let respond = Box::new(|_: &_| KeyedResponse {
                            status: 200,
                            body: ANSWER.as_bytes().into(),
                        });
                        engine
                            .write_keyed(&tenant, one_point(i), KeyedWrite { key, respond })
                            .unwrap();
                    } else {
                        engine.write_batch(&tenant, one_point(i)).unwrap();
                    }
                }
            });
        }
    });
}

/// VmRSS in bytes, from /proc (0 elsewhere).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// (carry-over flush, WAL bytes after it, reopen, RSS growth over the fill and flush) for `n` writes,
/// keyed or not.
fn run(n: u64, keyed: bool) -> (Duration, u64, Duration, u64) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(open(dir.path(), n as usize));
    let before = rss();
    fill(&engine, n, keyed);
    engine.flush().unwrap();
    let grown = rss().saturating_sub(before);
    // The measured flush: a one-point head, and the window (or nothing) to carry over.
    engine
        .write_batch(&Tenant::new("acme"), one_point(n))
        .unwrap();
    let started = Instant::now();
    engine.flush().unwrap();
    let flush = started.elapsed();
    let bytes = wal_bytes(dir.path());
    drop(engine);
    let started = Instant::now();
    let engine = open(dir.path(), n as usize);
    let reopen = started.elapsed();
    drop(engine);
    (flush, bytes, reopen, grown)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().unwrap());
    let (flush_plain, bytes_plain, reopen_plain, rss_plain) = run(n, false);
    let (flush_keyed, bytes_keyed, reopen_keyed, rss_keyed) = run(n, true);
    println!("keys in the window: {n}");
    println!(
        "flush of a one-point head: {:.1} ms with the window carried over, {:.1} ms without",
        flush_keyed.as_secs_f64() * 1e3,
        flush_plain.as_secs_f64() * 1e3
    );
    println!(
        "WAL after it: {bytes_keyed} bytes with the window, {bytes_plain} without ({:.1} bytes per key)",
        (bytes_keyed - bytes_plain) as f64 / n as f64
    );
    println!(
        "restart (open, replay): {:.1} ms with the window, {:.1} ms without",
        reopen_keyed.as_secs_f64() * 1e3,
        reopen_plain.as_secs_f64() * 1e3
    );
    println!(
        "resident set grown by the writes and a flush: {:.1} MiB with keys, {:.1} MiB without \
         ({:.0} bytes per key)",
        rss_keyed as f64 / (1 << 20) as f64,
        rss_plain as f64 / (1 << 20) as f64,
        rss_keyed.saturating_sub(rss_plain) as f64 / n as f64
    );
}
