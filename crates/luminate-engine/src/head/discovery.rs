//! Discovery over the head (CONTRACT §5): metric names, dimension keys, values by point count, and the
//! cardinality explorer. Answers from the counters alone, never by scanning points; only live metrics,
//! series and values (holding a stored point) are visible.

use std::ops::Bound;

use luminate_model::Tenant;
use luminate_model::result::{KeyCardinality, MetricCardinality, ValueCount};
use luminate_model::semantics::{order_cardinality, order_value_counts};

use super::{Head, MetricHead};

impl Head {
    fn live_metric(&self, tenant: &Tenant, metric: &str) -> Option<&MetricHead> {
        self.tenant(tenant)?.metric(metric).filter(|m| m.is_live())
    }

    /// Sorted names of the tenant's metrics with stored points.
    pub(crate) fn metric_names(&self, tenant: &Tenant) -> Vec<String> {
        let Some(t) = self.tenant(tenant) else {
            return Vec::new();
        };
        t.metrics
            .iter()
            .filter(|(_, m)| m.is_live())
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Sorted keys carried by a stored point of the metric; `None` for an unknown metric.
    pub(crate) fn dimension_keys(&self, tenant: &Tenant, metric: &str) -> Option<Vec<String>> {
        let m = self.live_metric(tenant, metric)?;
        Some(
            m.postings
                .iter()
                .filter(|(_, vals)| vals.values().any(|p| p.points > 0))
                .map(|(k, _)| k.clone())
                .collect(),
        )
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
        let m = self.live_metric(tenant, metric)?;
        let Some(vals) = m.postings.get(key) else {
            return Some(Vec::new());
        };
        // Values are sorted, so those with the prefix are one contiguous run starting at `prefix`.
        let mut out: Vec<ValueCount> = vals
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(v, _)| v.starts_with(prefix))
            .filter(|(_, p)| p.points > 0)
            .map(|(value, p)| ValueCount {
                value: value.clone(),
                points: p.points,
            })
            .collect();
        order_value_counts(&mut out);
        out.truncate(limit);
        Some(out)
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
            .metrics
            .iter()
            .filter(|(name, m)| m.is_live() && metric.is_none_or(|want| want == &***name))
            .map(|(name, m)| {
                let dimensions: Vec<KeyCardinality> = m
                    .postings
                    .iter()
                    .map(|(key, vals)| KeyCardinality {
                        key: key.clone(),
                        distinct_values: vals.values().filter(|p| p.points > 0).count() as u64,
                    })
                    .filter(|k| k.distinct_values > 0)
                    .collect();
                MetricCardinality {
                    metric: name.to_string(),
                    series: m.live_series,
                    dimensions,
                }
            })
            .collect();
        order_cardinality(&mut out);
        out
    }
}
