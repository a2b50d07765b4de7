//! Series resolution for writes that are logged but not yet applied: the commit thread turns each point
//! into a series id (assigning new ids) and enforces the cardinality limits, against the index *plus*
//! every batch staged earlier in the same *epoch*. Knows nothing of the WAL.
//!
//! An epoch lasts from one [`Staging::clear`] to the next, and may span several commit groups: while
//! one group's fsync runs, the next is staged on top of it, and the first is applied to the index
//! meanwhile. So what a tenant and a metric counted is taken once, when the epoch first touches them
//! (nothing staged before then in the epoch changed it), and ids and limits are computed from those
//! counts plus the epoch's own, never from the index's counts of the moment, which may already include
//! groups of the epoch. Only deletes change counts otherwise, and they end the epoch first.
//!
//! Limits count live series and metrics (those holding a point), so a series whose points were all
//! deleted no longer counts, and reviving it counts as a new one. When a new series or metric brings a
//! tenant to 80 % of a limit, a warning is logged — once per upward crossing, since counts move one at
//! a time.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};

use luminate_model::store::Rejection;
use luminate_model::{Dimensions, ErrorCode, PointRef, Tenant};

use crate::config::CardinalityLimits;
use crate::index::{MetricId, PostingId, TenantIndex};
use crate::record::{SeriesDef, SeriesId};

/// What one commit group has resolved so far, on top of the index.
#[derive(Debug, Default)]
pub(crate) struct Staging {
    tenants: HashMap<Tenant, StagedTenant>,
    /// Hashes [`series_key`]s.
    hasher: DefaultHashBuilder,
    /// The [`series_key`] of the point being resolved (reused: a lookup allocates nothing).
    key: Vec<u8>,
    /// The 80 % warnings of this group, by tenant and limit, for the engine's observer.
    warnings: Vec<(Tenant, &'static str)>,
}

#[derive(Debug, Default)]
struct StagedTenant {
    /// Series the index defined when the epoch first touched the tenant: new ids continue from here.
    base_series: u64,
    /// Live metrics then.
    base_live_metrics: u64,
    /// Series created in this epoch, by [`series_key`].
    new_series: NewSeriesKeys,
    new_count: u32,
    /// Series (new or dead in the index) that this epoch makes live.
    revived: HashSet<SeriesId>,
    /// Per metric touched: its counts when the epoch first touched it, and how many series the epoch
    /// makes live.
    metrics: HashMap<String, StagedMetric>,
    /// Metrics this epoch makes live.
    revived_metrics: u64,
}

/// The keys of an epoch's new series, in one arena: no allocation per series.
#[derive(Debug, Default)]
struct NewSeriesKeys {
    /// Every key, concatenated in creation order.
    bytes: Vec<u8>,
    /// By creation order: the series and the end of its key in `bytes`.
    ids: Vec<(SeriesId, usize)>,
    /// Positions in `ids`, by the key's hash.
    table: HashTable<(u64, u32)>,
}

impl NewSeriesKeys {
    fn key(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ids[i - 1].1 };
        &self.bytes[start..self.ids[i].1]
    }

    fn get(&self, hash: u64, key: &[u8]) -> Option<SeriesId> {
        self.table
            .find(hash, |&(h, i)| h == hash && self.key(i) == key)
            .map(|&(_, i)| self.ids[i as usize].0)
    }

    /// Adds a key that [`Self::get`] did not find.
    fn insert(&mut self, hash: u64, key: &[u8], id: SeriesId) {
        let i = self.ids.len() as u32;
        self.bytes.extend_from_slice(key);
        self.ids.push((id, self.bytes.len()));
        self.table.insert_unique(hash, (hash, i), |&(h, _)| h);
    }
}

/// One metric's counts in an epoch (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
struct StagedMetric {
    /// Its live series when the epoch first touched it.
    base_live_series: u64,
    /// Whether it was live then.
    base_live: bool,
    /// Series the epoch makes live.
    revived: u64,
}

