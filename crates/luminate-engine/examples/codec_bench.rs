//! Micro-benchmark of the part column codec (a measurement, not a timed test): encodes and decodes
//! page-sized columns shaped like what parts hold — per-series sorted timestamps, latencies with one
//! decimal, counters — through `luminate_engine::codec` (the engine's own settings), and prints bytes
//! per value and encode/decode speed, median of `RUNS` runs. The timestamp column is also encoded with
//! pco choosing its delta encoding, the setting parts used before, to show what fixing it costs and
//! saves.
//!
//! `cargo run --release -p luminate-engine --example codec_bench -- [PAGES]` (default 64 pages of
//! 16 384 rows: about a million values per column).
#![allow(clippy::unwrap_used, reason = "a measurement program fails loudly")]

use std::time::{Duration, Instant};

use luminate_engine::codec::{Delta, compress, decompress};
use luminate_model::testkit::Rng;

const RUNS: usize = 5;
const PAGE_ROWS: usize = 16_384;

/// One page per element: the columns of `PAGE_ROWS` rows.
struct Column<T> {
    name: &'static str,
    delta: Delta,
    pages: Vec<Vec<T>>,
}

/// Pages of series of 1 to 12 points (the benchmark's 2 M series of about 5 points), timestamps
/// ascending within each series over one hour, as a flush writes them.
fn series_timestamps(rng: &mut Rng, pages: usize) -> Vec<Vec<i64>> {
    let hour_start = 1_800_000_000_000i64;
    (0..pages)
        .map(|_| {
            let mut page = Vec::with_capacity(PAGE_ROWS);
            while page.len() < PAGE_ROWS {
                let n = 1 + rng.below(12) as usize;
                let mut ts: Vec<i64> = (0..n)
                    .map(|_| hour_start + rng.below(3_600_000) as i64)
                    .collect();
                ts.sort_unstable();
                page.extend(ts.into_iter().take(PAGE_ROWS - page.len()));
            }
            page
        })
        .collect()
}

/// Latencies in milliseconds with one decimal, 1 % six times slower.
fn latencies(rng: &mut Rng, pages: usize) -> Vec<Vec<f64>> {
    (0..pages)
        .map(|_| {
            (0..PAGE_ROWS)
                .map(|_| {
                    let base = 20 + rng.below(290) as i64;
                    let slow = if rng.chance(1) { 6 } else { 1 };
                    (base * slow * 10 + rng.below(10) as i64) as f64 / 10.0
                })
                .collect()
        })
        .collect()
}

/// Counters of 3 600 points each: increases of 0 to 99, a reset now and then.
fn counters(rng: &mut Rng, pages: usize) -> Vec<Vec<f64>> {
    let mut all = Vec::with_capacity(pages * PAGE_ROWS);
    while all.len() < pages * PAGE_ROWS {
        let mut v = 0u64;
        for _ in 0..3_600 {
            v = if rng.below(1000) == 0 {
                0
            } else {
                v + rng.below(100)
            };
            all.push(v as f64);
        }
    }
    all.truncate(pages * PAGE_ROWS);
    all.chunks(PAGE_ROWS).map(<[f64]>::to_vec).collect()
}

/// (bytes per value, encode M values/s, decode M values/s), medians of `RUNS`.
fn measure<T: pco::data_types::Number + Default + PartialEq>(
    column: &Column<T>,
) -> (f64, f64, f64) {
    let values: usize = column.pages.iter().map(Vec::len).sum();
    let mut encode = Vec::new();
    let mut decode = Vec::new();
    let mut bytes = 0;
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for _ in 0..RUNS {
        blobs.clear();
        let started = Instant::now();
        for page in &column.pages {
            let mut blob = Vec::new();
            compress(page, &mut blob, column.delta).unwrap();
            blobs.push(blob);
        }
        encode.push(started.elapsed());
        bytes = blobs.iter().map(Vec::len).sum::<usize>();
        let mut out: Vec<T> = Vec::new();
        let started = Instant::now();
        for (blob, page) in blobs.iter().zip(&column.pages) {
            decompress(blob, page.len(), &mut out).unwrap();
        }
        decode.push(started.elapsed());
        assert!(
            &out == column.pages.last().unwrap(),
            "{}: the last page did not round-trip",
            column.name
        );
    }
    let per_second = |mut times: Vec<Duration>| {
        times.sort();
        values as f64 / times[RUNS / 2].as_secs_f64() / 1e6
    };
    (
        bytes as f64 / values as f64,
        per_second(encode),
        per_second(decode),
    )
}

fn main() {
    let pages: usize = std::env::args()
        .nth(1)
        .map_or(64, |a| a.parse().expect("PAGES must be a number"));
    let mut rng = Rng::new(7);
    let timestamps = series_timestamps(&mut rng, pages);
    println!(
        "{pages} pages of {PAGE_ROWS} rows per column; median of {RUNS} runs\n\n{:<44} {:>9} {:>14} {:>14}",
        "column", "bytes/val", "encode Mval/s", "decode Mval/s"
    );
    let row = |name: &str, (bytes, enc, dec): (f64, f64, f64)| {
        println!("{name:<44} {bytes:>9.2} {enc:>14.1} {dec:>14.1}");
    };
    for (name, delta) in [
        ("timestamps, first-order deltas (parts)", Delta::Consecutive),
        ("timestamps, delta chosen by pco (before)", Delta::Auto),
    ] {
        let column = Column {
            name,
            delta,
            pages: timestamps.clone(),
        };
        row(name, measure(&column));
    }
    let latency = Column {
        name: "latency values, one decimal",
        delta: Delta::Auto,
        pages: latencies(&mut rng, pages),
    };
    row(latency.name, measure(&latency));
    let counter = Column {
        name: "counter values",
        delta: Delta::Auto,
        pages: counters(&mut rng, pages),
    };
    row(counter.name, measure(&counter));
}
