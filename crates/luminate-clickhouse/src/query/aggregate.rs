//! Aggregate queries: one value per group over the whole range, ordered by value descending then group
//! key, cut at `limit`; with an interval, also one value per epoch-aligned bucket.
//!
//! Two statements: the first computes, orders and cuts the groups; the second (only with an interval)
//! computes the buckets of the groups that survived the cut. A group's whole-range value cannot be
//! derived from its buckets (percentiles, and integrals whose pairs straddle buckets), so both are
//! computed from the points. Integral sums, per group, each series' `Σ value × Δt` over its points
//! sorted by (timestamp, value).

use std::collections::HashMap;

use luminate_model::query::Aggregation;
use luminate_model::result::{AggregateGroup, BucketValue, GroupKey};
use luminate_model::semantics::cmp_aggregate_groups;
use luminate_model::{QueryResult, StoreError};

use super::{Query, SORTED_POINTS, bucket, decode_error, group_by, lead, trail};
use crate::rowbinary::RowReader;

/// One series' integral from its sorted points `pts`: each point after the first adds
/// `value × (t_i − t_{i−1}) / 1000` (the first has a difference of 0 and adds 0).
const SERIES_INTEGRAL: &str = "arraySum(arrayMap((p, dt) -> tupleElement(p, 2) * (dt / 1000), pts, \
     arrayDifference(arrayMap(p -> tupleElement(p, 1), pts))))";

/// How an aggregation is computed.
#[derive(Debug, Clone, Copy)]
enum Computation {
    /// A SQL aggregate over the values of the group's (or bucket's) points.
    Values(&'static str),
    /// Per series, then summed (see [`SERIES_INTEGRAL`]).
    Integral,
}

/// `rollup`: in the form the hourly rollups answer (avg as sum / count: the projection keeps those).
fn computation(agg: Aggregation, rollup: bool) -> Computation {
    Computation::Values(match agg {
        Aggregation::Avg if rollup => "sum(value) / count()",
        Aggregation::Avg => "avg(value)",
        Aggregation::Sum => "sum(value)",
        Aggregation::Count => "toFloat64(count())",
        Aggregation::Min => "min(value)",
        Aggregation::Max => "max(value)",
        // quantileExact's index is floor(level × n) clamped to n − 1: the contract's position.
        Aggregation::P50 => "quantileExact(0.5)(value)",
        Aggregation::P95 => "quantileExact(0.95)(value)",
        Aggregation::P99 => "quantileExact(0.99)(value)",
        Aggregation::Integral => return Computation::Integral,
    })
}

pub(super) async fn run(q: &Query<'_>, agg: Aggregation) -> Result<QueryResult, StoreError> {
    let mut groups = totals(q, agg).await?;
    groups.sort_by(|a, b| cmp_aggregate_groups((a.value, &a.group_key), (b.value, &b.group_key)));
    let truncated = groups.len() > q.plan.limit;
    groups.truncate(q.plan.limit);
    if let Some(interval_ms) = q.plan.interval_ms
        && !groups.is_empty()
    {
        let keys: Vec<GroupKey> = groups.iter().map(|g| g.group_key.clone()).collect();
        let mut buckets = buckets(q, agg, interval_ms, &keys).await?;
        for g in &mut groups {
            g.points = Some(buckets.remove(&g.group_key).unwrap_or_default());
        }
    }
    Ok(QueryResult::Aggregate {
        results: groups,
        truncated,
    })
}

/// The groups with their whole-range value and count, in the contract's order, at most `limit + 1`.
async fn totals(q: &Query<'_>, agg: Aggregation) -> Result<Vec<AggregateGroup>, StoreError> {
    let g = q.group_list();
    let (g_lead, columns, table, selection) =
        (lead(&g), q.group_columns(), q.points_table(), &q.selection);
    let order_and_cut = format!(
        " ORDER BY v DESC{} LIMIT {}",
        trail(&g),
        q.plan.limit.saturating_add(1)
    );
    let group = group_by(&g);
    let sql = match computation(agg, q.rollup) {
        Computation::Integral => format!(
            "SELECT {g_lead}sum(si) AS v, sum(sn) AS n FROM (SELECT {columns}{SORTED_POINTS} AS pts, \
             length(pts) AS sn, {SERIES_INTEGRAL} AS si FROM {table} WHERE {selection} \
             GROUP BY {g_lead}series){group}{order_and_cut}"
        ),
        Computation::Values(expr) => format!(
            "SELECT {columns}{expr} AS v, count() AS n FROM {table} WHERE {selection}{group}{order_and_cut}"
        ),
    };
    let body = q.fetch(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut groups = Vec::new();
    while !r.is_empty() {
        let group_key = q.read_group_key(&mut r)?;
        let value = r.f64().map_err(decode_error)?;
        let count = r.u64().map_err(decode_error)?;
        // Without groupBy an aggregate over no rows still answers one row; it is no group.
        if count > 0 {
            groups.push(AggregateGroup {
                group_key,
                value,
                count,
                points: None,
            });
        }
    }
    Ok(groups)
}

/// Per group in `keys`, its buckets ordered by time.
async fn buckets(
    q: &Query<'_>,
    agg: Aggregation,
    interval_ms: i64,
    keys: &[GroupKey],
) -> Result<HashMap<GroupKey, Vec<BucketValue>>, StoreError> {
    let (g_lead, columns, table, selection) = (
        lead(&q.group_list()),
        q.group_columns(),
        q.points_table(),
        &q.selection,
    );
    let b = if q.rollup {
        crate::rollups::bucket(interval_ms)
    } else {
        bucket("timestamp", interval_ms)
    };
    let only = q.only_groups(keys);
    let sql = match computation(agg, q.rollup) {
        Computation::Integral => format!(
            "SELECT {g_lead}b, sum(si) AS v, sum(sn) AS n FROM (SELECT {columns}{b} AS b, \
             {SORTED_POINTS} AS pts, length(pts) AS sn, {SERIES_INTEGRAL} AS si FROM {table} \
             WHERE {selection}{only} GROUP BY {g_lead}series, b) GROUP BY {g_lead}b ORDER BY {g_lead}b"
        ),
        Computation::Values(expr) => format!(
            "SELECT {columns}{b} AS b, {expr} AS v, count() AS n FROM {table} \
             WHERE {selection}{only} GROUP BY {g_lead}b ORDER BY {g_lead}b"
        ),
    };
    let body = q.fetch(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut out: HashMap<GroupKey, Vec<BucketValue>> = HashMap::new();
    while !r.is_empty() {
        let key = q.read_group_key(&mut r)?;
        let timestamp = r.i64().map_err(decode_error)?;
        let value = r.f64().map_err(decode_error)?;
        let count = r.u64().map_err(decode_error)?;
        out.entry(key).or_default().push(BucketValue {
            timestamp,
            value,
            count,
        });
    }
    Ok(out)
}
