//! Discovery over the index (CONTRACT §5): metric names, dimension keys, values by stored points, and
//! the cardinality explorer. Answers from the counters alone, never by scanning points; only live
//! metrics, series and values (holding a stored point) are visible.

use std::cmp::Ordering;

use luminate_model::Tenant;
use luminate_model::result::{KeyCardinality, MetricCardinality, ValueCount};
use luminate_model::semantics::order_cardinality;

use super::{Index, MetricIndex, PostingId, StrId, TenantIndex};

impl Index {
    fn live_metric(&self, tenant: &Tenant, metric: &str) -> Option<(&TenantIndex, &MetricIndex)> {
        let t = self.tenant(tenant)?;
        let m = t.metric(t.metric_id(metric)?);
        m.is_live().then_some((t, m))
    }

    /// Sorted names of the tenant's metrics with stored points.
    pub(crate) fn metric_names(&self, tenant: &Tenant) -> Vec<String> {
        let Some(t) = self.tenant(tenant) else {
            return Vec::new();
        };
        t.by_name
            .iter()
            .map(|&m| t.metric(m))
            .filter(|m| m.is_live())
            .map(|m| t.strings.resolve(m.name).to_owned())
            .collect()
    }

    /// Sorted keys carried by a stored point of the metric; `None` for an unknown metric.
    pub(crate) fn dimension_keys(&self, tenant: &Tenant, metric: &str) -> Option<Vec<String>> {
        let (t, m) = self.live_metric(tenant, metric)?;
        let mut keys: Vec<String> = m
            .keys()
            .filter(|(_, postings)| live_values(m, postings).next().is_some())
            .map(|(k, _)| t.strings.resolve(k).to_owned())
            .collect();
        keys.sort_unstable();
        Some(keys)
    }

    /// Values of `key` starting with `prefix`, by stored points descending then value, at most `limit`.
    pub(crate) fn dimension_values(
        &self,
        tenant: &Tenant,
        metric: &str,
        key: &str,
        prefix: &str,
        limit: usize,
    ) -> Option<Vec<ValueCount>> {
        let (t, m) = self.live_metric(tenant, metric)?;
        let Some(key) = t.strings.get(key) else {
            return Some(Vec::new());
        };
        let postings = live_values(m, m.postings_of_key(key));
        let mut out: Vec<(StrId, u64)> = if prefix.is_empty() {
            postings.map(|p| (p.value, p.points)).collect()
        } else {
            postings
                .filter(|p| t.strings.resolve(p.value).starts_with(prefix))
                .map(|p| (p.value, p.points))
                .collect()
        };
        top_values(&mut out, limit, |a, b| {
            t.strings.resolve(a).cmp(t.strings.resolve(b))
        });
        // Strings are built for the returned values only.
        Some(
            out.into_iter()
                .map(|(value, points)| ValueCount {
                    value: t.strings.resolve(value).to_owned(),
                    points,
                })
                .collect(),
        )
    }

    /// Live series per metric and distinct live values per key, largest first (ties by name); only
    /// `metric` when given (empty when unknown).
    pub(crate) fn cardinality(
        &self,
        tenant: &Tenant,
        metric: Option<&str>,
    ) -> Vec<MetricCardinality> {
        let Some(t) = self.tenant(tenant) else {
            return Vec::new();
        };
        let mut out: Vec<MetricCardinality> = t
            .by_name
            .iter()
            .map(|&m| t.metric(m))
            .filter(|m| m.is_live() && metric.is_none_or(|want| want == t.strings.resolve(m.name)))
            .map(|m| MetricCardinality {
                metric: t.strings.resolve(m.name).to_owned(),
                series: m.live_series,
                dimensions: m
                    .keys()
                    .map(|(key, postings)| KeyCardinality {
                        key: t.strings.resolve(key).to_owned(),
                        distinct_values: live_values(m, postings).count() as u64,
                    })
                    .filter(|k| k.distinct_values > 0)
                    .collect(),
            })
            .collect();
        order_cardinality(&mut out);
        out
    }
}

/// Keeps the first `limit` of `values` in discovery's order — stored points descending, ties by value
/// (`by_value` compares two values' strings) — and sorts them. Selects by points alone first, so only
/// the values tied with the `limit`-th count are compared as strings: the top 100 of 100 000 customers
/// resolves a few hundred strings, not 100 000.
fn top_values(
    values: &mut Vec<(StrId, u64)>,
    limit: usize,
    by_value: impl Fn(StrId, StrId) -> Ordering,
) {
    if values.len() > limit {
        let Some(last) = limit.checked_sub(1) else {
            values.clear();
            return;
        };
        let (_, &mut (_, boundary), _) = values.select_nth_unstable_by(last, |a, b| b.1.cmp(&a.1));
        // Before `last` nothing has fewer points than the boundary, after it nothing more.
        values.retain(|v| v.1 >= boundary);
        if values.len() > limit {
            let above = values.iter().filter(|v| v.1 > boundary).count();
            // Those above the boundary first (an unstable partition: the tied follow).
            values.sort_unstable_by_key(|v| v.1 <= boundary);
            let tied = &mut values[above..];
            let places = limit - above;
            tied.select_nth_unstable_by(places - 1, |a, b| by_value(a.0, b.0));
            values.truncate(limit);
        }
    }
    values.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| by_value(a.0, b.0)));
}

/// The postings among `ids` whose value is live (carried by a series holding a point).
fn live_values<'m>(
    m: &'m MetricIndex,
    ids: &'m [PostingId],
) -> impl Iterator<Item = &'m super::metric::Posting> {
    ids.iter()
        .map(|&p| &m.postings[p as usize])
        .filter(|p| p.live_series > 0)
}
