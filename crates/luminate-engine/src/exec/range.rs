//! Range answers: raw points ordered by (timestamp, series dimensions, value), cut at `limit`.

use std::cmp::Ordering;

use luminate_model::result::RangePoint;
use luminate_model::{Dimensions, QueryResult, TimestampMs};

use super::Finish;
use super::partial::Partial;
use super::points::Points;
use crate::buffer::filled;

/// A candidate point: timestamp, rank of its series in dimension order, value.
type Ranked = (TimestampMs, u32, f64);

/// The order of `semantics::cmp_range_points`, with the series compared by rank: ranks follow the
/// dimensions' order and a metric's series have distinct dimensions, so the two orders agree.
fn cmp_ranked(a: &Ranked, b: &Ranked) -> Ordering {
    a.0.cmp(&b.0)
        .then(a.1.cmp(&b.1))
        .then_with(|| a.2.total_cmp(&b.2))
}

/// Rows are tagged by position in the selection.
pub(super) fn finish(out: &Finish<'_>, partial: Partial) -> QueryResult {
    let rows = match partial {
        Partial::Rows(rows) => rows,
        Partial::Moments { .. } => Points::new(true),
    };
    let series = &out.selection.series;
    let limit = out.plan.limit;
    let truncated = rows.len() > limit;
    // Only rows up to the limit-th smallest timestamp can be returned: keep those (ties included), so
    // that only their series are ranked (`None`: nothing is returned).
    let cutoff = if truncated {
        limit.checked_sub(1).map(|last| {
            let mut times = rows.times.clone();
            *times.select_nth_unstable(last).1
        })
    } else {
        Some(TimestampMs::MAX)
    };
    let kept = || (0..rows.len()).filter(|&i| cutoff.is_some_and(|c| rows.times[i] <= c));
    // Rank only the series that have a point in range, by their dimensions.
    let mut present = filled(series.len(), false);
    for i in kept() {
        present[rows.tags[i] as usize] = true;
    }
    let mut by_dims: Vec<u32> = (0..series.len() as u32)
        .filter(|&slot| present[slot as usize])
        .collect();
    if let Some(ti) = out.ti {
        by_dims.sort_unstable_by(|&a, &b| ti.cmp_dims(series[a as usize], series[b as usize]));
    }
    let mut rank_of = filled(series.len(), 0u32);
    for (rank, &slot) in by_dims.iter().enumerate() {
        rank_of[slot as usize] = rank as u32;
    }
    let mut ranked: Vec<Ranked> = kept()
        .map(|i| {
            (
                rows.times[i],
                rank_of[rows.tags[i] as usize],
                rows.values[i],
            )
        })
        .collect();
    drop(rows);
    if ranked.len() > limit {
        // Only the first `limit` rows are returned: select them, then sort just those.
        ranked.select_nth_unstable_by(limit, cmp_ranked);
        ranked.truncate(limit);
    }
    ranked.sort_unstable_by(cmp_ranked);
    // Dimensions are built once per returned series.
    let mut dims: Vec<Option<Dimensions>> = vec![None; by_dims.len()];
    let results = ranked
        .into_iter()
        .map(|(timestamp, rank, value)| {
            let d = dims[rank as usize].get_or_insert_with(|| {
                let id = series[by_dims[rank as usize] as usize];
                out.ti
                    .map(|ti| ti.series(id).dimensions())
                    .unwrap_or_default()
            });
            RangePoint {
                timestamp,
                value,
                dimensions: d.clone(),
            }
        })
        .collect();
    QueryResult::Range { results, truncated }
}
