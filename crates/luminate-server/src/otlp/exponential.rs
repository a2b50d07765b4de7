//! Exponential histogram data points as `le` buckets (docs/ingest.md, "Exponential histograms"): the
//! cumulative count of values at or below each bucket's upper bound, as for an explicit-bucket histogram.
//!
//! At scale `s` the base is `2^(2^-s)`; the positive bucket of index `i` holds the values in
//! `(base^i, base^(i+1)]` and the negative one the values in `[-base^(i+1), -base^i)`; the zero bucket
//! holds `[-zero_threshold, zero_threshold]`. The buckets, from the lowest values up, are therefore:
//! negative buckets from the highest index down (upper bound `-base^i`), the zero bucket (upper bound
//! `zero_threshold`), positive buckets from the lowest index up (upper bound `base^(i+1)`), then `+Inf`.

/// The scales the OTLP spec allows (`-10..=20`); others are refused rather than computed with bounds
/// that overflow or collapse.
pub const SCALES: std::ops::RangeInclusive<i32> = -10..=20;

/// `2^e` exactly, `+Inf` above the largest double and `0` below the smallest subnormal.
fn pow2(e: i64) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else if e >= -1074 {
        f64::from_bits(1u64 << (e + 1074))
    } else {
        0.0
    }
}

/// `base^index` at `scale`, i.e. `2^(index / 2^scale)`. With `scale <= 0` it is an exact power of two;
/// otherwise `index = k·2^scale + j` (`0 <= j < 2^scale`) and the bound is `2^k · exp2(j / 2^scale)`,
/// where only `exp2` of a fraction in `[0, 1)` rounds (to the nearest double on glibc): the same
/// index always gives the same double, hence the same `le` text.
pub fn power(scale: i32, index: i64) -> f64 {
    if scale <= 0 {
        return pow2(index.saturating_mul(1i64 << -scale));
    }
    let k = index >> scale;
    let j = index & ((1i64 << scale) - 1);
    let fraction = (j as f64 / (1i64 << scale) as f64).exp2();
    // `fraction` is in [1, 2): multiplying by a power of two is exact unless it overflows or goes
    // subnormal.
    if k >= -1022 {
        fraction * pow2(k)
    } else {
        fraction * pow2(k + 64) * pow2(-64)
    }
}

/// The parts of a data point the buckets come from.
pub struct Buckets<'a> {
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive_offset: i32,
    pub positive: &'a [u64],
    pub negative_offset: i32,
    pub negative: &'a [u64],
}

