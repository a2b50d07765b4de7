//! The reference evaluator: CONTRACT §4–5 written as plainly as possible, over a list of points.
//!
//! It is the oracle of the conformance tests, so it favours obviousness over speed: full sorts, maps
//! rebuilt per query, no indexes. Do not optimise it; a faster oracle is a less trustworthy one.

use std::collections::{BTreeMap, BTreeSet};

use crate::point::{Dimensions, Point, Tenant};
use crate::query::{Aggregation, QueryKind, QueryPlan};
use crate::result::{
    AggregateGroup, BucketValue, GroupKey, KeyCardinality, MetricCardinality, QueryResult,
    RangePoint, RateGroup, RatePoint, ValueCount,
};
use crate::semantics::{
    bucket_start, cmp_aggregate_groups, cmp_range_points, order_cardinality, order_value_counts,
};
use crate::time::TimestampMs;

/// All points of all tenants, in insertion order.
#[derive(Debug, Clone, Default)]
pub struct ReferenceStore {
    points: Vec<(Tenant, Point)>,
}

/// Values of one group key, the map key that orders groups byte-wise.
type GroupValues = Vec<String>;
/// One series' (timestamp, value) pairs, by series.
type SeriesPoints<'a> = BTreeMap<&'a Dimensions, Vec<(TimestampMs, f64)>>;

impl ReferenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores one point (no deduplication: two equal points are two points).
    pub fn insert(&mut self, tenant: &Tenant, point: Point) {
        self.points.push((tenant.clone(), point));
    }

    /// Deletes the metric's points with timestamp `< before`; returns how many.
    pub fn delete_before(&mut self, tenant: &Tenant, metric: &str, before: TimestampMs) -> u64 {
        let len = self.points.len();
        self.points
            .retain(|(t, p)| !(t == tenant && p.name == metric && p.timestamp < before));
        (len - self.points.len()) as u64
    }

    fn of_metric<'a>(
        &'a self,
        tenant: &'a Tenant,
        metric: &'a str,
    ) -> impl Iterator<Item = &'a Point> + 'a {
        self.points
            .iter()
            .filter(move |(t, p)| t == tenant && p.name == metric)
            .map(|(_, p)| p)
    }

    /// Answers a query.
    pub fn query(&self, tenant: &Tenant, plan: &QueryPlan) -> QueryResult {
        // Every filter holds: the point's value of the key (`""` when it lacks the key) is one of the
        // filter's values.
        let selected: Vec<&Point> = self
            .of_metric(tenant, &plan.metric)
            .filter(|p| {
                p.timestamp >= plan.start
                    && p.timestamp < plan.end
                    && plan.filters.iter().all(|f| {
                        f.values()
                            .iter()
                            .any(|v| v == p.dimensions.get_or_empty(f.key()))
                    })
            })
            .collect();
        match plan.kind {
            QueryKind::Range => range(&selected, plan.limit),
            QueryKind::Aggregate(agg) => aggregate(&selected, plan, agg),
            QueryKind::Rate => rate(&selected, plan),
        }
    }

    /// Sorted metric names with stored points.
    pub fn metric_names(&self, tenant: &Tenant) -> Vec<String> {
        let names: BTreeSet<&str> = self
            .points
            .iter()
            .filter(|(t, _)| t == tenant)
            .map(|(_, p)| p.name.as_str())
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// Sorted dimension keys of a metric, `None` when it has no points.
    pub fn dimension_keys(&self, tenant: &Tenant, metric: &str) -> Option<Vec<String>> {
        let mut any = false;
        let mut keys = BTreeSet::new();
        for p in self.of_metric(tenant, metric) {
            any = true;
            keys.extend(p.dimensions.pairs().iter().map(|(k, _)| k.clone()));
        }
        any.then(|| keys.into_iter().collect())
    }

    /// Values of `key` by point count descending, ties by value.
    pub fn dimension_values(
        &self,
        tenant: &Tenant,
        metric: &str,
        key: &str,
        prefix: &str,
        limit: usize,
    ) -> Option<Vec<ValueCount>> {
        let mut any = false;
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for p in self.of_metric(tenant, metric) {
            any = true;
            if let Some(v) = p.dimensions.get(key).filter(|v| v.starts_with(prefix)) {
                *counts.entry(v).or_default() += 1;
            }
        }
        if !any {
            return None;
        }
        let mut values: Vec<ValueCount> = counts
            .into_iter()
            .map(|(value, points)| ValueCount {
                value: value.to_owned(),
                points,
            })
            .collect();
        order_value_counts(&mut values);
        values.truncate(limit);
        Some(values)
    }

    /// Series per metric and distinct values per key, largest first.
    pub fn cardinality(&self, tenant: &Tenant, metric: Option<&str>) -> Vec<MetricCardinality> {
        let mut series: BTreeMap<&str, BTreeSet<&Dimensions>> = BTreeMap::new();
        for (t, p) in &self.points {
            if t == tenant && metric.is_none_or(|m| m == p.name) {
                series.entry(&p.name).or_default().insert(&p.dimensions);
            }
        }
        let mut out: Vec<MetricCardinality> = series
            .into_iter()
            .map(|(name, sets)| {
                let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
                for dims in &sets {
                    for (k, v) in dims.pairs() {
                        values.entry(k).or_default().insert(v);
                    }
                }
                let dimensions: Vec<KeyCardinality> = values
                    .into_iter()
                    .map(|(key, vals)| KeyCardinality {
                        key: key.to_owned(),
                        distinct_values: vals.len() as u64,
                    })
                    .collect();
                MetricCardinality {
                    metric: name.to_owned(),
                    series: sets.len() as u64,
                    dimensions,
                }
            })
            .collect();
        order_cardinality(&mut out);
        out
    }
}

