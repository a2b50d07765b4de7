//! The numeric kernels of PromQL's functions and aggregations, ported from Prometheus 2.42
//! (`promql/functions.go`, `promql/quantile.go`, `promql/engine.go`): pure functions over samples, each
//! pinned by hand-computed tests. Owns no labels and no steps.

use luminate_model::window::SeriesWindow;

/// `rate`, `increase` and `delta` over the samples of one window (Prometheus' `extrapolatedRate`):
/// [`window_rate`] of their fold. `samples` are the window's points in time order, one per timestamp.
pub fn extrapolated_rate(
    samples: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range_secs: f64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let w = SeriesWindow::of_sorted(samples)?;
    window_rate(&w, range_start, range_end, range_secs, is_counter, is_rate)
}

/// `rate`, `increase` and `delta` over one window's folded samples (Prometheus' `extrapolatedRate`).
///
/// `range_start`/`range_end` are the window's bounds (ms), `range_secs` its length. The change between
/// the first and last sample (for counters, with every drop counted as a reset) is extrapolated
/// towards the window's bounds: all the way when the first or last sample lies within 1.1 average
/// sample intervals of the bound, else by half an interval; a counter is never extrapolated below
/// zero. `None` with fewer than two samples.
pub fn window_rate(
    w: &SeriesWindow,
    range_start: i64,
    range_end: i64,
    range_secs: f64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.count < 2 {
        return None;
    }
    let ((first_t, first_v), (last_t, last_v)) = (w.first, w.last);
    let mut change = last_v - first_v;
    if is_counter {
        change += w.resets;
    }
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let average_interval = sampled / (w.count - 1) as f64;
    if is_counter && change > 0.0 && first_v >= 0.0 {
        // The counter started at zero no earlier than this: never extrapolate below it.
        let to_zero = sampled * (first_v / change);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_interval * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average_interval / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average_interval / 2.0
    };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= range_secs;
    }
    Some(change * factor)
}

/// The value of range function `name` — one of `crate::plan::FOLDED_FUNCTIONS` — over a window's
/// folded samples, the window being `[start, end]` (ms) of `range_secs`; `None` for another function.
/// The one mapping from function to fold that both the evaluator and the store's grouped folds use.
pub fn folded_value(
    name: &str,
    w: &SeriesWindow,
    start: i64,
    end: i64,
    range_secs: f64,
) -> Option<Option<f64>> {
    Some(match name {
        "rate" => window_rate(w, start, end, range_secs, true, true),
        "increase" => window_rate(w, start, end, range_secs, true, false),
        "delta" => window_rate(w, start, end, range_secs, false, false),
        "irate" => window_instant_value(w, true),
        "idelta" => window_instant_value(w, false),
        "count_over_time" => Some(w.count as f64),
        "last_over_time" => Some(w.last.1),
        "min_over_time" => Some(w.min),
        "max_over_time" => Some(w.max),
        _ => return None,
    })
}

/// `irate` and `idelta`: from the last two samples of the window (Prometheus' `instantValue`). `None`
/// with fewer than two samples or when both share a timestamp.
pub fn instant_value(samples: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    let [.., previous, last] = samples else {
        return None;
    };
    last_two_value(*previous, *last, is_rate)
}

/// [`instant_value`] of a window's last two samples.
pub fn window_instant_value(w: &SeriesWindow, is_rate: bool) -> Option<f64> {
    last_two_value(w.previous?, w.last, is_rate)
}

fn last_two_value(
    (prev_t, prev_v): (i64, f64),
    (last_t, last_v): (i64, f64),
    is_rate: bool,
) -> Option<f64> {
    let value = if is_rate && last_v < prev_v {
        // A counter reset: the counter rose from zero to `last_v`.
        last_v
    } else {
        last_v - prev_v
    };
    let interval = last_t - prev_t;
    if interval == 0 {
        return None;
    }
    Some(if is_rate {
        value / (interval as f64 / 1000.0)
    } else {
        value
    })
}

/// Kahan-compensated sum (Prometheus' `kahanSumInc` loop).
pub fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = sum + v;
        if t.is_infinite() {
            c = 0.0;
        } else if sum.abs() >= v.abs() {
            c += (sum - t) + v;
        } else {
            c += (v - t) + sum;
        }
        sum = t;
    }
    sum + c
}

