//! Rate answers: per series, each consecutive pair of points (ordered by timestamp, value) adds its
//! non-negative increase to the bucket of the later point; a group's bucket rate is the sum over its
//! series divided by the interval in seconds. Groups ordered by key; without groupBy exactly one group.

use std::collections::BTreeMap;

use luminate_model::result::{GroupKey, RateGroup, RatePoint};
use luminate_model::semantics::{bucket_start, sort_series_points};
use luminate_model::{QueryResult, TimestampMs};

use super::Finish;
use super::partial::Partial;
use super::points::Points;

/// Interval used if a plan reaches execution without one (plans from `QueryPlan::from_request` always
/// have one); the reference does the same.
const FALLBACK_INTERVAL_MS: i64 = 1_000;

/// Rows are tagged by position in the selection.
pub(super) fn finish(out: &Finish<'_>, partial: Partial) -> QueryResult {
    let plan = out.plan;
    let selection = out.selection;
    let interval = plan.interval_ms.unwrap_or(FALLBACK_INTERVAL_MS);
    let mut rows = match partial {
        Partial::Rows(rows) => rows,
        Partial::Moments { .. } => Points::new(true),
    };
    let starts = rows.group_by_tag(selection.series.len());
    // Increase per bucket of each group; `None` until the group has a point in range.
    let mut increase: Vec<Option<BTreeMap<TimestampMs, f64>>> = vec![None; selection.groups.count];
    let mut points: Vec<(TimestampMs, f64)> = Vec::new();
    for (slot, &group) in selection.group_of.iter().enumerate() {
        let run = starts[slot]..starts[slot + 1];
        if run.is_empty() {
            continue;
        }
        points.clear();
        points.extend(run.map(|i| (rows.times[i], rows.values[i])));
        sort_series_points(&mut points);
        let buckets = increase[group as usize].get_or_insert_default();
        for w in points.windows(2) {
            *buckets.entry(bucket_start(w[1].0, interval)).or_insert(0.0) +=
                (w[1].1 - w[0].1).max(0.0);
        }
    }
    let seconds = interval as f64 / 1000.0;
    let mut groups: Vec<(u32, BTreeMap<TimestampMs, f64>)> = increase
        .into_iter()
        .enumerate()
        .filter_map(|(g, buckets)| buckets.map(|b| (g as u32, b)))
        .collect();
    groups.sort_by(|a, b| out.cmp_groups(a.0, b.0));
    let truncated = groups.len() > plan.limit;
    groups.truncate(plan.limit);
    let mut results: Vec<RateGroup> = groups
        .into_iter()
        .map(|(g, b)| RateGroup {
            group_key: out.key(g),
            points: b
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
