//! Range queries: raw points ordered by (timestamp, series, value), cut at `limit`.

use std::cmp::Ordering;

use luminate_model::result::RangePoint;
use luminate_model::{QueryResult, StoreError, TimestampMs};

use super::Scan;
use crate::head::Series;

/// A candidate point: timestamp, rank of its series in dimension order, value.
type Row = (TimestampMs, u32, f64);

/// The order of `semantics::cmp_range_points`, with the series compared by rank: ranks follow the
/// dimensions' order and a metric's series have distinct dimensions, so the two orders agree.
fn cmp_rows(a: &Row, b: &Row) -> Ordering {
    a.0.cmp(&b.0)
        .then(a.1.cmp(&b.1))
        .then_with(|| a.2.total_cmp(&b.2))
}

pub(super) fn run(series: &[&Series], scan: &mut Scan<'_>) -> Result<QueryResult, StoreError> {
    let mut by_dims: Vec<&Series> = series.to_vec();
    by_dims.sort_by(|a, b| a.dims().cmp(b.dims()));
    let mut rows: Vec<Row> = Vec::new();
    for (rank, s) in by_dims.iter().enumerate() {
        for p in scan.points_in_range(s) {
            let (t, v) = p?;
            rows.push((t, rank as u32, v));
        }
        scan.ensure_within_bound(rows.len())?;
    }
    let limit = scan.plan.limit;
    let truncated = rows.len() > limit;
    if truncated {
        // Only the first `limit` rows are returned: select them, then sort just those.
        rows.select_nth_unstable_by(limit, cmp_rows);
        rows.truncate(limit);
    }
    rows.sort_unstable_by(cmp_rows);
    let results = rows
        .into_iter()
        .map(|(timestamp, rank, value)| RangePoint {
            timestamp,
            value,
            dimensions: by_dims[rank as usize].dims().clone(),
        })
        .collect();
    Ok(QueryResult::Range { results, truncated })
}
