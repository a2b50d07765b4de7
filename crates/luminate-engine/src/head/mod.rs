//! head: the in-memory data — per tenant, the series table (dense ids → dimensions and point columns) and
//! per metric the series index (dimensions → id), postings (key → value → series ids) and the point
//! counts discovery needs. Knows nothing of files or threads: the commit pipeline applies records to it
//! in WAL order (and replay applies the same records the same way), `exec` reads it.
//!
//! Invariants, which `apply_batch` and `delete_before` keep:
//! - `TenantHead::series[id].id == id`: ids are dense per tenant, assigned in log order, never reused.
//! - A metric's `points` is the sum of its series' lengths; a posting's `points` the sum over its series.
//! - A series is *live* when it holds a point, a metric when one of its series is. `live_series` and
//!   `live_metrics` count them. Only live things are visible to discovery and count against limits; a
//!   series whose points were all deleted keeps its id (records refer to it) but is otherwise invisible.
//! - Series ids in `MetricHead::series` and in every posting are ascending (ids only grow).

mod discovery;
mod staging;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use luminate_model::{Dimensions, Tenant, TimestampMs};

use crate::record::{SeriesId, WriteBatch};
pub(crate) use staging::Staging;

/// All tenants' in-memory data.
#[derive(Debug, Default)]
pub(crate) struct Head {
    tenants: HashMap<Tenant, TenantHead>,
}

/// One tenant's series and metrics.
#[derive(Debug, Default)]
pub(crate) struct TenantHead {
    /// Indexed by `SeriesId`.
    series: Vec<Series>,
    /// Sorted by name, so discovery lists them in order.
    metrics: BTreeMap<Arc<str>, MetricHead>,
    live_metrics: u64,
}

/// One metric's series index, postings and counts.
#[derive(Debug, Default)]
pub(crate) struct MetricHead {
    by_dims: HashMap<Arc<Dimensions>, SeriesId>,
    /// Every series of the metric, ascending.
    series: Vec<SeriesId>,
    postings: BTreeMap<String, BTreeMap<String, Posting>>,
    live_series: u64,
    points: u64,
}

/// The series carrying one dimension value.
#[derive(Debug, Default)]
pub(crate) struct Posting {
    /// Ascending.
    series: Vec<SeriesId>,
    /// Stored points of those series: discovery orders values by it.
    points: u64,
}

/// One series: identity and its points in arrival order (two parallel columns).
#[derive(Debug)]
pub(crate) struct Series {
    // Shared with the metric map key, so a metric name is stored once per tenant.
    metric: Arc<str>,
    // Shared with the metric's `by_dims` key.
    dims: Arc<Dimensions>,
    timestamps: Vec<TimestampMs>,
    values: Vec<f64>,
}

impl Head {
    /// The tenant's data, if it ever wrote.
    pub(crate) fn tenant(&self, tenant: &Tenant) -> Option<&TenantHead> {
        self.tenants.get(tenant)
    }

