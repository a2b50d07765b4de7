//! Aggregate queries: one value per group (and per epoch-aligned bucket with an interval), groups ordered
//! by value descending then key. Three accumulators, by what the aggregation needs to remember:
//! running moments (count, sum, min, max), every value (exact percentiles, by selection), or each
//! series' sorted points (integral).

use std::collections::BTreeMap;

use luminate_model::query::Aggregation;
use luminate_model::result::{AggregateGroup, BucketValue};
use luminate_model::semantics::{
    bucket_start, cmp_aggregate_groups, integral_sorted, select_percentile,
};
use luminate_model::{QueryResult, StoreError, TimestampMs};

use super::{Grouping, Scan};
use crate::head::Series;

/// One group's (or bucket's) answer before it gets its key: value, count, buckets.
struct Computed {
    value: f64,
    count: u64,
    buckets: Option<Vec<BucketValue>>,
}

pub(super) fn run(
    series: &[&Series],
    agg: Aggregation,
    scan: &mut Scan<'_>,
) -> Result<QueryResult, StoreError> {
    let plan = scan.plan;
    let grouping = Grouping::new(series, &plan.group_by);
    let computed = match agg {
        Aggregation::P50 | Aggregation::P95 | Aggregation::P99 => {
            percentiles(series, &grouping, agg, scan)?
        }
        Aggregation::Integral => integrals(series, &grouping, scan)?,
        Aggregation::Avg
        | Aggregation::Sum
        | Aggregation::Count
        | Aggregation::Min
        | Aggregation::Max => moments(series, &grouping, agg, scan)?,
    };
    let mut results: Vec<AggregateGroup> = computed
        .into_iter()
        .enumerate()
        .filter(|(_, c)| c.count > 0)
        .map(|(g, c)| AggregateGroup {
            group_key: grouping.key(g, &plan.group_by),
            value: c.value,
            count: c.count,
            points: c.buckets,
        })
        .collect();
    results.sort_by(|a, b| cmp_aggregate_groups((a.value, &a.group_key), (b.value, &b.group_key)));
    let truncated = results.len() > plan.limit;
    results.truncate(plan.limit);
    Ok(QueryResult::Aggregate { results, truncated })
}

/// Count, sum, min and max of a set of values.
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Moments {
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            (self.min, self.max) = (v, v);
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.sum += v;
        self.count += 1;
    }

    fn value(&self, agg: Aggregation) -> f64 {
        match agg {
            Aggregation::Count => self.count as f64,
            Aggregation::Sum => self.sum,
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            // Avg; percentiles and integral never use moments.
            _ => self.sum / self.count as f64,
        }
    }
}

fn moments(
    series: &[&Series],
    grouping: &Grouping<'_>,
    agg: Aggregation,
    scan: &mut Scan<'_>,
) -> Result<Vec<Computed>, StoreError> {
    let interval = scan.plan.interval_ms;
    let mut groups: Vec<(Moments, BTreeMap<TimestampMs, Moments>)> =
        vec![Default::default(); grouping.values.len()];
    for (i, s) in series.iter().enumerate() {
        let (total, buckets) = &mut groups[grouping.of_series[i]];
        for p in scan.points_in_range(s) {
            let (t, v) = p?;
            total.add(v);
            if let Some(interval) = interval {
                buckets.entry(bucket_start(t, interval)).or_default().add(v);
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|(total, buckets)| Computed {
            value: total.value(agg),
            count: total.count,
            buckets: interval.map(|_| {
                buckets
                    .into_iter()
                    .map(|(timestamp, m)| BucketValue {
                        timestamp,
                        value: m.value(agg),
                        count: m.count,
                    })
                    .collect()
            }),
        })
        .collect())
}

fn percentiles(
    series: &[&Series],
    grouping: &Grouping<'_>,
    agg: Aggregation,
    scan: &mut Scan<'_>,
) -> Result<Vec<Computed>, StoreError> {
    let pct = agg.percentile().unwrap_or(50);
    let interval = scan.plan.interval_ms;
    // Every value in range with its bucket (0 without an interval), per group.
    let mut values: Vec<Vec<(TimestampMs, f64)>> = vec![Vec::new(); grouping.values.len()];
    let mut buffered = 0usize;
    for (i, s) in series.iter().enumerate() {
        let group = &mut values[grouping.of_series[i]];
        let before = group.len();
        for p in scan.points_in_range(s) {
            let (t, v) = p?;
            group.push((interval.map_or(0, |iv| bucket_start(t, iv)), v));
        }
        buffered += group.len() - before;
        scan.ensure_within_bound(buffered)?;
    }
    let mut scratch: Vec<f64> = Vec::new();
    Ok(values
        .into_iter()
        .map(|mut vals| {
            if vals.is_empty() {
                return Computed {
                    value: 0.0,
                    count: 0,
                    buckets: None,
                };
            }
            scratch.clear();
            scratch.extend(vals.iter().map(|&(_, v)| v));
            let value = select_percentile(&mut scratch, pct);
            let buckets = interval.map(|_| {
                vals.sort_unstable_by_key(|&(b, _)| b);
                vals.chunk_by(|a, b| a.0 == b.0)
                    .map(|run| {
                        scratch.clear();
                        scratch.extend(run.iter().map(|&(_, v)| v));
                        BucketValue {
                            timestamp: run[0].0,
                            value: select_percentile(&mut scratch, pct),
                            count: run.len() as u64,
                        }
                    })
                    .collect()
            });
            Computed {
                value,
                count: vals.len() as u64,
                buckets,
            }
        })
        .collect())
}

fn integrals(
    series: &[&Series],
    grouping: &Grouping<'_>,
    scan: &mut Scan<'_>,
) -> Result<Vec<Computed>, StoreError> {
    let interval = scan.plan.interval_ms;
    // Per group: total integral, point count, and per bucket the same two.
    type IntegralGroup = (f64, u64, BTreeMap<TimestampMs, (f64, u64)>);
    let mut groups: Vec<IntegralGroup> = vec![Default::default(); grouping.values.len()];
    let mut points = Vec::new();
    for (i, s) in series.iter().enumerate() {
        scan.sorted_points(s, &mut points)?;
        let (total, count, buckets) = &mut groups[grouping.of_series[i]];
        *total += integral_sorted(&points);
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
    Ok(groups
        .into_iter()
        .map(|(value, count, buckets)| Computed {
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
        .collect())
}
