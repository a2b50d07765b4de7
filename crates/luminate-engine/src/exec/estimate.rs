//! The memory a query will hold, estimated before it runs from what the index and the sources' headers
//! know — no row is read — so that the server can reserve it from its query memory budget
//! (`luminate_model::MetricsStore::query_memory`). An estimate, not a bound: it assumes a source's rows
//! are spread evenly over its time span.
//!
//! - **Points in range**: the selected series' stored points (the index's per-series counts, from which
//!   the scan also sizes its buffers) times the share of the metric's rows in the query's range, from
//!   each source's row count and time span above its tombstone. At most [`MAX_QUERY_VALUES`]: a scan
//!   stops there.
//! - **Buffers**, by what the scan keeps ([`super::partial`]): percentiles every point in range, 12
//!   bytes without an interval and 20 with one ([`super::points`]: tag, time and value; or, tagged by
//!   (group, bucket) cell, tag and value and then the values grouped by cell beside them); integral and rate every point with
//!   its time (20); a range about twice its limit per task (20); moments an accumulator per group and
//!   task, and one per (group, bucket) holding a point. Groups are bounded by the selected series and by
//!   the combinations the `groupBy` keys' distinct values can form: five regions make at most six groups
//!   (with "no region") however many series are selected. The point buffers of parallel tasks are
//!   merged by appending into the largest, so until the last merge the others' points are there twice:
//!   × (2 tasks − 1) / tasks.
//! - **Selection**: the selected series, their tags and the table from series id to tag.
//! - **Answer and overhead**: as every backend counts them, [`luminate_model::memory`].

use luminate_model::memory::{QUERY_OVERHEAD_BYTES, answer_bytes, buckets};
use luminate_model::query::QueryKind;
use luminate_model::{QueryPlan, TimestampMs};

use super::partial::uses_moments;
use super::points::PRUNE_SLACK;
use super::{MAX_QUERY_VALUES, PARALLEL_ROWS, Source, select};
use crate::index::{MetricId, TenantIndex};

/// Bytes of a buffered point with its time: tag, timestamp, value.
const TIMED_POINT_BYTES: u64 = 20;
/// Bytes of a buffered point without its time (percentiles without an interval): tag, value.
const UNTIMED_POINT_BYTES: u64 = 12;
/// Bytes of one group's running moments.
const MOMENTS_BYTES: u64 = 32;
/// Bytes of one (group, bucket) accumulator in its hash table: key, moments, control byte, load factor.
const BUCKET_MOMENTS_BYTES: u64 = 64;
/// Bytes per selected series: its id and tag, and up to 16 slots of the dense series table (4 bytes
/// each) that a sparse selection may span.
const SELECTION_BYTES_PER_SERIES: u64 = 8 + 16 * 4;
/// The dense series table's floor: 65 536 slots of 4 bytes, however few series are selected.
const SELECTION_FLOOR_BYTES: u64 = 65_536 * 4;

/// What the index knows of a query's selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Selected {
    metric: Option<MetricId>,
    /// Selected series.
    series: u64,
    /// An upper bound of the groups: the selected series, and at most the product over the `groupBy`
    /// keys of their distinct values in the metric (plus one each for "key missing", which groups as
    /// `""`).
    groups: u64,
    /// Their stored points, over all time.
    points: u64,
}

impl Selected {
    /// Selected series.
    pub(crate) fn series(&self) -> u64 {
        self.series
    }

    /// An upper bound of the groups.
    pub(crate) fn groups(&self) -> u64 {
        self.groups
    }

    /// The series `plan` selects in `ti` and their stored points.
    pub(crate) fn of(ti: Option<&TenantIndex>, plan: &QueryPlan) -> Self {
        let Some((ti, m)) = ti.and_then(|t| Some((t, t.metric_id(&plan.metric)?))) else {
            return Self {
                metric: None,
                series: 0,
                groups: 0,
                points: 0,
            };
        };
        let metric = ti.metric(m);
        // Without filters every live series is selected: the metric's counters say how many and their
        // points, without listing 2 M series for each query's estimate.
        let (series, points) = if plan.filters.is_empty() {
            (metric.live_series, metric.points)
        } else {
            let series = select::matching(ti, m, &plan.filters);
            let points = series.iter().map(|&id| ti.series_points(id)).sum();
            (series.len() as u64, points)
        };
        let combinations = plan.group_by.iter().fold(1u64, |product, key| {
            let values = ti
                .strings()
                .get(key)
                .map_or(0, |k| metric.postings_of_key(k).len() as u64);
            product.saturating_mul(values + 1)
        });
        Self {
            metric: Some(m),
            series,
            groups: series.min(combinations),
            points,
        }
    }

