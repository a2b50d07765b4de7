//! Random points and queries for conformance tests, shared by every backend's test suite
//! (feature `testkit`). Deterministic from a seed so that a failure can be replayed.
//!
//! Values are multiples of 0.25 and timestamps multiples of 250 ms, so sums, averages and integrals are
//! exact in f64 whatever order a backend adds them in: any difference from the reference is a real bug,
//! not rounding, and group orders never flip on a last-bit tie.

use std::time::Duration;

use crate::filter::Filter;
use crate::point::{Dimensions, Point};
use crate::query::{Aggregation, QueryKind, QueryPlan};
use crate::result::QueryResult;
use crate::time::TimestampMs;

/// SplitMix64: tiny, fast, and good enough to spread test cases.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A random element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Metric names the generator writes; `ghost` is never written (unknown-metric queries).
pub const METRICS: [&str; 3] = ["latency", "requests", "ghost"];
/// Dimension keys and their value pools; a point carries each key with probability 80%.
pub const DIMENSIONS: [(&str, &[&str]); 3] = [
    ("customer", &["c1", "c2", "c3", "c10", "c2x"]),
    ("region", &["eu", "us"]),
    ("status", &["200", "500"]),
];

/// A random dataset of `n` points in `[base, base + span_ms)`: duplicates, out-of-order arrival,
/// missing dimensions, and for `requests` a counter with resets.
pub fn random_points(rng: &mut Rng, n: usize, base: TimestampMs, span_ms: i64) -> Vec<Point> {
    let slots = (span_ms / 250).max(1) as u64;
    let mut counter = 0.0f64;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let name = if rng.chance(60) {
            METRICS[0]
        } else {
            METRICS[1]
        };
        let mut dims = Vec::with_capacity(DIMENSIONS.len());
        for (key, values) in DIMENSIONS {
            if rng.chance(80) {
                dims.push((key.to_owned(), (*rng.pick(values)).to_owned()));
            }
        }
        let timestamp = base + rng.below(slots) as i64 * 250;
        let value = if name == METRICS[1] {
            counter = if rng.chance(5) {
                0.0
            } else {
                counter + rng.below(40) as f64 * 0.25
            };
            counter
        } else {
            (rng.below(2_000) as f64 - 400.0) * 0.25
        };
        out.push(Point {
            name: name.to_owned(),
            timestamp,
            value,
            dimensions: Dimensions::from_pairs(dims),
        });
        if rng.chance(3) {
            // An exact duplicate: stored twice, never deduplicated.
            let dup = out[out.len() - 1].clone();
            out.push(dup);
        }
    }
    out.truncate(n);
    out
}

/// A dimension key the generator never writes.
pub const ABSENT_KEY: &str = "absent";
/// A value the generator never writes.
pub const ABSENT_VALUE: &str = "nobody";

/// A filter on `key`: mostly one value of its pool, `""` (points without the key) now and then, and in
/// two cases of five a list of one to four values that may repeat, include `""` and values nobody
/// carries.
fn random_filter(rng: &mut Rng, key: &str, pool: &[&str]) -> Filter {
    let pick = |rng: &mut Rng| -> String {
        match rng.below(10) {
            0 => String::new(),
            1 => ABSENT_VALUE.to_owned(),
            _ if pool.is_empty() => String::new(),
            _ => (*rng.pick(pool)).to_owned(),
        }
    };
    if rng.chance(60) {
        let value = if rng.chance(15) || pool.is_empty() {
            String::new()
        } else {
            (*rng.pick(pool)).to_owned()
        };
        return Filter::equals(key, value);
    }
    let n = 1 + rng.below(4);
    let values: Vec<String> = (0..n).map(|_| pick(rng)).collect();
    Filter::any_of(key, values)
}

