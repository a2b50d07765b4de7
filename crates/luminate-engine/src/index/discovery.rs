//! Discovery over the index (CONTRACT §5): metric names, dimension keys, values by stored points, and
//! the cardinality explorer. Answers from the counters alone, never by scanning points; only live
//! metrics, series and values (holding a stored point) are visible.

use luminate_model::Tenant;
use luminate_model::result::{KeyCardinality, MetricCardinality, ValueCount};
use luminate_model::semantics::{order_cardinality, order_value_counts};

use super::{Index, MetricIndex, PostingId, TenantIndex};

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
        let mut out: Vec<(&str, u64)> = live_values(m, m.postings_of_key(key))
            .map(|p| (t.strings.resolve(p.value), p.points))
            .filter(|(v, _)| v.starts_with(prefix))
            .collect();
        // Only the first `limit` are returned: order by (points desc, value) and build strings for those.
        let order = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if out.len() > limit {
            out.select_nth_unstable_by(limit, order);
            out.truncate(limit);
        }
        let mut values: Vec<ValueCount> = out
            .into_iter()
            .map(|(value, points)| ValueCount {
                value: value.to_owned(),
                points,
            })
            .collect();
        order_value_counts(&mut values);
        Some(values)
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

/// The postings among `ids` whose value is live (carried by a series holding a point).
fn live_values<'m>(
    m: &'m MetricIndex,
    ids: &'m [PostingId],
) -> impl Iterator<Item = &'m super::metric::Posting> {
    ids.iter()
        .map(|&p| &m.postings[p as usize])
        .filter(|p| p.live_series > 0)
}