    /// Tenants with at least one stored point.
    pub(crate) fn live_tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants
            .iter()
            .filter(|(_, t)| t.live_metrics > 0)
            .map(|(name, _)| name)
    }

    /// Applies a write batch: defines its new series, appends its points. Checks the batch against the
    /// head first and changes nothing when it does not fit (ids out of order, unknown series).
    pub(crate) fn apply_batch(&mut self, batch: &WriteBatch) -> Result<(), String> {
        let tenant = self.tenants.entry(batch.tenant.clone()).or_default();
        let known = tenant.series.len();
        let mut defined = HashSet::new();
        for (i, def) in batch.new_series.iter().enumerate() {
            if def.id as usize != known + i {
                return Err(format!(
                    "series {} defined where series {} was expected",
                    def.id,
                    known + i
                ));
            }
            let exists = tenant
                .metrics
                .get(def.metric.as_str())
                .is_some_and(|m| m.by_dims.contains_key(&def.dims));
            if exists || !defined.insert((def.metric.as_str(), &def.dims)) {
                return Err(format!(
                    "series {} redefines an existing series of metric {:?}",
                    def.id, def.metric
                ));
            }
        }
        let total = known + batch.new_series.len();
        if let Some(p) = batch.points.iter().find(|p| p.series as usize >= total) {
            return Err(format!(
                "point refers to undefined series {} (tenant has {total})",
                p.series
            ));
        }

        for def in &batch.new_series {
            tenant.define_series(def.id, &def.metric, &def.dims);
        }
        let mut added: HashMap<SeriesId, u64> = HashMap::new();
        for p in &batch.points {
            let series = &mut tenant.series[p.series as usize];
            series.timestamps.push(p.timestamp);
            series.values.push(p.value);
            *added.entry(p.series).or_default() += 1;
        }
        for (id, n) in added {
            tenant.count_points(id, n as i64);
        }
        Ok(())
    }

    /// Deletes the metric's points with timestamp `< before`; returns how many were deleted.
    pub(crate) fn delete_before(
        &mut self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> u64 {
        let Some(t) = self.tenants.get_mut(tenant) else {
            return 0;
        };
        let Some(ids) = t.metrics.get(metric).map(|m| m.series.clone()) else {
            return 0;
        };
        let mut deleted = 0;
        for id in ids {
            let s = &mut t.series[id as usize];
            let before_len = s.timestamps.len();
            let mut kept = 0;
            for i in 0..before_len {
                if s.timestamps[i] >= before {
                    s.timestamps[kept] = s.timestamps[i];
                    s.values[kept] = s.values[i];
                    kept += 1;
                }
            }
            s.timestamps.truncate(kept);
            s.values.truncate(kept);
            let removed = (before_len - kept) as u64;
            if removed > 0 {
                t.count_points(id, -(removed as i64));
                deleted += removed;
            }
        }
        deleted
    }
}

impl TenantHead {
    /// The metric's index, if the metric ever had a series.
    pub(crate) fn metric(&self, name: &str) -> Option<&MetricHead> {
        self.metrics.get(name)
    }

    /// A series by id (ids come from this tenant's postings, so they exist).
    pub(crate) fn series(&self, id: SeriesId) -> &Series {
        &self.series[id as usize]
    }

    fn define_series(&mut self, id: SeriesId, metric: &str, dims: &Dimensions) {
        let metric_key: Arc<str> = match self.metrics.get_key_value(metric) {
            Some((k, _)) => k.clone(),
            None => Arc::from(metric),
        };
        let dims = Arc::new(dims.clone());
        let m = self.metrics.entry(metric_key.clone()).or_default();
        m.by_dims.insert(dims.clone(), id);
        m.series.push(id);
        for (k, v) in dims.pairs() {
            let posting = m
                .postings
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default();
            posting.series.push(id);
        }
        self.series.push(Series {
            metric: metric_key,
            dims,
            timestamps: Vec::new(),
            values: Vec::new(),
        });
    }

    /// Moves the counters after series `id` gained (`delta > 0`) or lost points; its columns already
    /// hold the new length.
    fn count_points(&mut self, id: SeriesId, delta: i64) {
        let s = &self.series[id as usize];
        let len = s.timestamps.len() as i64;
        let Some(m) = self.metrics.get_mut(&s.metric) else {
            return;
        };
        let was_live = len - delta > 0;
        let is_live = len > 0;
        let metric_was_live = m.live_series > 0;
        m.points = m.points.saturating_add_signed(delta);
        match (was_live, is_live) {
            (false, true) => m.live_series += 1,
            (true, false) => m.live_series -= 1,
            _ => {}
        }
        for (k, v) in s.dims.pairs() {
            if let Some(p) = m.postings.get_mut(k).and_then(|vals| vals.get_mut(v)) {
                p.points = p.points.saturating_add_signed(delta);
            }
        }
        match (metric_was_live, m.live_series > 0) {
            (false, true) => self.live_metrics += 1,
            (true, false) => self.live_metrics -= 1,
            _ => {}
        }
    }
}

impl MetricHead {
    /// Every series of the metric, ascending.
    pub(crate) fn series_ids(&self) -> &[SeriesId] {
        &self.series
    }

