//! Rate queries: per series, each consecutive pair of points (sorted by timestamp, value) adds
//! `max(0, v_i − v_{i−1})` to the bucket of `t_i`; a bucket's rate is the group's sum divided by the
//! interval in seconds. Groups are ordered by key and cut at `limit`.
//!
//! 18.16 has no window functions, so each series' points are gathered with `groupArray`, sorted with
//! `arraySort`, differenced with `arrayDifference`, and the pairs are turned back into rows with
//! `ARRAY JOIN` (dropping the first point, which has no predecessor). Two statements: the groups
//! (a group with a single point per series has no rate point but is still a result), then the points
//! of the groups that survived the cut.

use std::collections::HashMap;

use luminate_model::result::{GroupKey, RateGroup, RatePoint};
use luminate_model::{QueryResult, StoreError};

use super::{Query, SORTED_POINTS, bucket, decode_error, lead};
use crate::rowbinary::RowReader;

pub(super) async fn run(q: &Query<'_>) -> Result<QueryResult, StoreError> {
    // The plan's checks make the interval present; the reference uses the same fallback.
    let interval_ms = q.plan.interval_ms.unwrap_or(1_000);
    let (keys, truncated) = groups(q).await?;
    let mut points = if keys.is_empty() {
        HashMap::new()
    } else {
        rate_points(q, interval_ms, &keys).await?
    };
    let results = keys
        .into_iter()
        .map(|group_key| RateGroup {
            points: points.remove(&group_key).unwrap_or_default(),
            group_key,
        })
        .collect();
    Ok(QueryResult::Rate { results, truncated })
}

/// The groups by key, at most `limit`, and whether there were more. Without groupBy there is always
/// exactly one group, with or without points.
async fn groups(q: &Query<'_>) -> Result<(Vec<GroupKey>, bool), StoreError> {
    if q.plan.group_by.is_empty() {
        return Ok((vec![GroupKey::default()], false));
    }
    let g = q.group_list();
    let columns = q.group_columns();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} GROUP BY {g} ORDER BY {g} LIMIT {}",
        columns.trim_end_matches(", "),
        q.points_table(),
        q.selection,
        q.plan.limit.saturating_add(1)
    );
    let body = q.fetch(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut keys = Vec::new();
    while !r.is_empty() {
        keys.push(q.read_group_key(&mut r)?);
    }
    keys.sort_by(GroupKey::cmp_values);
    let truncated = keys.len() > q.plan.limit;
    keys.truncate(q.plan.limit);
    Ok((keys, truncated))
}

/// The rate points of the groups in `keys`, by group, ordered by time.
async fn rate_points(
    q: &Query<'_>,
    interval_ms: i64,
    keys: &[GroupKey],
) -> Result<HashMap<GroupKey, Vec<RatePoint>>, StoreError> {
    let sql = format!(
        "SELECT {g_lead}{b} AS b, sum(greatest(d, 0)) / ({interval_ms} / 1000) AS r FROM (\
         SELECT {columns}{SORTED_POINTS} AS pts, \
         arrayPopFront(arrayMap(p -> tupleElement(p, 1), pts)) AS ts, \
         arrayPopFront(arrayDifference(arrayMap(p -> tupleElement(p, 2), pts))) AS ds \
         FROM {table} WHERE {selection}{only} GROUP BY {g_lead}series) \
         ARRAY JOIN ts AS t, ds AS d GROUP BY {g_lead}b ORDER BY {g_lead}b",
        g_lead = lead(&q.group_list()),
        b = bucket("t", interval_ms),
        columns = q.group_columns(),
        table = q.points_table(),
        selection = q.selection,
        only = q.only_groups(keys),
    );
    let body = q.fetch(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut out: HashMap<GroupKey, Vec<RatePoint>> = HashMap::new();
    while !r.is_empty() {
        let key = q.read_group_key(&mut r)?;
        let timestamp = r.i64().map_err(decode_error)?;
        let rate = r.f64().map_err(decode_error)?;
        out.entry(key)
            .or_default()
            .push(RatePoint { timestamp, rate });
    }
    Ok(out)
}
