//! Aggregate answers: one value per group (and per epoch-aligned bucket with an interval), groups ordered
//! by value descending then key, cut at `limit`. From running moments (count, sum, min, max, avg), from
//! every value of a group (exact percentiles, by selection), or from each series' sorted points
//! (integral).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use luminate_model::QueryResult;
use luminate_model::TimestampMs;
use luminate_model::query::Aggregation;
use luminate_model::result::{AggregateGroup, BucketValue};
use luminate_model::semantics::{bucket_start, integral_sorted, select_percentile};
use rayon::prelude::*;

use super::Finish;
use super::grid::Cells;
use super::partial::{BucketMoments, Moments, Partial};
use super::points::{Points, sort_each_series};
use crate::buffer::filled;

/// One group's answer before it gets its key.
struct Computed {
    group: u32,
    value: f64,
    count: u64,
    buckets: Option<Vec<BucketValue>>,
}

pub(super) fn finish(out: &Finish<'_>, agg: Aggregation, partial: Partial) -> QueryResult {
    let groups = out.selection.groups.count;
    let interval = out.plan.interval_ms;
    let mut computed = match partial {
        Partial::Moments {
            mut totals,
            buckets,
            mut compact,
        } => {
            compact.fold_into(&mut totals);
            moments(totals, buckets, agg)
        }
        Partial::Rows(points) => match (agg.percentile(), out.cells) {
            (Some(pct), Some(cells)) => cell_percentiles(points, groups, cells, pct, out.pool),
            (Some(pct), None) => percentiles(points, groups, pct, interval, out.pool),
            (None, _) => integrals(out, points, interval),
        },
    };
    computed.retain(|c| c.count > 0);
    let truncated = computed.len() > out.plan.limit;
    let top = top_groups(out, computed, out.plan.limit);
    let results = top
        .into_iter()
        .map(|c| AggregateGroup {
            group_key: out.key(c.group),
            value: c.value,
            count: c.count,
            points: c.buckets,
        })
        .collect();
    QueryResult::Aggregate { results, truncated }
}

/// The first `limit` groups in answer order — value descending, ties by key ascending — sorted, without
/// ordering the others: a selection by value alone (no strings) finds the `limit`-th value; every group
/// above it is in, and only the groups tied with it are compared by key (through their strings) for the
/// places left. 100 000 groups cost a linear pass instead of a sort whose ties (counts are small
/// integers, so most groups tie) each resolved and compared strings.
fn top_groups(out: &Finish<'_>, mut computed: Vec<Computed>, limit: usize) -> Vec<Computed> {
    let by_key = |a: &Computed, b: &Computed| out.cmp_groups(a.group, b.group);
    let in_order =
        |a: &Computed, b: &Computed| b.value.total_cmp(&a.value).then_with(|| by_key(a, b));
    if computed.len() > limit {
        let Some(last) = limit.checked_sub(1) else {
            return Vec::new();
        };
        let (_, boundary, _) =
            computed.select_nth_unstable_by(last, |a, b| b.value.total_cmp(&a.value));
        let boundary = boundary.value;
        // Before `last` nothing is below the boundary, after it nothing above.
        computed.retain(|c| c.value.total_cmp(&boundary) != Ordering::Less);
        if computed.len() > limit {
            let (mut above, mut tied): (Vec<Computed>, Vec<Computed>) = computed
                .into_iter()
                .partition(|c| c.value.total_cmp(&boundary) == Ordering::Greater);
            let places = limit - above.len();
            if tied.len() > places {
                tied.select_nth_unstable_by(places - 1, by_key);
                tied.truncate(places);
            }
            above.append(&mut tied);
            computed = above;
        }
    }
    computed.sort_unstable_by(in_order);
    computed
}

/// With buckets, rows were added to their buckets only: each group's totals are its buckets' moments
/// merged, in bucket order.
fn moments(
    mut totals: Vec<Moments>,
    buckets: Option<BucketMoments>,
    agg: Aggregation,
) -> Vec<Computed> {
    let bucketed = buckets.is_some();
    let mut per_group: Vec<Vec<BucketValue>> = Vec::new();
    if let Some(buckets) = buckets {
        let all = buckets.into_sorted();
        per_group = vec![Vec::new(); totals.len()];
        for ((g, timestamp), m) in all {
            totals[g as usize].merge(&m);
            per_group[g as usize].push(BucketValue {
                timestamp,
                value: m.value(agg),
                count: m.count,
            });
        }
    }
    let mut per_group = per_group.into_iter();
    totals
        .into_iter()
        .enumerate()
        .map(|(g, total)| Computed {
            group: g as u32,
            value: total.value(agg),
            count: total.count,
            buckets: bucketed.then(|| per_group.next().unwrap_or_default()),
        })
        .collect()
}