    /// Series carrying `key = value`, ascending (empty when none).
    pub(crate) fn posting(&self, key: &str, value: &str) -> &[SeriesId] {
        self.postings
            .get(key)
            .and_then(|vals| vals.get(value))
            .map_or(&[], |p| &p.series)
    }

    /// True when a point of the metric is stored.
    pub(crate) fn is_live(&self) -> bool {
        self.live_series > 0
    }
}

impl Series {
    /// The series' dimensions.
    pub(crate) fn dims(&self) -> &Dimensions {
        &self.dims
    }

    /// Timestamps in arrival order.
    pub(crate) fn timestamps(&self) -> &[TimestampMs] {
        &self.timestamps
    }

    /// Values, parallel to `timestamps`.
    pub(crate) fn values(&self) -> &[f64] {
        &self.values
    }

    /// True when the series holds no point.
    pub(crate) fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{SeriesDef, SeriesPoint};

    fn dims(pairs: &[(&str, &str)]) -> Dimensions {
        Dimensions::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    fn batch(new: &[(u32, &str, Dimensions)], points: &[(u32, i64)]) -> WriteBatch {
        WriteBatch {
            tenant: Tenant::new("t"),
            new_series: new
                .iter()
                .map(|(id, m, d)| SeriesDef {
                    id: *id,
                    metric: (*m).to_owned(),
                    dims: d.clone(),
                })
                .collect(),
            points: points
                .iter()
                .map(|&(series, timestamp)| SeriesPoint {
                    series,
                    timestamp,
                    value: 1.0,
                })
                .collect(),
        }
    }

    #[test]
    fn counts_follow_writes_and_deletes() {
        let mut head = Head::default();
        let a = dims(&[("k", "a")]);
        let b = dims(&[("k", "b")]);
        head.apply_batch(&batch(
            &[(0, "m", a), (1, "m", b)],
            &[(0, 10), (0, 20), (1, 30)],
        ))
        .unwrap();
        let t = head.tenant(&Tenant::new("t")).unwrap();
        let m = t.metric("m").unwrap();
        assert_eq!((m.points, m.live_series, t.live_metrics), (3, 2, 1));
        assert_eq!(m.posting("k", "a"), &[0]);
        assert_eq!(m.postings["k"]["a"].points, 2);

        assert_eq!(head.delete_before(&Tenant::new("t"), "m", 25), 2);
        let t = head.tenant(&Tenant::new("t")).unwrap();
        let m = t.metric("m").unwrap();
        assert_eq!((m.points, m.live_series, t.live_metrics), (1, 1, 1));
        assert_eq!(m.postings["k"]["a"].points, 0);
        assert_eq!(head.delete_before(&Tenant::new("t"), "m", 100), 1);
        assert_eq!(head.tenant(&Tenant::new("t")).unwrap().live_metrics, 0);
        assert_eq!(head.live_tenants().count(), 0);

        // A dead series comes back to life under its old id.
        head.apply_batch(&batch(&[], &[(1, 40)])).unwrap();
        let t = head.tenant(&Tenant::new("t")).unwrap();
        assert_eq!((t.metric("m").unwrap().live_series, t.live_metrics), (1, 1));
    }

    #[test]
    fn inconsistent_batches_change_nothing() {
        let mut head = Head::default();
        let err = head
            .apply_batch(&batch(&[(3, "m", dims(&[]))], &[]))
            .unwrap_err();
        assert!(err.contains("series 0 was expected"), "{err}");
        let err = head
            .apply_batch(&batch(&[(0, "m", dims(&[]))], &[(1, 5)]))
            .unwrap_err();
        assert!(err.contains("undefined series 1"), "{err}");
        assert!(
            head.tenant(&Tenant::new("t"))
                .is_none_or(|t| t.series.is_empty())
        );
        head.apply_batch(&batch(&[(0, "m", dims(&[]))], &[]))
            .unwrap();
        let err = head
            .apply_batch(&batch(&[(1, "m", dims(&[]))], &[]))
            .unwrap_err();
        assert!(err.contains("redefines"), "{err}");
    }
}
