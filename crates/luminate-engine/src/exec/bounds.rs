//! bounds: the top groups of a percentile without reading every group's points — the benchmark's
//! "exact p95 by customer, top 10" over 100 000 customers, most of whose points cannot matter.
//!
//! Phase A reads each selected series' count and maximum in the range, as a `max` grouped by series
//! would (from the parts' per-series block summaries wherever a block lies inside the range, so no
//! value is buffered). Then, per group of N points whose percentile is its value at index
//! i = [`quantile_index`]`(pct, N)` in `f64::total_cmp` order:
//!
//! - a group with i = N − 1 (a p95 of at most 19 points, a p99 of at most 99) has its maximum as its
//!   percentile;
//! - with at least `limit` such groups, T, the `limit`-th largest of their maxima, is at most the
//!   value of the answer's last group (a maximum as `f64::max` keeps it may read `-0.0` where the
//!   order's is `0.0`: never above it, so T stays a bound);
//! - a group's percentile reaches T only if N − i of its values do, and those lie in the series whose
//!   maximum reaches T. A group whose such series hold fewer points has a percentile below T: strictly
//!   below the answer's last group, so it cannot be in the answer whatever its key.
//!
//! Phase B is the query itself over the series of the groups left. Both phases read the same data:
//! the head's rows are buffered for every group under the head lock (as without bounds) and kept for
//! the groups left, and the parts are those of the one snapshot taken under that lock. `truncated`
//! comes from phase A's count of groups with points. When fewer than `limit` groups are exact, or the
//! groups are too few for pruning to pay, the query reads every group as before.

use luminate_model::QueryPlan;
use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::semantics::quantile_index;

use super::Prepared;
use super::partial::{Compact, Partial};
use super::select::{Groups, Selection, SeriesMap};
use crate::buffer::filled;
use crate::index::TenantIndex;
use crate::record::SeriesId;

/// A percentile over fewer groups than this many per place of its limit reads every group: phase A
/// costs about as much as reading a few points per group.
const MIN_GROUPS_PER_PLACE: usize = 8;

/// The plan of phase A for `plan`: each selected series' count and maximum. `None` unless `plan` is a
/// percentile without an interval (with one, every bucket of every group is answered).
pub(crate) fn phase_a_plan(plan: &QueryPlan) -> Option<QueryPlan> {
    let QueryKind::Aggregate(agg) = plan.kind else {
        return None;
    };
    agg.percentile()?;
    if plan.interval_ms.is_some() || plan.limit == 0 {
        return None;
    }
    Some(QueryPlan {
        kind: QueryKind::Aggregate(Aggregation::Max),
        ..plan.clone()
    })
}

/// The most points a group may hold for its percentile `pct` to be its maximum (its index N − 1):
/// 20 for p95, 100 for p99, 2 for p50.
pub(super) fn exact_size(pct: u32) -> u64 {
    (1..=100_000u64)
        .take_while(|&n| n - quantile_index(pct, n as usize) as u64 == 1)
        .last()
        .unwrap_or(0)
}

/// Phase B: the query over the groups phase A could not rule out.
#[derive(Debug)]
pub(crate) struct Narrowed<'p> {
    /// The query over those groups' series (group ids unchanged).
    pub prepared: Prepared<'p>,
    /// By group: whether it is read.
    pub keep: Vec<bool>,
    /// More groups than the limit hold points in the range.
    pub truncated: bool,
}