fn range(selected: &[&Point], limit: usize) -> QueryResult {
    let mut points: Vec<&Point> = selected.to_vec();
    points.sort_by(|a, b| {
        cmp_range_points(
            (a.timestamp, &a.dimensions, a.value),
            (b.timestamp, &b.dimensions, b.value),
        )
    });
    let truncated = points.len() > limit;
    let results = points
        .into_iter()
        .take(limit)
        .map(|p| RangePoint {
            timestamp: p.timestamp,
            value: p.value,
            dimensions: p.dimensions.clone(),
        })
        .collect();
    QueryResult::Range { results, truncated }
}

fn group_values(p: &Point, group_by: &[String]) -> GroupValues {
    group_by
        .iter()
        .map(|k| p.dimensions.get_or_empty(k).to_owned())
        .collect()
}

fn group_key(values: &GroupValues, group_by: &[String]) -> GroupKey {
    GroupKey(
        group_by
            .iter()
            .cloned()
            .zip(values.iter().cloned())
            .collect(),
    )
}

/// The aggregation of a set of points (non-empty).
fn aggregate_points(points: &[&Point], agg: Aggregation) -> f64 {
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    let n = values.len();
    match agg {
        Aggregation::Count => n as f64,
        Aggregation::Sum => values.iter().sum(),
        Aggregation::Avg => values.iter().sum::<f64>() / n as f64,
        Aggregation::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregation::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregation::P50 | Aggregation::P95 | Aggregation::P99 => {
            let pct = agg.percentile().unwrap_or(50) as usize;
            let mut sorted = values;
            sorted.sort_by(f64::total_cmp);
            sorted[(pct * n / 100).min(n - 1)]
        }
        Aggregation::Integral => {
            let mut by_series: BTreeMap<&Dimensions, Vec<(TimestampMs, f64)>> = BTreeMap::new();
            for p in points {
                by_series
                    .entry(&p.dimensions)
                    .or_default()
                    .push((p.timestamp, p.value));
            }
            let mut total = 0.0;
            for (_, mut pts) in by_series {
                pts.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                for i in 1..pts.len() {
                    total += pts[i].1 * ((pts[i].0 - pts[i - 1].0) as f64 / 1000.0);
                }
            }
            total
        }
    }
}

fn aggregate(selected: &[&Point], plan: &QueryPlan, agg: Aggregation) -> QueryResult {
    let mut groups: BTreeMap<GroupValues, Vec<&Point>> = BTreeMap::new();
    for p in selected {
        groups
            .entry(group_values(p, &plan.group_by))
            .or_default()
            .push(p);
    }
    let mut results: Vec<AggregateGroup> = groups
        .into_iter()
        .map(|(values, pts)| {
            let points = plan.interval_ms.map(|interval| {
                let mut buckets: BTreeMap<TimestampMs, Vec<&Point>> = BTreeMap::new();
                for p in &pts {
                    buckets
                        .entry(bucket_start(p.timestamp, interval))
                        .or_default()
                        .push(p);
                }
                buckets
                    .into_iter()
                    .map(|(timestamp, b)| BucketValue {
                        timestamp,
                        value: aggregate_points(&b, agg),
                        count: b.len() as u64,
                    })
                    .collect()
            });
            AggregateGroup {
                group_key: group_key(&values, &plan.group_by),
                value: aggregate_points(&pts, agg),
                count: pts.len() as u64,
                points,
            }
        })
        .collect();
    results.sort_by(|a, b| cmp_aggregate_groups((a.value, &a.group_key), (b.value, &b.group_key)));
    let truncated = results.len() > plan.limit;
    results.truncate(plan.limit);
    QueryResult::Aggregate { results, truncated }
}

fn rate(selected: &[&Point], plan: &QueryPlan) -> QueryResult {
    let interval = plan.interval_ms.unwrap_or(1_000);
    let mut groups: BTreeMap<GroupValues, SeriesPoints> = BTreeMap::new();
    if plan.group_by.is_empty() {
        // Without groupBy there is always exactly one result.
        groups.insert(Vec::new(), BTreeMap::new());
    }
    for p in selected {
        groups
            .entry(group_values(p, &plan.group_by))
            .or_default()
            .entry(&p.dimensions)
            .or_default()
            .push((p.timestamp, p.value));
    }
    let mut results: Vec<RateGroup> = groups
        .into_iter()
        .map(|(values, series)| {
            let mut increase: BTreeMap<TimestampMs, f64> = BTreeMap::new();
            for (_, mut pts) in series {
                pts.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                for i in 1..pts.len() {
                    let delta = (pts[i].1 - pts[i - 1].1).max(0.0);
                    *increase
                        .entry(bucket_start(pts[i].0, interval))
                        .or_insert(0.0) += delta;
                }
            }
            let seconds = interval as f64 / 1000.0;
            RateGroup {
                group_key: group_key(&values, &plan.group_by),
                points: increase
                    .into_iter()
                    .map(|(timestamp, inc)| RatePoint {
                        timestamp,
                        rate: inc / seconds,
                    })
                    .collect(),
            }
        })
        .collect();
    results.sort_by(|a, b| a.group_key.cmp_values(&b.group_key));
    let truncated = results.len() > plan.limit;
    results.truncate(plan.limit);
    QueryResult::Rate { results, truncated }
}
