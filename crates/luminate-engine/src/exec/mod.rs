//! exec: query execution over the head with the exact semantics of CONTRACT §4 (the answers of
//! `luminate_model::reference`). Resolves filters to series ids through the postings first, computes each
//! series' group once, then scans only the selected series' points in `[start, end)`. Knows nothing of
//! how the head is filled or persisted.
//!
//! Every scan calls [`Ticker::tick`] per point, which checks the query's deadline every
//! [`CHECK_EVERY`] points, so a timeout stops the work. Memory per query is bounded by
//! [`MAX_QUERY_VALUES`]: a range query's candidate points and a percentile's value buffer may not exceed
//! it (the number of groups computed is not limited, per the contract).

mod aggregate;
mod range;
mod rate;

use std::collections::HashMap;

use luminate_model::query::QueryKind;
use luminate_model::result::GroupKey;
use luminate_model::{QueryContext, QueryPlan, QueryResult, StoreError, Tenant, TimestampMs};

use crate::head::{Head, MetricHead, Series, TenantHead};
use crate::record::SeriesId;

/// Most values one query may buffer (range candidates, percentile inputs, one series' sorted points).
pub(crate) const MAX_QUERY_VALUES: usize = 50_000_000;
/// Points scanned between two deadline checks.
const CHECK_EVERY: u32 = 4096;

/// Runs `plan` for `tenant`, buffering at most `max_values` values.
pub(crate) fn run(
    head: &Head,
    tenant: &Tenant,
    plan: &QueryPlan,
    ctx: &QueryContext,
    max_values: usize,
) -> Result<QueryResult, StoreError> {
    ctx.check()?;
    let series = match head.tenant(tenant) {
        Some(t) => t
            .metric(&plan.metric)
            .map(|m| select(t, m, &plan.filters))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let mut scan = Scan {
        plan,
        ticker: Ticker {
            ctx,
            since_check: 0,
        },
        max_values,
    };
    match plan.kind {
        QueryKind::Range => range::run(&series, &mut scan),
        QueryKind::Aggregate(agg) => aggregate::run(&series, agg, &mut scan),
        QueryKind::Rate => rate::run(&series, &mut scan),
    }
}

/// The metric's series holding points and matching every filter, by ascending id. A filter on `""`
/// matches series without the key (stored values are never empty).
fn select<'h>(
    tenant: &'h TenantHead,
    metric: &MetricHead,
    filters: &[(String, String)],
) -> Vec<&'h Series> {
    let mut lists: Vec<&[SeriesId]> = filters
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| metric.posting(k, v))
        .collect();
    lists.sort_by_key(|l| l.len());
    let mut ids: Vec<SeriesId> = match lists.split_first() {
        None => metric.series_ids().to_vec(),
        Some((smallest, rest)) => {
            let mut ids = smallest.to_vec();
            for list in rest {
                ids.retain(|id| list.binary_search(id).is_ok());
            }
            ids
        }
    };
    ids.sort_unstable();
    let absent: Vec<&str> = filters
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k.as_str())
        .collect();
    ids.into_iter()
        .map(|id| tenant.series(id))
        .filter(|s| !s.is_empty() && absent.iter().all(|k| s.dims().get(k).is_none()))
        .collect()
}

/// What every scan needs: the plan, the deadline ticker and the memory bound.
struct Scan<'a> {
    plan: &'a QueryPlan,
    ticker: Ticker<'a>,
    max_values: usize,
}

impl<'a> Scan<'a> {
    /// The series' points in `[start, end)`, in arrival order, checking the deadline as it goes.
    fn points_in_range<'s, 'b>(
        &'b mut self,
        series: &'s Series,
    ) -> impl Iterator<Item = Result<(TimestampMs, f64), StoreError>> + use<'s, 'b, 'a> {
        let (start, end) = (self.plan.start, self.plan.end);
        let ticker = &mut self.ticker;
        series
            .timestamps()
            .iter()
            .zip(series.values())
            .filter_map(move |(&t, &v)| match ticker.tick() {
                Err(e) => Some(Err(e)),
                Ok(()) => (t >= start && t < end).then_some(Ok((t, v))),
            })
    }

    /// Collects the series' points in range into `buf` (cleared first), sorted by (timestamp, value).
    fn sorted_points(
        &mut self,
        series: &Series,
        buf: &mut Vec<(TimestampMs, f64)>,
    ) -> Result<(), StoreError> {
        buf.clear();
        for p in self.points_in_range(series) {
            buf.push(p?);
        }
        self.ensure_within_bound(buf.len())?;
        luminate_model::semantics::sort_series_points(buf);
        Ok(())
    }

    /// `QueryTooLarge` once a buffer would pass the bound.
    fn ensure_within_bound(&self, values: usize) -> Result<(), StoreError> {
        if values > self.max_values {
            return Err(StoreError::QueryTooLarge {
                message: format!(
                    "query would buffer more than {} values (the embedded engine's per-query memory bound); \
                     narrow the time range or add filters",
                    self.max_values
                ),
            });
        }
        Ok(())
    }
}

/// Checks the query context every `CHECK_EVERY` points.
struct Ticker<'a> {
    ctx: &'a QueryContext,
    since_check: u32,
}

impl Ticker<'_> {
    fn tick(&mut self) -> Result<(), StoreError> {
        self.since_check += 1;
        if self.since_check >= CHECK_EVERY {
            self.since_check = 0;
            self.ctx.check()?;
        }
        Ok(())
    }
}

/// Each selected series' group, computed once per query.
struct Grouping<'h> {
    /// Group index of `series[i]`.
    of_series: Vec<usize>,
    /// Group-by values of each group, in group-by order (a missing dimension is `""`).
    values: Vec<Vec<&'h str>>,
}

impl<'h> Grouping<'h> {
    fn new(series: &[&'h Series], group_by: &[String]) -> Self {
        let mut index: HashMap<Vec<&'h str>, usize> = HashMap::new();
        let mut values = Vec::new();
        let of_series = series
            .iter()
            .map(|s| {
                let key: Vec<&'h str> = group_by.iter().map(|k| s.dims().get_or_empty(k)).collect();
                match index.get(&key) {
                    Some(&g) => g,
                    None => {
                        let g = values.len();
                        values.push(key.clone());
                        index.insert(key, g);
                        g
                    }
                }
            })
            .collect();
        Self { of_series, values }
    }

    fn key(&self, group: usize, group_by: &[String]) -> GroupKey {
        GroupKey(
            group_by
                .iter()
                .cloned()
                .zip(self.values[group].iter().map(|v| (*v).to_owned()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests;