/// The running mean `avg_over_time` and `avg` compute: divides before subtracting to avoid overflow,
/// and keeps an infinite mean unless a NaN or an opposite infinity comes.
pub fn incremental_mean(values: impl Iterator<Item = f64>) -> f64 {
    let mut mean = 0.0f64;
    let mut count = 0.0f64;
    for v in values {
        count += 1.0;
        if count == 1.0 {
            mean = v;
            continue;
        }
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

/// The φ-quantile of `values` (Prometheus' `quantile`): linear interpolation between the two nearest
/// ranks; `-Inf` below 0, `+Inf` above 1, NaN for NaN or no values. Reorders `values`.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Go's sort.Float64s order: NaN first.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// The φ-quantile of a histogram given as `(upper bound, cumulative count)` buckets (Prometheus'
/// `bucketQuantile`): NaN without a `+Inf` bucket, with fewer than two buckets or no observations;
/// buckets of equal bounds are merged and counts made monotonic first. Reorders `buckets`.
pub fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    buckets.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|b| b.1 < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Go's `math.Max`: NaN wins, `+0` beats `-0`.
pub fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins, `-0` beats `+0`.
pub fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// `round(v, to_nearest)`: halves round up (towards +Inf), as Prometheus rounds.
pub fn round_to(v: f64, to_nearest: f64) -> f64 {
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

/// Go's `math.Mod` (the sign of the dividend; Rust's `%` on floats is the same).
pub fn go_mod(a: f64, b: f64) -> f64 {
    a % b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_of_a_steady_counter_is_its_slope() {
        // Samples every 10 s over a 60 s window ending 5 s after the last: 0..=50 by 10, +1/s.
        let s: Vec<(i64, f64)> = (0..6)
            .map(|i| (5_000 + i * 10_000, 10.0 + i as f64 * 10.0))
            .collect();
        // to_start 5 s and to_end 5 s are below 1.1 × 10 s: extrapolated fully to 60 s.
        let increase = extrapolated_rate(&s, 0, 60_000, 60.0, true, false).unwrap();
        assert!((increase - 60.0).abs() < 1e-12, "{increase}");
        let rate = extrapolated_rate(&s, 0, 60_000, 60.0, true, true).unwrap();
        assert!((rate - 1.0).abs() < 1e-12);
        assert_eq!(
            extrapolated_rate(&s[..1], 0, 60_000, 60.0, true, true),
            None
        );
    }

    #[test]
    fn a_counter_is_not_extrapolated_below_zero_and_resets_add_the_previous_value() {
        // 1 at 30 s, 3 at 40 s: +2 over 10 s; zero would be reached 5 s before the first sample,
        // sooner than the window's start (30 s before): extrapolate 5 s back, and 0 s forward.
        let s = [(30_000, 1.0), (40_000, 3.0)];
        let v = extrapolated_rate(&s, 0, 40_000, 40.0, true, false).unwrap();
        assert!((v - 3.0).abs() < 1e-12, "{v}");
        // 5, 2 (reset), 4: change 4 - 5 + 5 = 4.
        let s = [(0, 5.0), (10_000, 2.0), (20_000, 4.0)];
        assert_eq!(
            extrapolated_rate(&s, 0, 20_000, 20.0, true, false),
            Some(4.0)
        );
        // A gauge's delta counts no reset.
        assert_eq!(
            extrapolated_rate(&s, 0, 20_000, 20.0, false, false),
            Some(-1.0)
        );
    }

    #[test]
    fn far_bounds_extrapolate_half_an_interval() {
        // Samples at 20 s and 30 s in a 60 s window: 20 s to the start, 30 s to the end, both beyond
        // 11 s: 10 s + 5 s + 5 s = 20 s, factor 2.
        let s = [(20_000, 0.0), (30_000, 10.0)];
        assert_eq!(
            extrapolated_rate(&s, 0, 60_000, 60.0, false, false),
            Some(20.0)
        );
    }

    #[test]
    fn irate_and_idelta_use_the_last_two_samples() {
        let s = [(0, 1.0), (10_000, 5.0), (12_000, 9.0)];
        assert_eq!(instant_value(&s, true), Some(2.0));
        assert_eq!(instant_value(&s, false), Some(4.0));
        let reset = [(0, 9.0), (4_000, 2.0)];
        assert_eq!(instant_value(&reset, true), Some(0.5));
        assert_eq!(instant_value(&reset, false), Some(-7.0));
        assert_eq!(instant_value(&s[..1], true), None);
    }

    #[test]
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile(0.5, &mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        // Rank 3.6: 4 × 0.4 + 5 × 0.6.
        assert_eq!(quantile(0.9, &mut [1.0, 2.0, 3.0, 4.0, 5.0]), 4.6);
        assert_eq!(quantile(1.5, &mut [1.0]), f64::INFINITY);
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn histogram_quantile_interpolates_within_the_bucket() {
        // 10 observations ≤ 0.1, 20 ≤ 0.5, 30 in all: the median (rank 15) is in (0.1, 0.5].
        let mut b = vec![(0.5, 20.0), (f64::INFINITY, 30.0), (0.1, 10.0)];
        assert_eq!(bucket_quantile(0.5, &mut b), 0.1 + 0.4 * 0.5);
        // Rank in the +Inf bucket: the largest finite bound.
        assert_eq!(bucket_quantile(0.99, &mut b), 0.5);
        let mut no_inf = vec![(0.5, 20.0)];
        assert!(bucket_quantile(0.5, &mut no_inf).is_nan());
        // Non-monotonic counts are raised to the running maximum.
        let mut b = vec![(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.5, &mut b), 0.5);
    }

    #[test]
    fn sums_and_means_follow_prometheus() {
        assert_eq!(kahan_sum([1e16, 1.0, -1e16].into_iter()), 1.0);
        assert_eq!(incremental_mean([1.0, 2.0, 3.0, 4.0].into_iter()), 2.5);
        assert_eq!(
            incremental_mean([f64::INFINITY, 1.0].into_iter()),
            f64::INFINITY
        );
        assert_eq!(round_to(2.5, 1.0), 3.0);
        assert_eq!(round_to(-2.5, 1.0), -2.0);
        assert_eq!(round_to(7.0, 5.0), 5.0);
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert_eq!(go_min(3.0, 1.0), 1.0);
    }
}