    /// The metric whose sources hold the points (`None`: unknown, nothing to read).
    pub(crate) fn metric(&self) -> Option<MetricId> {
        self.metric
    }
}

/// The share of `sources`' rows with a timestamp in `[start, end)` above their tombstones, each
/// source's rows taken as spread evenly over its time span; 0 without rows.
pub(crate) fn share_in_range(sources: &[Source<'_>], start: TimestampMs, end: TimestampMs) -> f64 {
    let (mut rows, mut in_range) = (0.0, 0.0);
    for source in sources {
        let (min_t, max_t, floor) = match source {
            Source::Rows { rows, floor } => (rows.min_t, rows.max_t, *floor),
            Source::Part { part, floor } => (part.meta().min_t, part.meta().max_t, *floor),
        };
        let weight = source.weight() as f64;
        let from = start.max(floor.unwrap_or(TimestampMs::MIN)).max(min_t);
        let to = end.min(max_t.saturating_add(1));
        let span = max_t.saturating_add(1).saturating_sub(min_t).max(1);
        rows += weight;
        if to > from {
            in_range += weight * (to - from) as f64 / span as f64;
        }
    }
    if rows > 0.0 { in_range / rows } else { 0.0 }
}

/// The estimate in bytes for `plan` over `selected`, of whose stored points `share` lie in its range,
/// scanned by at most `threads` tasks.
pub(crate) fn bytes(plan: &QueryPlan, selected: &Selected, share: f64, threads: usize) -> u64 {
    let in_range = ((selected.points as f64 * share.clamp(0.0, 1.0)).ceil() as u64)
        .min(MAX_QUERY_VALUES as u64);
    let series = selected.series;
    let groups = selected.groups;
    let tasks = (in_range / PARALLEL_ROWS as u64).clamp(1, threads.max(1) as u64);
    let merged = |bytes: u64| bytes.saturating_mul(2 * tasks - 1) / tasks;
    let per_group = buckets(plan);
    let buffers = match plan.kind {
        QueryKind::Range => {
            let kept_per_task = (plan.limit as u64).saturating_mul(2) + PRUNE_SLACK as u64;
            in_range.min(kept_per_task.saturating_mul(tasks)) * TIMED_POINT_BYTES
        }
        QueryKind::Aggregate(_) if uses_moments(plan.kind) => {
            let cells = match plan.interval_ms {
                None => 0,
                Some(_) => in_range.min(groups.saturating_mul(per_group).saturating_mul(tasks)),
            };
            groups.saturating_mul(MOMENTS_BYTES).saturating_mul(tasks)
                + cells.saturating_mul(BUCKET_MOMENTS_BYTES)
        }
        QueryKind::Aggregate(agg) if agg.percentile().is_some() && plan.interval_ms.is_none() => {
            merged(in_range * UNTIMED_POINT_BYTES)
        }
        QueryKind::Aggregate(_) | QueryKind::Rate => merged(in_range * TIMED_POINT_BYTES),
    };
    let (answer_points, answer_groups) = match plan.kind {
        QueryKind::Range => (in_range.min(plan.limit as u64), 0),
        QueryKind::Aggregate(_) | QueryKind::Rate => {
            let groups = groups.min(plan.limit as u64).min(in_range);
            (groups.saturating_mul(per_group).min(in_range), groups)
        }
    };
    let selection = if series == 0 {
        0
    } else {
        SELECTION_FLOOR_BYTES + series * SELECTION_BYTES_PER_SERIES
    };
    QUERY_OVERHEAD_BYTES
        .saturating_add(selection)
        .saturating_add(buffers)
        .saturating_add(answer_bytes(plan, answer_points, answer_groups))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use luminate_model::memory::{ANSWER_DIMENSIONS_BYTES, ANSWER_POINT_BYTES};
    use luminate_model::query::Aggregation;
    use luminate_model::{Dimensions, Point};

    use super::super::tests::{batches, tenant};
    use super::*;
    use crate::apply::apply_batch;
    use crate::head::Head;
    use crate::index::Index;

    /// 40 customers × 25 points each, at t = 0, 1, …, 999 (one point per millisecond, customers in turn).
    fn load() -> (Index, Head) {
        let points: Vec<Point> = (0..1_000)
            .map(|i| Point {
                name: "latency".into(),
                timestamp: i,
                value: i as f64,
                dimensions: Dimensions::from_pairs([(
                    "customer_id".into(),
                    format!("c{}", i % 40),
                )]),
            })
            .collect();
        let (mut index, mut head) = (Index::default(), Head::default());
        for b in batches(&points, 100) {
            apply_batch(&mut index, &mut head, &b).unwrap();
        }
        (index, head)
    }

    fn plan(kind: QueryKind, end: TimestampMs, filters: &[(&str, &str)]) -> QueryPlan {
        QueryPlan {
            kind,
            metric: "latency".into(),
            start: 0,
            end,
            filters: filters
                .iter()
                .map(|(k, v)| luminate_model::Filter::equals(*k, *v))
                .collect(),
            group_by: vec!["customer_id".into()],
            interval_ms: None,
            limit: 100,
            timeout: Duration::from_secs(10),
        }
    }

    /// Selected and in-range share of `plan` over the loaded head.
    fn estimate(index: &Index, head: &Head, plan: &QueryPlan) -> u64 {
        let selected = Selected::of(index.tenant(&tenant()), plan);
        let sources: Vec<Source<'_>> = selected
            .metric()
            .map(|m| head.rows(&tenant(), m))
            .unwrap_or_default()
            .into_iter()
            .map(|rows| Source::Rows { rows, floor: None })
            .collect();
        bytes(
            plan,
            &selected,
            share_in_range(&sources, plan.start, plan.end),
            4,
        )
    }

    const SELECTION_OF_40: u64 = SELECTION_FLOOR_BYTES + 40 * SELECTION_BYTES_PER_SERIES;

    #[test]
    fn a_percentile_is_charged_for_every_point_in_its_range() {
        let (index, head) = load();
        let p99 = Aggregation::P99;
        let whole = plan(QueryKind::Aggregate(p99), 1_000, &[]);
        // 1 000 points of 12 bytes; 40 groups of one value in the answer.
        let answer = 40 * ANSWER_POINT_BYTES + 40 * ANSWER_DIMENSIONS_BYTES;
        assert_eq!(
            estimate(&index, &head, &whole),
            QUERY_OVERHEAD_BYTES + SELECTION_OF_40 + 1_000 * 12 + answer
        );
        // Half the span holds half the rows.
        let half = plan(QueryKind::Aggregate(p99), 500, &[]);
        assert_eq!(
            estimate(&index, &head, &half),
            QUERY_OVERHEAD_BYTES + SELECTION_OF_40 + 500 * 12 + answer
        );
        // One customer: its 25 points, one group.
        let one = plan(QueryKind::Aggregate(p99), 1_000, &[("customer_id", "c7")]);
        assert_eq!(
            estimate(&index, &head, &one),
            QUERY_OVERHEAD_BYTES
                + SELECTION_FLOOR_BYTES
                + SELECTION_BYTES_PER_SERIES
                + 25 * 12
                + ANSWER_POINT_BYTES
                + ANSWER_DIMENSIONS_BYTES
        );
    }

    #[test]
    fn moments_are_charged_per_group_and_ranges_for_their_limit() {
        let (index, head) = load();
        let avg = plan(QueryKind::Aggregate(Aggregation::Avg), 1_000, &[]);
        let answer = 40 * ANSWER_POINT_BYTES + 40 * ANSWER_DIMENSIONS_BYTES;
        assert_eq!(
            estimate(&index, &head, &avg),
            QUERY_OVERHEAD_BYTES + SELECTION_OF_40 + 40 * MOMENTS_BYTES + answer
        );
        let mut range = plan(QueryKind::Range, 1_000, &[]);
        range.group_by.clear();
        range.limit = 10;
        assert_eq!(
            estimate(&index, &head, &range),
            QUERY_OVERHEAD_BYTES
                + SELECTION_OF_40
                + 1_000 * TIMED_POINT_BYTES
                + 10 * (ANSWER_POINT_BYTES + ANSWER_DIMENSIONS_BYTES)
        );
    }

    #[test]
    fn bucketed_moments_are_charged_per_group_the_group_by_keys_can_form_not_per_series() {
        let (index, head) = load();
        let mut avg = plan(QueryKind::Aggregate(Aggregation::Avg), 1_000, &[]);
        avg.interval_ms = Some(100);
        // 40 series of 40 customers, 11 buckets (ten, and one for a range the interval does not
        // align with): one accumulator per (customer, bucket).
        let by_customer = 40 * MOMENTS_BYTES + 40 * 11 * BUCKET_MOMENTS_BYTES;
        assert_eq!(
            estimate(&index, &head, &avg),
            QUERY_OVERHEAD_BYTES + SELECTION_OF_40 + by_customer + answer_bytes(&avg, 440, 40)
        );
        // No group-by, or a key no series carries: one group of 11 buckets, however many series.
        for group_by in [vec![], vec!["region".to_string()]] {
            let one = QueryPlan {
                group_by,
                ..avg.clone()
            };
            assert_eq!(
                estimate(&index, &head, &one),
                QUERY_OVERHEAD_BYTES
                    + SELECTION_OF_40
                    + MOMENTS_BYTES
                    + 11 * BUCKET_MOMENTS_BYTES
                    + answer_bytes(&one, 11, 1)
            );
        }
    }

    #[test]
    fn nothing_selected_costs_the_overhead_only() {
        let (index, head) = load();
        let mut unknown = plan(QueryKind::Aggregate(Aggregation::P99), 1_000, &[]);
        unknown.metric = "nope".into();
        assert_eq!(estimate(&index, &head, &unknown), QUERY_OVERHEAD_BYTES);
        let none = plan(QueryKind::Rate, 1_000, &[("customer_id", "nobody")]);
        assert_eq!(estimate(&index, &head, &none), QUERY_OVERHEAD_BYTES);
        let outside = plan(QueryKind::Aggregate(Aggregation::P99), 1_000, &[]);
        let later = QueryPlan {
            start: 5_000,
            end: 6_000,
            ..outside
        };
        assert_eq!(
            estimate(&index, &head, &later),
            QUERY_OVERHEAD_BYTES + SELECTION_OF_40
        );
    }

    #[test]
    fn parallel_point_buffers_are_charged_for_their_merge() {
        let selected = Selected {
            metric: Some(0),
            series: 1,
            groups: 1,
            points: 4 * PARALLEL_ROWS as u64,
        };
        let mut p99 = plan(QueryKind::Aggregate(Aggregation::P99), 1_000, &[]);
        p99.group_by.clear();
        let points = 4 * PARALLEL_ROWS as u64;
        let answer = ANSWER_POINT_BYTES + ANSWER_DIMENSIONS_BYTES;
        let fixed = QUERY_OVERHEAD_BYTES + SELECTION_FLOOR_BYTES + SELECTION_BYTES_PER_SERIES;
        assert_eq!(bytes(&p99, &selected, 1.0, 1), fixed + points * 12 + answer);
        // Four tasks: until the last merge, three quarters of the points are held twice.
        assert_eq!(
            bytes(&p99, &selected, 1.0, 4),
            fixed + points * 12 * 7 / 4 + answer
        );
    }

    #[test]
    fn sources_count_by_their_overlap_with_the_range_above_their_tombstone() {
        let (index, head) = load();
        let m = index
            .tenant(&tenant())
            .unwrap()
            .metric_id("latency")
            .unwrap();
        let rows = head.rows(&tenant(), m);
        let sources: Vec<Source<'_>> = rows
            .iter()
            .map(|&rows| Source::Rows {
                rows,
                floor: Some(250),
            })
            .collect();
        assert_eq!(share_in_range(&sources, 0, 1_000), 0.75);
        assert_eq!(share_in_range(&sources, 0, 250), 0.0);
        assert_eq!(share_in_range(&[], 0, 1_000), 0.0);
    }
}