/// `(upper bound, cumulative count)` from the lowest bound up, `+Inf` (the total) last. Bounds that
/// come out equal (a zero threshold equal to the first positive bound, bounds past the largest double)
/// are one bucket, with the count of the higher one. `None` when the scale is outside [`SCALES`].
pub fn cumulative(b: &Buckets<'_>) -> Option<Vec<(f64, u64)>> {
    if !SCALES.contains(&b.scale) {
        return None;
    }
    let mut out: Vec<(f64, u64)> = Vec::with_capacity(b.negative.len() + b.positive.len() + 2);
    let mut total = 0u64;
    let mut push = |bound: f64, count: u64, out: &mut Vec<(f64, u64)>| {
        total = total.saturating_add(count);
        match out.last_mut() {
            Some(last) if last.0 == bound => *last = (bound, total),
            _ => out.push((bound, total)),
        }
    };
    for (i, count) in b.negative.iter().enumerate().rev() {
        let index = i64::from(b.negative_offset) + i as i64;
        push(-power(b.scale, index), *count, &mut out);
    }
    // A negative threshold is not one: the zero bucket is then exactly zero.
    push(b.zero_threshold.max(0.0), b.zero_count, &mut out);
    for (i, count) in b.positive.iter().enumerate() {
        let index = i64::from(b.positive_offset) + i as i64;
        push(power(b.scale, index + 1), *count, &mut out);
    }
    push(f64::INFINITY, 0, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_at_non_positive_scales_are_exact_powers_of_two() {
        assert_eq!(power(0, 0), 1.0);
        assert_eq!(power(0, 3), 8.0);
        assert_eq!(power(0, -2), 0.25);
        // base 4 at scale -1, base 2^1024 (past the largest double) at scale -10.
        assert_eq!(power(-1, 3), 64.0);
        assert_eq!(power(-10, 1), f64::INFINITY);
        assert_eq!(power(-10, -2), 0.0);
        assert_eq!(power(0, -1074), f64::from_bits(1));
    }

    #[test]
    fn bounds_at_positive_scales_are_the_powers_of_the_root_of_two() {
        // base √2 at scale 1: even indices are exact, odd ones √2 times a power of two.
        assert_eq!(power(1, 4), 4.0);
        assert_eq!(power(1, 1), std::f64::consts::SQRT_2);
        assert_eq!(power(1, -3), std::f64::consts::SQRT_2 / 4.0);
        assert_eq!(power(1, 5).to_string(), "5.656854249492381");
        // At scale 20, a million buckets per doubling; adjacent bounds stay distinct.
        assert_eq!(power(20, 1 << 20), 2.0);
        assert!(power(20, 1) > 1.0 && power(20, 2) > power(20, 1));
        assert_eq!(power(20, -1062i64 << 20), f64::from_bits(1 << 12));
    }

    #[test]
    fn buckets_run_from_negative_through_zero_to_positive_then_inf() {
        // Scale 0 (base 2). Recorded: -3 (negative index 1: [-4, -2)), -1.5 (index 0: [-2, -1)),
        // 0 twice (zero bucket), 1.5 and 2 (positive index 0: (1, 2]), 3 (index 1: (2, 4]).
        let buckets = Buckets {
            scale: 0,
            zero_count: 2,
            zero_threshold: 0.0,
            positive_offset: 0,
            positive: &[2, 1],
            negative_offset: 0,
            negative: &[1, 1],
        };
        assert_eq!(
            cumulative(&buckets),
            Some(vec![
                (-2.0, 1),
                (-1.0, 2),
                (0.0, 4),
                (2.0, 6),
                (4.0, 7),
                (f64::INFINITY, 7)
            ])
        );
    }

    #[test]
    fn offsets_empty_buckets_and_a_threshold_equal_to_the_first_bound() {
        // Scale 1 (base √2), positive buckets 2..=4, the middle one empty; the zero threshold is the
        // lower bound of the first bucket, so nothing separates them.
        let buckets = Buckets {
            scale: 1,
            zero_count: 1,
            zero_threshold: 2.0,
            positive_offset: 2,
            positive: &[3, 0, 4],
            negative_offset: 0,
            negative: &[],
        };
        let got = cumulative(&buckets).unwrap();
        assert_eq!(
            got,
            vec![
                (2.0, 1),
                (power(1, 3), 4),
                (4.0, 4),
                (power(1, 5), 8),
                (f64::INFINITY, 8)
            ]
        );
        // Equal bounds merge: a zero threshold equal to the first bucket's upper bound (2).
        let merged = Buckets {
            zero_threshold: 2.0,
            positive_offset: 1,
            positive: &[5],
            ..buckets
        };
        assert_eq!(
            cumulative(&merged).unwrap(),
            vec![(2.0, 6), (f64::INFINITY, 6)]
        );
    }

    #[test]
    fn scales_outside_the_spec_are_refused() {
        let buckets = Buckets {
            scale: 21,
            zero_count: 0,
            zero_threshold: 0.0,
            positive_offset: 0,
            positive: &[1],
            negative_offset: 0,
            negative: &[],
        };
        assert_eq!(cumulative(&buckets), None);
        assert!(
            cumulative(&Buckets {
                scale: -11,
                ..buckets
            })
            .is_none()
        );
    }
}