/// What the caller's thread prepared for a point it did not find live, so the writer thread does not.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The point's [`TenantIndex::hash`], when the tenant had an index.
    pub hash: Option<u64>,
    /// The point's dimensions as an owned value, ready to define a new series.
    pub dims: Option<Dimensions>,
}

/// The metric and postings of new series whose every name the index already held when they were looked
/// up (on the caller's thread, under the read lock): defining such a series interns no string and
/// creates no posting, so the writer thread only appends its id ([`TenantIndex::insert_known`]).
/// Metric and posting ids never change once given, so they stay valid under later locks. One flat
/// list for a whole write, not an allocation per series.
#[derive(Debug, Default)]
pub(crate) struct KnownNames {
    /// By entry: its metric and the range of its postings in `postings`, when known.
    entries: Vec<Option<(MetricId, u32, u32)>>,
    postings: Vec<PostingId>,
}

impl KnownNames {
    /// Looks up the names of `point` in `ti` and appends them as the next entry (`None` when one of
    /// them is not in the index yet).
    pub(crate) fn push_lookup(&mut self, ti: &TenantIndex, point: &PointRef<'_>) {
        let start = self.postings.len();
        let entry = ti
            .known_names(point.name, point.pairs(), &mut self.postings)
            .map(|m| (m, start as u32, self.postings.len() as u32));
        if entry.is_none() {
            self.postings.truncate(start);
        }
        self.entries.push(entry);
    }

    /// Appends an entry.
    pub(crate) fn push(&mut self, known: Option<(MetricId, &[PostingId])>) {
        let entry = known.map(|(m, postings)| {
            let start = self.postings.len() as u32;
            self.postings.extend_from_slice(postings);
            (m, start, self.postings.len() as u32)
        });
        self.entries.push(entry);
    }

    /// Entry `i`, if known.
    pub(crate) fn get(&self, i: usize) -> Option<(MetricId, &[PostingId])> {
        let (m, start, end) = self.entries.get(i).copied().flatten()?;
        Some((m, &self.postings[start as usize..end as usize]))
    }
}

/// What the writer thread knows of the series a staged batch defines, in definition order, so that
/// applying the batch neither hashes nor interns again ([`crate::apply::apply_staged`]).
#[derive(Debug, Default)]
pub(crate) struct NewSeriesIds {
    /// By definition: its [`TenantIndex::hash`].
    pub hashes: Vec<u64>,
    /// By definition: its metric and postings, when the index held them all.
    pub known: KnownNames,
}

/// Where a point goes.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Its series.
    pub series: SeriesId,
    /// The series' definition when this point creates it.
    pub new: Option<SeriesDef>,
}

impl Staging {
    /// Ends the epoch (once every group staged in it was applied, or failed); returns its 80 %
    /// warnings.
    pub(crate) fn clear(&mut self) -> Vec<(Tenant, &'static str)> {
        self.tenants.clear();
        std::mem::take(&mut self.warnings)
    }

    /// Series this epoch created, over every tenant (what it holds in memory).
    pub(crate) fn new_series(&self) -> usize {
        self.tenants.values().map(|t| t.new_series.ids.len()).sum()
    }