/// Points are tagged by group and carry their bucket (no time without an interval). Each group's
/// values are selected in place ([`Points::map_groups`]), groups in parallel on the pool.
fn percentiles(
    mut points: Points,
    groups: usize,
    pct: u32,
    interval: Option<i64>,
    pool: &rayon::ThreadPool,
) -> Vec<Computed> {
    points.map_groups(groups, pool, |g, values, times| {
        let count = values.len() as u64;
        if count == 0 {
            return Computed {
                group: g as u32,
                value: 0.0,
                count: 0,
                buckets: None,
            };
        }
        // The buckets first: the group's selection below reorders its values.
        let buckets = interval.map(|interval| bucket_percentiles(times, values, interval, pct));
        let value = select_percentile(values, pct);
        Computed {
            group: g as u32,
            value,
            count,
            buckets,
        }
    })
}

/// Points are tagged by (group, bucket) cell ([`super::Prepared`]'s cells): their values grouped by
/// cell in one pass, each group's buckets are consecutive runs, and the group's own percentile is
/// selected over all of them after theirs. Groups run in parallel on `pool`.
fn cell_percentiles(
    points: Points,
    groups: usize,
    cells: Cells,
    pct: u32,
    pool: &rayon::ThreadPool,
) -> Vec<Computed> {
    let tags = cells.tags(groups).unwrap_or_default();
    let (starts, mut values) = points.into_values_by_tag(tags, pool);
    let mut per_group = Vec::with_capacity(groups);
    let mut rest = values.as_mut_slice();
    for g in 0..groups {
        let slots = cells.of_group(g);
        let (group, tail) =
            std::mem::take(&mut rest).split_at_mut(starts[slots.end] - starts[slots.start]);
        per_group.push(group);
        rest = tail;
    }
    pool.install(|| {
        per_group
            .into_par_iter()
            .enumerate()
            .map(|(g, values)| {
                let slots = cells.of_group(g);
                let base = starts[slots.start];
                let buckets = starts[slots.start..=slots.end]
                    .windows(2)
                    .enumerate()
                    .filter(|(_, w)| w[1] > w[0])
                    .map(|(slot, w)| {
                        let run = &mut values[w[0] - base..w[1] - base];
                        BucketValue {
                            timestamp: cells.grid.bucket(slot),
                            value: select_percentile(run, pct),
                            count: run.len() as u64,
                        }
                    })
                    .collect();
                let count = values.len() as u64;
                Computed {
                    group: g as u32,
                    // The buckets' selections only reorder within each bucket.
                    value: if values.is_empty() {
                        0.0
                    } else {
                        select_percentile(values, pct)
                    },
                    count,
                    buckets: (count > 0).then_some(buckets),
                }
            })
            .collect()
    })
}

/// Each bucket's percentile of a group's values, `times[i]` the bucket of `values[i]` (epoch-aligned
/// starts, `interval` apart), buckets ascending. The values are gathered bucket by bucket with a
/// counting sort — two linear passes, where sorting a group's (bucket, value) pairs was a fifth of a
/// p95 by region with buckets — then each bucket's slice is selected in place. Buckets spread over a
/// span far wider than the values (a bound no query's interval choice reaches) are sorted instead.
fn bucket_percentiles(
    times: &[TimestampMs],
    values: &[f64],
    interval: i64,
    pct: u32,
) -> Vec<BucketValue> {
    let (Some(&lo), Some(&hi)) = (times.iter().min(), times.iter().max()) else {
        return Vec::new();
    };
    let slots = hi
        .checked_sub(lo)
        .filter(|_| interval > 0)
        .map(|span| span / interval + 1)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= 4 * values.len() + 1_024);
    let Some(slots) = slots else {
        let mut by_bucket: Vec<(TimestampMs, f64)> =
            times.iter().copied().zip(values.iter().copied()).collect();
        by_bucket.sort_unstable_by_key(|r| r.0);
        let mut scratch: Vec<f64> = Vec::new();
        return by_bucket
            .chunk_by(|a, b| a.0 == b.0)
            .map(|run| {
                scratch.clear();
                scratch.extend(run.iter().map(|r| r.1));
                BucketValue {
                    timestamp: run[0].0,
                    value: select_percentile(&mut scratch, pct),
                    count: run.len() as u64,
                }
            })
            .collect();
    };
    let slot = |t: TimestampMs| ((t - lo) / interval) as usize;
    // `ends[k]`: one past the last place of slot k's values, once they are placed.
    let mut ends = filled(slots, 0usize);
    for &t in times {
        ends[slot(t)] += 1;
    }
    let mut next = 0;
    for end in &mut ends {
        next += *end;
        *end = next;
    }
    // Placed from the back of each slot, so `ends[k]` ends at the slot's first place.
    let mut gathered = filled(values.len(), 0.0f64);
    for (&t, &v) in times.iter().zip(values) {
        let k = slot(t);
        ends[k] -= 1;
        gathered[ends[k]] = v;
    }
    (0..slots)
        .filter_map(|k| {
            let end = ends.get(k + 1).copied().unwrap_or(values.len());
            let run = &mut gathered[ends[k]..end];
            (!run.is_empty()).then(|| BucketValue {
                timestamp: lo + k as i64 * interval,
                value: select_percentile(run, pct),
                count: run.len() as u64,
            })
        })
        .collect()
}