/// A random query over `[base - span/4, base + span + span/4)`.
pub fn random_plan(rng: &mut Rng, base: TimestampMs, span_ms: i64) -> QueryPlan {
    let lo = base - span_ms / 4;
    let width = span_ms + span_ms / 2;
    let mut a = lo + rng.below(width as u64) as i64;
    let mut b = lo + rng.below(width as u64) as i64;
    if rng.chance(30) {
        // Whole range, so that most queries see data.
        a = lo;
        b = lo + width;
    }
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    let end = if a == b { b + 1 } else { b };
    let kind = match rng.below(3) {
        0 => QueryKind::Range,
        1 => QueryKind::Aggregate(*rng.pick(&Aggregation::ALL)),
        _ => QueryKind::Rate,
    };
    let mut filters = Vec::new();
    for (key, values) in DIMENSIONS {
        if rng.chance(20) {
            filters.push(random_filter(rng, key, values));
        }
    }
    if rng.chance(5) {
        // A key no point carries: every point has `""` for it.
        filters.push(random_filter(rng, ABSENT_KEY, &[]));
    }
    let mut group_by = Vec::new();
    if kind != QueryKind::Range {
        for (key, _) in DIMENSIONS {
            if rng.chance(40) {
                group_by.push(key.to_owned());
            }
        }
        if rng.chance(50) {
            group_by.reverse();
        }
    }
    let intervals = [1_000i64, 7_000, 60_000, 600_000];
    let interval_ms = match kind {
        QueryKind::Range => None,
        QueryKind::Rate => Some(*rng.pick(&intervals)),
        QueryKind::Aggregate(_) => rng.chance(50).then(|| *rng.pick(&intervals)),
    };
    let limit = if rng.chance(50) {
        1 + rng.below(6) as usize
    } else {
        1_000
    };
    QueryPlan {
        kind,
        metric: (*rng.pick(&METRICS)).to_owned(),
        start: a,
        end,
        filters,
        group_by,
        interval_ms,
        limit,
        timeout: Duration::from_secs(30),
    }
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Compares two results exactly, except floats within 1e-9 relative; describes the first difference.
pub fn diff_results(expected: &QueryResult, actual: &QueryResult) -> Option<String> {
    use QueryResult::*;
    if expected.truncated() != actual.truncated() {
        return Some(format!(
            "truncated: expected {}, got {}",
            expected.truncated(),
            actual.truncated()
        ));
    }
    match (expected, actual) {
        (Range { results: e, .. }, Range { results: a, .. }) => {
            if e.len() != a.len() {
                return Some(format!(
                    "range: expected {} points, got {}",
                    e.len(),
                    a.len()
                ));
            }
            e.iter().zip(a).enumerate().find_map(|(i, (x, y))| {
                (x.timestamp != y.timestamp
                    || x.dimensions != y.dimensions
                    || !close(x.value, y.value))
                .then(|| format!("range point {i}: expected {x:?}, got {y:?}"))
            })
        }
        (Aggregate { results: e, .. }, Aggregate { results: a, .. }) => {
            if e.len() != a.len() {
                return Some(format!(
                    "aggregate: expected {} groups, got {}",
                    e.len(),
                    a.len()
                ));
            }
            e.iter().zip(a).enumerate().find_map(|(i, (x, y))| {
                let buckets_differ = match (&x.points, &y.points) {
                    (None, None) => false,
                    (Some(p), Some(q)) => {
                        p.len() != q.len()
                            || p.iter().zip(q).any(|(b, c)| {
                                b.timestamp != c.timestamp
                                    || b.count != c.count
                                    || !close(b.value, c.value)
                            })
                    }
                    _ => true,
                };
                (x.group_key != y.group_key
                    || x.count != y.count
                    || !close(x.value, y.value)
                    || buckets_differ)
                    .then(|| format!("aggregate group {i}: expected {x:?}, got {y:?}"))
            })
        }
        (Rate { results: e, .. }, Rate { results: a, .. }) => {
            if e.len() != a.len() {
                return Some(format!(
                    "rate: expected {} groups, got {}",
                    e.len(),
                    a.len()
                ));
            }
            e.iter().zip(a).enumerate().find_map(|(i, (x, y))| {
                let differ = x.group_key != y.group_key
                    || x.points.len() != y.points.len()
                    || x.points
                        .iter()
                        .zip(&y.points)
                        .any(|(p, q)| p.timestamp != q.timestamp || !close(p.rate, q.rate));
                differ.then(|| format!("rate group {i}: expected {x:?}, got {y:?}"))
            })
        }
        _ => Some(format!(
            "query type: expected {}, got {}",
            expected.query_type(),
            actual.query_type()
        )),
    }
}