    /// Resolves the series of `point` (the `index`-th of its write), or rejects it when it would make a
    /// series or metric live past a limit. `ti` is the tenant's index (`None` before its first series);
    /// `prepared` is what the caller's thread computed for the point, if anything.
    ///
    /// The common case — an existing live series — is one lookup in the index, without allocating.
    /// A new series costs one allocation for the group's table and its definition (the owned copy the
    /// WAL record holds).
    pub(crate) fn resolve(
        &mut self,
        ti: Option<&TenantIndex>,
        limits: &CardinalityLimits,
        tenant: &Tenant,
        index: usize,
        point: &PointRef<'_>,
        prepared: Prepared,
    ) -> Result<Resolved, Rejection> {
        let in_index = ti.and_then(|t| match prepared.hash {
            Some(h) => t.find_hashed(h, point.name, point.pairs()),
            None => t.find_pairs(point.name, point.pairs()),
        });
        if let Some(id) = in_index
            && ti.is_some_and(|t| t.is_live(id))
        {
            return Ok(Resolved {
                series: id,
                new: None,
            });
        }
        let mh = ti.and_then(|t| t.metric_id(point.name).map(|m| t.metric(m)));
        let st = match self.tenants.get_mut(tenant) {
            Some(st) => st,
            None => self
                .tenants
                .entry(tenant.clone())
                .or_insert_with(|| StagedTenant {
                    base_series: ti.map_or(0, TenantIndex::series_count) as u64,
                    base_live_metrics: ti.map_or(0, TenantIndex::live_metrics),
                    ..StagedTenant::default()
                }),
        };
        series_key(&mut self.key, point);
        let key_hash = self.hasher.hash_one(self.key.as_slice());
        let existing = in_index.or_else(|| st.new_series.get(key_hash, &self.key));
        if let Some(id) = existing
            && st.revived.contains(&id)
        {
            return Ok(Resolved {
                series: id,
                new: None,
            });
        }

        let reject = |message: String| Rejection {
            index,
            code: ErrorCode::CardinalityExceeded,
            message,
        };
        let staged_metric = st
            .metrics
            .get(point.name)
            .copied()
            .unwrap_or_else(|| StagedMetric {
                base_live_series: mh.map_or(0, |m| m.live_series),
                base_live: mh.is_some_and(|m| m.is_live()),
                revived: 0,
            });
        let revived_here = staged_metric.revived;
        let metric_is_new = !staged_metric.base_live && revived_here == 0;
        if metric_is_new {
            let live = st.base_live_metrics + st.revived_metrics;
            if live >= limits.max_metrics_per_tenant {
                return Err(reject(format!(
                    "metric {:?} would exceed max_metrics_per_tenant of {}",
                    point.name, limits.max_metrics_per_tenant
                )));
            }
            if warn_at_level(
                tenant,
                "",
                "max_metrics_per_tenant",
                live + 1,
                limits.max_metrics_per_tenant,
            ) {
                self.warnings
                    .push((tenant.clone(), "max_metrics_per_tenant"));
            }
        }
        let live_series = staged_metric.base_live_series + revived_here;
        if live_series >= limits.max_series_per_metric {
            return Err(reject(format!(
                "new series of metric {:?} would exceed max_unique_series_per_metric of {}",
                point.name, limits.max_series_per_metric
            )));
        }

        if warn_at_level(
            tenant,
            point.name,
            "max_unique_series_per_metric",
            live_series + 1,
            limits.max_series_per_metric,
        ) {
            self.warnings
                .push((tenant.clone(), "max_unique_series_per_metric"));
        }
        let (id, new) = match existing {
            Some(id) => (id, None),
            None => {
                let next = st.base_series + u64::from(st.new_count);
                let id = SeriesId::try_from(next).map_err(|_| {
                    reject(format!(
                        "tenant {tenant} has used all {} series ids",
                        SeriesId::MAX
                    ))
                })?;
                st.new_count += 1;
                st.new_series.insert(key_hash, &self.key, id);
                (
                    id,
                    Some(SeriesDef {
                        id,
                        metric: point.name.to_owned(),
                        dims: prepared.dims.unwrap_or_else(|| point.dimensions()),
                    }),
                )
            }
        };
        st.revived.insert(id);
        let revived = StagedMetric {
            revived: revived_here + 1,
            ..staged_metric
        };
        match st.metrics.get_mut(point.name) {
            Some(m) => *m = revived,
            None => {
                st.metrics.insert(point.name.to_owned(), revived);
            }
        }
        if metric_is_new {
            st.revived_metrics += 1;
        }
        Ok(Resolved { series: id, new })
    }
}