/// Rows are tagged by position in the selection: each series' points are sorted, then integrated (per
/// bucket, the integral restarts).
fn integrals(out: &Finish<'_>, rows: Points, interval: Option<i64>) -> Vec<Computed> {
    let selection = out.selection;
    let (starts, mut pairs) = rows.into_pairs_by_tag(selection.series.len(), out.pool);
    sort_each_series(&starts, &mut pairs, out.pool);
    // Per group: total integral, point count, and per bucket the same two.
    type IntegralGroup = (f64, u64, BTreeMap<TimestampMs, (f64, u64)>);
    let mut groups: Vec<IntegralGroup> = vec![Default::default(); selection.groups.count];
    for (slot, &group) in selection.group_of.iter().enumerate() {
        let points = &mut pairs[starts[slot]..starts[slot + 1]];
        if points.is_empty() {
            continue;
        }
        let points = &*points;
        let (total, count, buckets) = &mut groups[group as usize];
        *total += integral_sorted(points);
        *count += points.len() as u64;
        if let Some(interval) = interval {
            // Sorted by time, so each bucket's points are one run; the integral restarts in each bucket.
            for run in
                points.chunk_by(|a, b| bucket_start(a.0, interval) == bucket_start(b.0, interval))
            {
                let bucket = buckets.entry(bucket_start(run[0].0, interval)).or_default();
                bucket.0 += integral_sorted(run);
                bucket.1 += run.len() as u64;
            }
        }
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(g, (value, count, buckets))| Computed {
            group: g as u32,
            value,
            count,
            buckets: interval.map(|_| {
                buckets
                    .into_iter()
                    .map(|(timestamp, (value, count))| BucketValue {
                        timestamp,
                        value,
                        count,
                    })
                    .collect()
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use luminate_model::testkit::Rng;

    use super::*;

    /// What the buckets must be: the (bucket, value) pairs sorted by bucket, each run selected.
    fn by_sorting(times: &[TimestampMs], values: &[f64], pct: u32) -> Vec<BucketValue> {
        let mut pairs: Vec<(TimestampMs, f64)> =
            times.iter().copied().zip(values.iter().copied()).collect();
        pairs.sort_by_key(|p| p.0);
        pairs
            .chunk_by(|a, b| a.0 == b.0)
            .map(|run| {
                let mut vs: Vec<f64> = run.iter().map(|p| p.1).collect();
                BucketValue {
                    timestamp: run[0].0,
                    value: select_percentile(&mut vs, pct),
                    count: run.len() as u64,
                }
            })
            .collect()
    }

    #[test]
    fn bucket_percentiles_equal_sorting_by_bucket_dense_sparse_or_negative() {
        let mut rng = Rng::new(11);
        let interval = 15_000;
        // Dense buckets around an epoch time, buckets before 1970, and two buckets far apart (the
        // sorted fallback: their span is far wider than the values).
        for (base, spread, n) in [
            (1_800_000_000_000i64, 240, 5_000),
            (-3_600_000, 40, 300),
            (0, 1_000_000_000, 2),
            (7 * interval, 1, 1),
        ] {
            let times: Vec<TimestampMs> = (0..n)
                .map(|_| base - base.rem_euclid(interval) + rng.below(spread) as i64 * interval)
                .collect();
            let values: Vec<f64> = (0..n).map(|_| rng.below(1_000) as f64 / 10.0).collect();
            for pct in [50, 95, 99] {
                assert_eq!(
                    bucket_percentiles(&times, &values, interval, pct),
                    by_sorting(&times, &values, pct),
                    "base {base} spread {spread} p{pct}"
                );
            }
        }
        assert_eq!(bucket_percentiles(&[], &[], interval, 95), []);
    }
}
