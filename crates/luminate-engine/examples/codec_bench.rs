//! Micro-benchmark of the part column codec (a measurement, not a timed test): encodes and decodes
//! page-sized columns shaped like what parts hold — per-series sorted timestamps, latencies with one
//! decimal, counters — through `luminate_engine::codec` (the engine's own settings), and prints bytes
//! per value and encode/decode speed, median of `RUNS` runs. The timestamp column is also encoded with
//! pco choosing its delta encoding, the setting parts used before, to show what fixing it costs and
//! saves.
//!
//!
//! A second table measures format 3's sub-pages on the timestamp and latency columns together: bytes
//! per row, reading one random row range (the sub-page holding it; for a standalone blob, its prefix up
//! to that range, as format 2 reads) and decoding a whole page, per page of both columns.
//!
//! `cargo run --release -p luminate-engine --example codec_bench -- [PAGES]` (default 64 pages of
//! 16 384 rows: about a million values per column).
#![allow(clippy::unwrap_used, reason = "a measurement program fails loudly")]

use std::time::{Duration, Instant};

use luminate_engine::codec::{Delta, PagedColumn, compress, compress_paged, decompress};
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
    sub_pages(&mut rng, &timestamps, &latency.pages);
}

/// Reads of one page of both columns, in µs: (bytes per row, one random row range, whole page).
fn sub_pages(rng: &mut Rng, timestamps: &[Vec<i64>], values: &[Vec<f64>]) {
    const READS: usize = 2_000;
    println!(
        "\npage encoding (timestamps + latencies)       bytes/row   range read µs   whole page µs"
    );
    let rows = (timestamps.len() * PAGE_ROWS) as f64;
    let median = |mut times: Vec<Duration>, n: usize| {
        times.sort();
        times[RUNS / 2].as_secs_f64() * 1e6 / n as f64
    };
    // Format 2: one standalone blob per column, a range read decodes the prefix up to it.
    let blobs: Vec<(Vec<u8>, Vec<u8>)> = timestamps
        .iter()
        .zip(values)
        .map(|(t, v)| {
            let (mut tb, mut vb) = (Vec::new(), Vec::new());
            compress(t, &mut tb, Delta::Consecutive).unwrap();
            compress(v, &mut vb, Delta::Auto).unwrap();
            (tb, vb)
        })
        .collect();
    let bytes: usize = blobs.iter().map(|(t, v)| t.len() + v.len()).sum();
    let (mut ts, mut vs) = (Vec::<i64>::new(), Vec::<f64>::new());
    let (mut range, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = Instant::now();
        for r in 0..READS {
            let p = r % blobs.len();
            // Up to a random row, rounded up to pco's batch of 256 as a prefix decode is.
            let to = (1 + rng.below(PAGE_ROWS as u64) as usize).div_ceil(256) * 256;
            ts.resize(to, 0);
            vs.resize(to, 0.0);
            pco::standalone::simple_decompress_into(&blobs[p].0, &mut ts).unwrap();
            pco::standalone::simple_decompress_into(&blobs[p].1, &mut vs).unwrap();
        }
        range.push(started.elapsed());
        let started = Instant::now();
        for (t, v) in &blobs {
            decompress(t, PAGE_ROWS, &mut ts).unwrap();
            decompress(v, PAGE_ROWS, &mut vs).unwrap();
        }
        whole.push(started.elapsed());
    }
    println!(
        "{:<44} {:>9.3} {:>15.1} {:>15.1}",
        "one standalone blob (format 2)",
        bytes as f64 / rows,
        median(range, READS),
        median(whole, blobs.len())
    );
    for sub_rows in [512u32, 1_024, 2_048, 4_096] {
        let blobs: Vec<(Vec<u8>, Vec<u8>)> = timestamps
            .iter()
            .zip(values)
            .map(|(t, v)| {
                let (mut tb, mut vb) = (Vec::new(), Vec::new());
                compress_paged(t, &mut tb, Delta::Consecutive, sub_rows).unwrap();
                compress_paged(v, &mut vb, Delta::Auto, sub_rows).unwrap();
                (tb, vb)
            })
            .collect();
        let bytes: usize = blobs.iter().map(|(t, v)| t.len() + v.len()).sum();
        let (mut ts, mut vs) = (vec![0i64; PAGE_ROWS], vec![0f64; PAGE_ROWS]);
        let (mut range, mut whole) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let started = Instant::now();
            for r in 0..READS {
                let (t, v) = &blobs[r % blobs.len()];
                let i = rng.below(PAGE_ROWS.div_ceil(sub_rows as usize) as u64) as usize;
                PagedColumn::<i64>::open(t, PAGE_ROWS)
                    .unwrap()
                    .decode(t, i, &mut ts)
                    .unwrap();
                PagedColumn::<f64>::open(v, PAGE_ROWS)
                    .unwrap()
                    .decode(v, i, &mut vs)
                    .unwrap();
            }
            range.push(started.elapsed());
            let started = Instant::now();
            for (t, v) in &blobs {
                let mut column = PagedColumn::<i64>::open(t, PAGE_ROWS).unwrap();
                for i in 0..column.sub_pages() {
                    column.decode(t, i, &mut ts).unwrap();
                }
                let mut column = PagedColumn::<f64>::open(v, PAGE_ROWS).unwrap();
                for i in 0..column.sub_pages() {
                    column.decode(v, i, &mut vs).unwrap();
                }
            }
            whole.push(started.elapsed());
        }
        assert!(ts == *timestamps.last().unwrap() && vs == *values.last().unwrap());
        println!(
            "{:<44} {:>9.3} {:>15.1} {:>15.1}",
            format!("sub-pages of {sub_rows} rows"),
            bytes as f64 / rows,
            median(range, READS),
            median(whole, blobs.len())
        );
    }
}
