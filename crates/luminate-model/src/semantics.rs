//! The small, exact rules of CONTRACT §4 that every backend and the reference share: bucket alignment,
//! percentile position, and the orders of results. Each is a pure function, pinned by hand-computed tests.

use std::cmp::Ordering;

use crate::point::Dimensions;
use crate::result::{GroupKey, MetricCardinality, ValueCount};
use crate::time::TimestampMs;

/// The bucket of `t`: `floor(t / interval) * interval`, aligned to the Unix epoch (also for negative `t`).
pub fn bucket_start(t: TimestampMs, interval_ms: i64) -> TimestampMs {
    t.div_euclid(interval_ms) * interval_ms
}

/// The 0-based index of percentile `pct` (50, 95, 99) among `n > 0` sorted values:
/// `min(floor(pct/100 × n), n − 1)`, computed in integers so that no rounding can move it.
pub fn quantile_index(pct: u32, n: usize) -> usize {
    debug_assert!(n > 0);
    let idx = (pct as u128 * n as u128 / 100) as usize;
    idx.min(n - 1)
}

/// The exact percentile of `values` (non-empty), by selection rather than a full sort.
/// Reorders `values`.
pub fn select_percentile(values: &mut [f64], pct: u32) -> f64 {
    let idx = quantile_index(pct, values.len());
    let (_, v, _) = values.select_nth_unstable_by(idx, f64::total_cmp);
    *v
}

/// Order of raw points: timestamp, then series (sorted dimension pairs), then value.
pub fn cmp_range_points(
    a: (TimestampMs, &Dimensions, f64),
    b: (TimestampMs, &Dimensions, f64),
) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| a.1.cmp(b.1))
        .then_with(|| a.2.total_cmp(&b.2))
}

/// Order of aggregate groups: value descending, ties by group key ascending.
pub fn cmp_aggregate_groups(a: (f64, &GroupKey), b: (f64, &GroupKey)) -> Ordering {
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp_values(b.1))
}

/// Integral of one series' points already sorted by (timestamp, value): each point after the first adds
/// `value × (t_i − t_{i−1})` in seconds.
pub fn integral_sorted(points: &[(TimestampMs, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| w[1].1 * ((w[1].0 - w[0].0) as f64 / 1000.0))
        .sum()
}

/// Sorts one series' points by (timestamp, value), the order integral and rate are defined on.
pub fn sort_series_points(points: &mut [(TimestampMs, f64)]) {
    points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.total_cmp(&b.1)));
}

/// Order of discovered values: stored points descending, ties by value.
pub fn order_value_counts(values: &mut [ValueCount]) {
    values.sort_by(|a, b| b.points.cmp(&a.points).then_with(|| a.value.cmp(&b.value)));
}

/// Order of the cardinality explorer: metrics by series descending, ties by name; within each metric,
/// keys by distinct values descending, ties by key.
pub fn order_cardinality(metrics: &mut [MetricCardinality]) {
    for m in metrics.iter_mut() {
        m.dimensions.sort_by(|a, b| {
            b.distinct_values
                .cmp(&a.distinct_values)
                .then_with(|| a.key.cmp(&b.key))
        });
    }
    metrics.sort_by(|a, b| {
        b.series
            .cmp(&a.series)
            .then_with(|| a.metric.cmp(&b.metric))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align_to_epoch() {
        assert_eq!(bucket_start(0, 60_000), 0);
        assert_eq!(bucket_start(59_999, 60_000), 0);
        assert_eq!(bucket_start(60_000, 60_000), 60_000);
        assert_eq!(bucket_start(-1, 60_000), -60_000);
    }

    #[test]
    fn quantile_positions() {
        // N = 1: every percentile is the only value.
        assert_eq!([50, 95, 99].map(|p| quantile_index(p, 1)), [0, 0, 0]);
        // N = 2: floor(0.5*2) = 1, floor(0.95*2) = 1, floor(0.99*2) = 1.
        assert_eq!([50, 95, 99].map(|p| quantile_index(p, 2)), [1, 1, 1]);
        // N = 100: p95 is the 96th smallest (index 95).
        assert_eq!([50, 95, 99].map(|p| quantile_index(p, 100)), [50, 95, 99]);
        assert_eq!(quantile_index(99, 10), 9);
        assert_eq!(quantile_index(50, 3), 1);
    }

    #[test]
    fn integer_position_matches_float_truncation() {
        // ClickHouse computes `size_t(level * n)` in f64; the integer formula must agree for the levels
        // we use, or the backends would disagree.
        for n in 1..200_000usize {
            for (pct, level) in [(50u32, 0.5f64), (95, 0.95), (99, 0.99)] {
                let float_idx = ((level * n as f64) as usize).min(n - 1);
                assert_eq!(quantile_index(pct, n), float_idx, "pct {pct} n {n}");
            }
        }
    }

    #[test]
    fn selection_equals_sorted_position() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(select_percentile(&mut v, 95), 96.0);
        assert_eq!(select_percentile(&mut v, 50), 51.0);
        assert_eq!(select_percentile(&mut [7.0], 99), 7.0);
        assert_eq!(select_percentile(&mut [1.0, 2.0], 50), 2.0);
    }

    #[test]
    fn integral_of_sorted_points() {
        // 0s: 5 (first, adds nothing), 2s: 3 → 6, 2s: 4 → 0, 5s: 1 → 3.
        let pts = [(0, 5.0), (2_000, 3.0), (2_000, 4.0), (5_000, 1.0)];
        assert_eq!(integral_sorted(&pts), 9.0);
        assert_eq!(integral_sorted(&pts[..1]), 0.0);
    }
}
