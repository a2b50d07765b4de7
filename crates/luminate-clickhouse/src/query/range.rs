//! Range queries: raw points ordered by timestamp, then series, then value.
//!
//! The series order compares the sorted (key, value) pairs, so the SQL orders by the array of
//! `(key, value)` tuples, which ClickHouse compares lexicographically like Rust's
//! `Vec<(String, String)>`; the cut at `limit` is therefore the contract's.
//!
//! That order needs both dimension arrays of every row it sorts, and a customer with a million points
//! has a million rows to sort for its first 10 000. So the rows are first bounded by time: the first
//! `limit + 1` points in the full order all lie at or before the `limit + 1`-th smallest timestamp
//! (found from the timestamp column alone), and so do its ties. Only the rows up to it are then read
//! with their arrays and sorted. With fewer points than that, the bound is the last timestamp and
//! bounds nothing.

use luminate_model::result::RangePoint;
use luminate_model::semantics::cmp_range_points;
use luminate_model::{Dimensions, QueryResult, StoreError};

use super::{Query, decode_error};
use crate::rowbinary::RowReader;

pub(super) async fn run(q: &Query<'_>) -> Result<QueryResult, StoreError> {
    let (table, selection, cut) = (
        q.points_table(),
        &q.selection,
        q.plan.limit.saturating_add(1),
    );
    // `max` of no rows is 0; then no row is selected either way.
    let bound = format!(
        "(SELECT max(t) FROM (SELECT timestamp AS t FROM {table} WHERE {selection} \
         ORDER BY t LIMIT {cut}))"
    );
    let sql = format!(
        "SELECT timestamp, value, dim_keys, dim_values FROM {table} \
         WHERE {selection} AND timestamp <= {bound} \
         ORDER BY timestamp, arrayMap((k, v) -> (k, v), dim_keys, dim_values), value LIMIT {cut}"
    );
    let body = q.fetch(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut results = Vec::new();
    while !r.is_empty() {
        let timestamp = r.i64().map_err(decode_error)?;
        let value = r.f64().map_err(decode_error)?;
        let keys = r.strings().map_err(decode_error)?;
        let values = r.strings().map_err(decode_error)?;
        results.push(RangePoint {
            timestamp,
            value,
            dimensions: Dimensions::from_pairs(keys.into_iter().zip(values)),
        });
    }
    // ClickHouse treats -0.0 and 0.0 as equal where the contract's total order does not; sorting the
    // (already ordered) rows again makes the order exactly the contract's.
    results.sort_by(|a, b| {
        cmp_range_points(
            (a.timestamp, &a.dimensions, a.value),
            (b.timestamp, &b.dimensions, b.value),
        )
    });
    let truncated = results.len() > q.plan.limit;
    results.truncate(q.plan.limit);
    Ok(QueryResult::Range { results, truncated })
}
