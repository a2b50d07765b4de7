//! Rate answers: per series, each consecutive pair of points (ordered by timestamp, value) adds its
//! non-negative increase to the bucket of the later point; a group's bucket rate is the sum over its
//! series divided by the interval in seconds. Groups ordered by key; without groupBy exactly one group.

use std::collections::BTreeMap;

use luminate_model::result::{GroupKey, RateGroup, RatePoint};
use luminate_model::semantics::bucket_start;
use luminate_model::{QueryResult, TimestampMs};

use super::Finish;
use super::partial::Partial;
use super::points::{Points, map_sorted_series};
use crate::buffer::filled;

/// Interval used if a plan reaches execution without one (plans from `QueryPlan::from_request` always
/// have one); the reference does the same.
const FALLBACK_INTERVAL_MS: i64 = 1_000;

/// Most (group, bucket) cells kept in a dense table; beyond, buckets go to a map per group.
const DENSE_CELLS: usize = 1 << 22;

/// Each group's increase per bucket.
enum Increases {
    /// `cells[g * buckets + b]`: the increase in bucket `first + b * interval`; NaN until a pair of
    /// points lands there (an increase is never NaN: `max(0.0)` drops a NaN difference).
    Dense {
        first: TimestampMs,
        buckets: usize,
        cells: Vec<f64>,
    },
    /// Bucket start → increase, per group.
    Sparse(Vec<BTreeMap<TimestampMs, f64>>),
}

impl Increases {
    /// Room for `groups` groups over the buckets of `[start, end)`.
    fn new(groups: usize, start: TimestampMs, end: TimestampMs, interval: i64) -> Self {
        let first = bucket_start(start, interval);
        let buckets = if end > start {
            (bucket_start(end - 1, interval) - first) / interval + 1
        } else {
            0
        };
        match usize::try_from(buckets) {
            Ok(buckets) if buckets.saturating_mul(groups) <= DENSE_CELLS => Self::Dense {
                first,
                buckets,
                cells: vec![f64::NAN; buckets * groups],
            },
            _ => Self::Sparse(vec![BTreeMap::new(); groups]),
        }
    }

    /// Adds `inc` to group `g`'s bucket starting at `bucket` (inside the range).
    #[inline]
    fn add(&mut self, g: u32, bucket: TimestampMs, interval: i64, inc: f64) {
        match self {
            Self::Dense {
                first,
                buckets,
                cells,
            } => {
                let b = ((bucket - *first) / interval) as usize;
                let cell = &mut cells[g as usize * *buckets + b];
                *cell = if cell.is_nan() { inc } else { *cell + inc };
            }
            Self::Sparse(maps) => *maps[g as usize].entry(bucket).or_insert(0.0) += inc,
        }
    }

    /// Group `g`'s buckets in time order.
    fn group(&mut self, g: u32, interval: i64) -> BTreeMap<TimestampMs, f64> {
        match self {
            Self::Dense {
                first,
                buckets,
                cells,
            } => {
                let row = &cells[g as usize * *buckets..(g as usize + 1) * *buckets];
                row.iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_nan())
                    .map(|(b, &v)| (*first + b as i64 * interval, v))
                    .collect()
            }
            Self::Sparse(maps) => std::mem::take(&mut maps[g as usize]),
        }
    }
}

/// Rows are tagged by position in the selection.
pub(super) fn finish(out: &Finish<'_>, partial: Partial) -> QueryResult {
    let plan = out.plan;
    let selection = out.selection;
    let interval = plan.interval_ms.unwrap_or(FALLBACK_INTERVAL_MS);
    let rows = match partial {
        Partial::Rows(rows) => rows,
        Partial::Moments { .. } => Points::new(true),
    };
    let (starts, mut points) = rows.into_pairs_by_tag(selection.series.len(), out.pool);
    // Per series (in parallel): its increase per bucket, as (series, bucket start, increase).
    let per_series = map_sorted_series(&starts, &mut points, out.pool, |slot, points, out| {
        series_increases(points, interval, |bucket, inc| {
            out.push((slot as u32, bucket, inc));
        });
    });
    drop(points);
    let mut increases = Increases::new(selection.groups.count, plan.start, plan.end, interval);
    // Groups with a point in range.
    let mut present = filled(selection.groups.count, false);
    for (slot, &group) in selection.group_of.iter().enumerate() {
        if starts[slot] < starts[slot + 1] {
            present[group as usize] = true;
        }
    }
    for (slot, bucket, inc) in per_series {
        increases.add(selection.group_of[slot as usize], bucket, interval, inc);
    }
    let seconds = interval as f64 / 1000.0;
    let mut groups: Vec<u32> = (0..selection.groups.count as u32)
        .filter(|&g| present[g as usize])
        .collect();
    groups.sort_by(|&a, &b| out.cmp_groups(a, b));
    let truncated = groups.len() > plan.limit;
    groups.truncate(plan.limit);
    let mut results: Vec<RateGroup> = groups
        .into_iter()
        .map(|g| RateGroup {
            group_key: out.key(g),
            points: increases
                .group(g, interval)
                .into_iter()
                .map(|(timestamp, inc)| RatePoint {
                    timestamp,
                    rate: inc / seconds,
                })
                .collect(),
        })
        .collect();
    if plan.group_by.is_empty() && results.is_empty() {
        results.push(RateGroup {
            group_key: GroupKey::default(),
            points: Vec::new(),
        });
    }
    QueryResult::Rate { results, truncated }
}

/// Calls `emit(bucket start, increase)` for each bucket of one series' sorted points holding the later
/// point of a pair, with the sum of those pairs' non-negative increases (bucket starts ascending).
/// The bucket's end is kept so that the division of `bucket_start` runs once per bucket, not per point.
fn series_increases(
    points: &[(TimestampMs, f64)],
    interval: i64,
    mut emit: impl FnMut(TimestampMs, f64),
) {
    let mut bucket: Option<(TimestampMs, TimestampMs, f64)> = None;
    for w in points.windows(2) {
        let (t, inc) = (w[1].0, (w[1].1 - w[0].1).max(0.0));
        match &mut bucket {
            Some((start, end, sum)) if t >= *start && t < *end => *sum += inc,
            _ => {
                if let Some((start, _, sum)) = bucket {
                    emit(start, sum);
                }
                let start = bucket_start(t, interval);
                bucket = Some((start, start.saturating_add(interval), inc));
            }
        }
    }
    if let Some((start, _, sum)) = bucket {
        emit(start, sum);
    }
}