impl<'p> Prepared<'p> {
    /// Phase A of this percentile query, under `plan` (its [`phase_a_plan`]): every selected series is
    /// a group of its own. `None` when the groups are too few for pruning to pay, or when fewer than
    /// `limit` groups hold at most the exact size of points in all (the index's stored counts, `ti`):
    /// over the whole data phase A would then find too few exact groups and the query read every
    /// group after it, phase A's pass over every series spent for nothing (groups of customers that
    /// each hold hundreds of points). A range narrower than the data may make more groups small; such
    /// a query reads every group, as without bounds.
    pub(crate) fn per_series<'q>(
        &self,
        plan: &'q QueryPlan,
        ti: Option<&TenantIndex>,
    ) -> Option<Prepared<'q>> {
        let groups = self.selection.groups.count;
        let limit = self.plan.limit;
        if groups <= limit.saturating_mul(MIN_GROUPS_PER_PLACE) {
            return None;
        }
        let QueryKind::Aggregate(agg) = self.plan.kind else {
            return None;
        };
        let exact_size = exact_size(agg.percentile()?);
        let mut stored = filled(groups, 0u64);
        for &id in &self.selection.series {
            stored[self.map.get(id)? as usize] += ti?.series_points(id);
        }
        let small = stored
            .iter()
            .filter(|&&n| (1..=exact_size).contains(&n))
            .count();
        if small < limit {
            return None;
        }
        let series = self.selection.series.clone();
        let positions: Vec<u32> = (0..series.len() as u32).collect();
        let map = SeriesMap::from_owned(&series, positions);
        Some(Prepared {
            plan,
            selection: Selection {
                metric: self.selection.metric,
                groups: Groups {
                    width: 0,
                    values: Vec::new(),
                    count: series.len(),
                },
                series,
                group_of: Vec::new(),
            },
            map,
            stored_points: 0,
        })
    }

    /// Phase B from phase A's per-series moments (see the module doc), or `None` when fewer than
    /// `limit` groups are known exactly: the query then reads every group.
    pub(crate) fn narrowed(&self, per_series: Partial) -> Option<Narrowed<'p>> {
        let QueryKind::Aggregate(agg) = self.plan.kind else {
            return None;
        };
        let pct = agg.percentile()?;
        let Partial::Moments {
            mut totals,
            mut compact,
            ..
        } = per_series
        else {
            return None;
        };
        // Each series' rows and maximum: phase A keeps them apart from moments over many series.
        let pairs: Vec<(u64, f64)> = match compact {
            Compact::CountMaxes(pairs) if totals.is_empty() => pairs,
            ref mut other => {
                other.fold_into(&mut totals);
                totals.iter().map(|m| (m.count, m.max)).collect()
            }
        };
        let series = &self.selection.series;
        if pairs.len() != series.len() {
            return None;
        }
        let limit = self.plan.limit;
        let groups = self.selection.groups.count;
        // Each series with its group and moments. The map is read again in each pass rather than
        // copied: a new array of 2 M entries costs more in page faults than the lookups.
        let each = || {
            series
                .iter()
                .zip(&pairs)
                .filter(|&(_, &(count, _))| count > 0)
                .map(|(&id, &(count, max))| (id, self.map.get(id), count, max))
        };
        let mut counts = filled(groups, 0u64);
        let mut maxima = vec![f64::NEG_INFINITY; groups];
        for (_, g, count, max) in each() {
            // A series of the selection always has a group.
            let g = g? as usize;
            counts[g] += count;
            maxima[g] = maxima[g].max(max);
        }
        // Points of its own a group's percentile needs at or above a value to reach it.
        let needed = |n: u64| n - quantile_index(pct, n as usize) as u64;
        let mut exact: Vec<f64> = counts
            .iter()
            .zip(&maxima)
            .filter(|&(&n, _)| n > 0 && needed(n) == 1)
            .map(|(_, &max)| max)
            .collect();
        let last = limit.checked_sub(1)?;
        if exact.len() <= last {
            return None;
        }
        let (_, &mut bound, _) = exact.select_nth_unstable_by(last, |a, b| b.total_cmp(a));
        // Every value at or above `bound` in `total_cmp` order is `>=` it, so a series holding one has
        // a maximum `>=` it (a zero of the other sign only counts a series more: never a point less).
        let mut reaching = filled(groups, 0u64);
        for (_, g, count, max) in each() {
            if max >= bound {
                reaching[g? as usize] += count;
            }
        }
        let keep: Vec<bool> = counts
            .iter()
            .zip(&reaching)
            .map(|(&n, &r)| n > 0 && r >= needed(n))
            .collect();
        let mut kept: Vec<SeriesId> = Vec::new();
        let mut tags: Vec<u32> = Vec::new();
        let mut stored_points = 0;
        for (id, g, count, _) in each() {
            let g = g?;
            if keep[g as usize] {
                kept.push(id);
                tags.push(g);
                stored_points += count;
            }
        }
        let map = SeriesMap::new(&kept, &tags);
        Some(Narrowed {
            prepared: Prepared {
                plan: self.plan,
                selection: Selection {
                    metric: self.selection.metric,
                    series: kept,
                    group_of: Vec::new(),
                    groups: self.selection.groups.clone(),
                },
                map,
                stored_points,
            },
            keep,
            truncated: counts.iter().filter(|&&n| n > 0).count() > limit,
        })
    }
}