/// Logs the 80 % warning when `count` is exactly the warning level of `max`, and says whether it did
/// (the engine's observer counts it too).
fn warn_at_level(tenant: &Tenant, metric: &str, limit: &'static str, count: u64, max: u64) -> bool {
    let level = max.saturating_mul(4).div_ceil(5).max(1);
    let reached = count == level;
    if reached {
        tracing::warn!(
            tenant = %tenant,
            metric,
            limit,
            count,
            max,
            "tenant passed 80% of a cardinality limit"
        );
    }
    reached
}

/// Writes into `key` an unambiguous encoding of the point's series: its metric, then each key and value,
/// each preceded by its length.
fn series_key(key: &mut Vec<u8>, point: &PointRef<'_>) {
    key.clear();
    let mut push = |s: &str| {
        key.extend_from_slice(&(s.len() as u64).to_le_bytes());
        key.extend_from_slice(s.as_bytes());
    };
    push(point.name);
    for (k, v) in point.pairs() {
        push(k);
        push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{apply_batch, apply_delete};
    use crate::head::Head;
    use crate::index::Index;
    use luminate_model::{Point, PointBatch};

    use crate::record::{DeleteBefore, SeriesPoint, WriteBatch};

    /// Resolves the one point of `point(name, customer)`, numbered `at` in its batch, for `tenant`
    /// against its index `ti` and what is staged.
    fn resolve_one(
        staging: &mut Staging,
        ti: Option<&TenantIndex>,
        limits: &CardinalityLimits,
        tenant: &Tenant,
        at: usize,
        (name, customer): (&str, &str),
    ) -> Result<Resolved, Rejection> {
        staging.resolve(
            ti,
            limits,
            tenant,
            at,
            &point(name, customer).get(0),
            Prepared::default(),
        )
    }

    /// A one-point batch; resolve its `get(0)`.
    fn point(name: &str, customer: &str) -> PointBatch {
        PointBatch::from_points([Point {
            name: name.to_owned(),
            timestamp: 1,
            value: 1.0,
            dimensions: Dimensions::from_pairs([("customer".to_owned(), customer.to_owned())]),
        }])
    }

    #[test]
    fn ids_continue_across_staged_batches_and_limits_see_them() {
        let index = Index::default();
        let tenant = Tenant::new("t");
        let limits = CardinalityLimits {
            max_series_per_metric: 2,
            max_metrics_per_tenant: 1,
        };
        let mut staging = Staging::default();
        let a = resolve_one(
            &mut staging,
            index.tenant(&tenant),
            &limits,
            &tenant,
            0,
            ("m", "a"),
        )
        .unwrap();
        assert_eq!((a.series, a.new.is_some()), (0, true));
        let again = resolve_one(
            &mut staging,
            index.tenant(&tenant),
            &limits,
            &tenant,
            1,
            ("m", "a"),
        )
        .unwrap();
        assert_eq!((again.series, again.new.is_some()), (0, false));
        assert_eq!(
            resolve_one(
                &mut staging,
                index.tenant(&tenant),
                &limits,
                &tenant,
                2,
                ("m", "b")
            )
            .unwrap()
            .series,
            1
        );
        let over = resolve_one(
            &mut staging,
            index.tenant(&tenant),
            &limits,
            &tenant,
            3,
            ("m", "c"),
        )
        .unwrap_err();
        assert_eq!(over.index, 3);
        assert!(
            over.message.contains("max_unique_series_per_metric of 2"),
            "{}",
            over.message
        );
        let other = resolve_one(
            &mut staging,
            index.tenant(&tenant),
            &limits,
            &tenant,
            4,
            ("other", "a"),
        )
        .unwrap_err();
        assert!(
            other.message.contains("max_metrics_per_tenant of 1"),
            "{}",
            other.message
        );
        // Another tenant has its own ids and limits.
        assert_eq!(
            resolve_one(
                &mut staging,
                None,
                &limits,
                &Tenant::new("u"),
                0,
                ("x", "a")
            )
            .unwrap()
            .series,
            0
        );
    }

    #[test]
    fn an_epoch_spanning_an_applied_group_assigns_ids_and_counts_limits_once() {
        let (mut index, mut head) = (Index::default(), Head::default());
        let tenant = Tenant::new("t");
        let limits = CardinalityLimits {
            max_series_per_metric: 3,
            max_metrics_per_tenant: 10,
        };
        let mut staging = Staging::default();
        // Group N defines a and b.
        let a = resolve_one(&mut staging, None, &limits, &tenant, 0, ("m", "a")).unwrap();
        let b = resolve_one(&mut staging, None, &limits, &tenant, 1, ("m", "b")).unwrap();
        assert_eq!((a.series, b.series), (0, 1));
        // Its fsync finishes while group N+1 is being staged: N is applied, the epoch goes on.
        let batch = WriteBatch {
            tenant: tenant.clone(),
            new_series: [a.new, b.new].into_iter().flatten().collect(),
            points: [0, 1]
                .map(|series| SeriesPoint {
                    series,
                    timestamp: 1,
                    value: 1.0,
                })
                .to_vec(),
        };
        apply_batch(&mut index, &mut head, &batch).unwrap();
        // Group N+1 sees a and b both in the index and in the epoch: counted once, ids continue.
        let ti = index.tenant(&tenant);
        let c = resolve_one(&mut staging, ti, &limits, &tenant, 0, ("m", "c")).unwrap();
        assert_eq!((c.series, c.new.is_some()), (2, true));
        let again = resolve_one(&mut staging, ti, &limits, &tenant, 1, ("m", "b")).unwrap();
        assert_eq!((again.series, again.new.is_some()), (1, false));
        let over = resolve_one(&mut staging, ti, &limits, &tenant, 2, ("m", "d")).unwrap_err();
        assert!(
            over.message.contains("max_unique_series_per_metric of 3"),
            "{}",
            over.message
        );
        assert_eq!(staging.new_series(), 3);
        staging.clear();
        assert_eq!(staging.new_series(), 0);
    }

    #[test]
    fn deleted_series_no_longer_count() {
        let (mut index, mut head) = (Index::default(), Head::default());
        let tenant = Tenant::new("t");
        let limits = CardinalityLimits {
            max_series_per_metric: 1,
            max_metrics_per_tenant: 10,
        };
        let mut staging = Staging::default();
        let r = resolve_one(
            &mut staging,
            index.tenant(&tenant),
            &limits,
            &tenant,
            0,
            ("m", "a"),
        )
        .unwrap();
        let batch = WriteBatch {
            tenant: tenant.clone(),
            new_series: r.new.into_iter().collect(),
            points: vec![SeriesPoint {
                series: r.series,
                timestamp: 1,
                value: 1.0,
            }],
        };
        apply_batch(&mut index, &mut head, &batch).unwrap();
        staging.clear();
        assert!(
            resolve_one(
                &mut staging,
                index.tenant(&tenant),
                &limits,
                &tenant,
                0,
                ("m", "b")
            )
            .is_err()
        );
        let delete = DeleteBefore {
            tenant: tenant.clone(),
            metric: "m".into(),
            before: 10,
        };
        apply_delete(&mut index, &mut head, &delete);
        staging.clear();
        let b = resolve_one(
            &mut staging,
            index.tenant(&tenant),
            &limits,
            &tenant,
            0,
            ("m", "b"),
        )
        .unwrap();
        assert_eq!(b.series, 1);
        // The limit is now used by "b": reviving "a" in the same group is over it.
        assert!(
            resolve_one(
                &mut staging,
                index.tenant(&tenant),
                &limits,
                &tenant,
                1,
                ("m", "a")
            )
            .is_err()
        );
    }
}
