//! Rate queries: per series, each consecutive pair of points (ordered by timestamp, value) adds its
//! non-negative increase to the bucket of the later point; a group's bucket rate is the sum over its
//! series divided by the interval in seconds. Groups ordered by key; without groupBy exactly one group.

use std::collections::BTreeMap;

use luminate_model::result::{GroupKey, RateGroup, RatePoint};
use luminate_model::semantics::bucket_start;
use luminate_model::{QueryResult, StoreError, TimestampMs};

use super::{Grouping, Scan};
use crate::head::Series;

/// Interval used if a plan reaches execution without one (plans from `QueryPlan::from_request` always
/// have one); the reference does the same.
const FALLBACK_INTERVAL_MS: i64 = 1_000;

pub(super) fn run(series: &[&Series], scan: &mut Scan<'_>) -> Result<QueryResult, StoreError> {
    let plan = scan.plan;
    let interval = plan.interval_ms.unwrap_or(FALLBACK_INTERVAL_MS);
    let grouping = Grouping::new(series, &plan.group_by);
    // Increase per bucket of each group; `None` until the group has a point in range.
    let mut increase: Vec<Option<BTreeMap<TimestampMs, f64>>> = vec![None; grouping.values.len()];
    let mut points = Vec::new();
    for (i, s) in series.iter().enumerate() {
        scan.sorted_points(s, &mut points)?;
        if points.is_empty() {
            continue;
        }
        let buckets = increase[grouping.of_series[i]].get_or_insert_default();
        for w in points.windows(2) {
            *buckets.entry(bucket_start(w[1].0, interval)).or_insert(0.0) +=
                (w[1].1 - w[0].1).max(0.0);
        }
    }
    let seconds = interval as f64 / 1000.0;
    let mut results: Vec<RateGroup> = increase
        .into_iter()
        .enumerate()
        .filter_map(|(g, buckets)| {
            buckets.map(|b| RateGroup {
                group_key: grouping.key(g, &plan.group_by),
                points: b
                    .into_iter()
                    .map(|(timestamp, inc)| RatePoint {
                        timestamp,
                        rate: inc / seconds,
                    })
                    .collect(),
            })
        })
        .collect();
    if plan.group_by.is_empty() && results.is_empty() {
        results.push(RateGroup {
            group_key: GroupKey::default(),
            points: Vec::new(),
        });
    }
    results.sort_by(|a, b| a.group_key.cmp_values(&b.group_key));
    let truncated = results.len() > plan.limit;
    results.truncate(plan.limit);
    Ok(QueryResult::Rate { results, truncated })
}
