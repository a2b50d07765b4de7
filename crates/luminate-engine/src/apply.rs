//! apply: how a WAL record changes the index and the head — the one path shared by the commit thread and
//! WAL replay, so that replaying the log rebuilds exactly what was served. Owns no state; knows nothing
//! of files or threads.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::head::Head;
use crate::index::{Index, MetricId, NewSeriesIds, TenantIndex};
use crate::record::{DeleteBefore, SeriesDef, SeriesId, WriteBatch};

/// Applies a write batch: defines its new series in the index, appends its points to the head and counts
/// them. Checks the batch against the index first and changes nothing when it does not fit (series ids
/// not dense and in order, a series defined twice, a point of an undefined series). A definition of an id
/// the index already has (restored from the series log, replayed again from the WAL) must be equal to it
/// and is skipped.
pub(crate) fn apply_batch(
    index: &mut Index,
    head: &mut Head,
    batch: &WriteBatch,
) -> Result<(), String> {
    let ti = index.tenant(&batch.tenant);
    let known = ti.map_or(0, |t| t.series_count());
    // Each new definition is hashed once, with the tenant's hasher when the tenant exists (the hash
    // then serves the existence check and the insert); a tenant's first batch hashes with a local one.
    let local = DefaultHashBuilder::default();
    let hash_of = |def: &SeriesDef| {
        let pairs = def
            .dims
            .pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        match ti {
            Some(t) => t.hash(&def.metric, pairs),
            None => {
                let mut h = local.build_hasher();
                def.metric.hash(&mut h);
                pairs.for_each(|p| p.hash(&mut h));
                h.finish()
            }
        }
    };
    // Definitions the series log already restored (the record predates a flush): equal, or corrupt.
    let mut fresh: Vec<(&SeriesDef, u64)> = Vec::new();
    // This batch's fresh definitions by hash: a series defined twice is an error.
    let mut defined: HashTable<usize> = HashTable::new();
    for def in &batch.new_series {
        if (def.id as usize) < known {
            let same = ti.is_some_and(|t| {
                let s = t.series(def.id);
                s.metric() == def.metric && s.dimensions() == def.dims
            });
            if !same {
                return Err(format!(
                    "series {} redefined differently from the series log (metric {:?})",
                    def.id, def.metric
                ));
            }
            continue;
        }
        if def.id as usize != known + fresh.len() {
            return Err(format!(
                "series {} defined where series {} was expected",
                def.id,
                known + fresh.len()
            ));
        }
        let hash = hash_of(def);
        let pairs = def
            .dims
            .pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let exists = ti.is_some_and(|t| t.find_hashed(hash, &def.metric, pairs).is_some());
        let twice = defined
            .find(hash, |&i| {
                let other = fresh[i].0;
                other.metric == def.metric && other.dims == def.dims
            })
            .is_some();
        if exists || twice {
            return Err(format!(
                "series {} redefines an existing series of metric {:?}",
                def.id, def.metric
            ));
        }
        defined.insert_unique(hash, fresh.len(), |&i| fresh[i].1);
        fresh.push((def, hash));
    }
    let total = known + fresh.len();
    if let Some(p) = batch.points.iter().find(|p| p.series as usize >= total) {
        return Err(format!(
            "point refers to undefined series {} (tenant has {total})",
            p.series
        ));
    }

    let had_tenant = ti.is_some();
    let ti = index.tenant_mut(&batch.tenant);
    for (def, hash) in fresh {
        let hash = if had_tenant {
            hash
        } else {
            let pairs = def
                .dims
                .pairs()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()));
            ti.hash(&def.metric, pairs)
        };
        ti.insert_hashed(def.id, &def.metric, &def.dims, hash)?;
    }
    append_and_count(ti, head, batch);
    Ok(())
}

/// [`apply_batch`] of a batch the writer thread staged itself: its series were resolved against this
/// index plus the batches staged before it (`crate::index::Staging`), so its definitions are new,
/// dense and in order, and `ids` holds their hashes and, for most, their metric and postings. Applies
/// the same change as [`apply_batch`] (replay rebuilds it from the record) without hashing, looking up
/// or interning a definition's strings again. Checks the ids (cheap) before changing anything.
pub(crate) fn apply_staged(
    index: &mut Index,
    head: &mut Head,
    batch: &WriteBatch,
    ids: &NewSeriesIds,
) -> Result<(), String> {
    let known = index.tenant(&batch.tenant).map_or(0, |t| t.series_count());
    let total = known + batch.new_series.len();
    if let Some((i, def)) = batch
        .new_series
        .iter()
        .enumerate()
        .find(|(i, def)| def.id as usize != known + i)
    {
        return Err(format!(
            "series {} defined where series {} was expected",
            def.id,
            known + i
        ));
    }
    if ids.hashes.len() != batch.new_series.len() {
        return Err(format!(
            "{} hashes prepared for {} new series",
            ids.hashes.len(),
            batch.new_series.len()
        ));
    }
    if let Some(p) = batch.points.iter().find(|p| p.series as usize >= total) {
        return Err(format!(
            "point refers to undefined series {} (tenant has {total})",
            p.series
        ));
    }
    let ti = index.tenant_mut(&batch.tenant);
    for (i, (def, &hash)) in batch.new_series.iter().zip(&ids.hashes).enumerate() {
        match ids.known.get(i) {
            Some((m, postings)) => ti.insert_known(def.id, m, postings, hash)?,
            None => ti.insert_hashed(def.id, &def.metric, &def.dims, hash)?,
        }
    }
    append_and_count(ti, head, batch);
    Ok(())
}

/// Appends the batch's points to the head and counts them in the index (its series are defined).
fn append_and_count(ti: &mut TenantIndex, head: &mut Head, batch: &WriteBatch) {
    // Every point's metric first, in a loop of independent reads of the series table (its rows' cache
    // misses overlap), then the appends.
    let metrics: Vec<MetricId> = batch
        .points
        .iter()
        .map(|p| ti.metric_of(p.series))
        .collect();
    let mut rows = head.tenant_mut(&batch.tenant);
    let mut filled: Vec<MetricId> = Vec::new();
    for (p, &m) in batch.points.iter().zip(&metrics) {
        if rows.append(m, p.series, p.timestamp, p.value) {
            filled.push(m);
        }
    }
    // A chunk that filled is put in series order if its metric has few enough series for that to
    // pay (`head::order`); the writer does it once rather than every query that reads the chunk.
    filled.sort_unstable();
    filled.dedup();
    for m in filled {
        rows.order_filled(
            m,
            ti.metric(m).live_series <= crate::head::MAX_ORDERED_SERIES,
        );
    }
    // Counted once per series, in id order: a series' metric and postings are updated once however many
    // of its points the batch holds, and the series table is walked forwards.
    let mut series: Vec<SeriesId> = batch.points.iter().map(|p| p.series).collect();
    series.sort_unstable();
    let runs: Vec<(SeriesId, i64)> = series
        .chunk_by(|a, b| a == b)
        .map(|run| (run[0], run.len() as i64))
        .collect();
    ti.add_points_many(&runs);
}

/// Deletes the metric's points with timestamp `< before` from the head, and their counts from the index;
/// returns how many were deleted.
pub(crate) fn apply_delete(index: &mut Index, head: &mut Head, d: &DeleteBefore) -> u64 {
    let Some(ti) = index.existing_tenant_mut(&d.tenant) else {
        return 0;
    };
    let Some(metric) = ti.metric_id(&d.metric) else {
        return 0;
    };
    head.delete_before(&d.tenant, metric, d.before, |series| {
        ti.add_points(series, -1)
    })
}

#[cfg(test)]
mod tests {
    use luminate_model::Tenant;

    use super::*;
    use luminate_model::Dimensions;

    use crate::record::SeriesPoint;

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

    fn delete(metric: &str, before: i64) -> DeleteBefore {
        DeleteBefore {
            tenant: Tenant::new("t"),
            metric: metric.to_owned(),
            before,
        }
    }

    #[test]
    fn postings_and_counters_follow_writes_and_deletes() {
        let (mut index, mut head) = (Index::default(), Head::default());
        let a = dims(&[("k", "a"), ("z", "1")]);
        let b = dims(&[("k", "b"), ("z", "1")]);
        apply_batch(
            &mut index,
            &mut head,
            &batch(&[(0, "m", a), (1, "m", b)], &[(0, 10), (0, 20), (1, 30)]),
        )
        .unwrap();
        let counts = |index: &Index| {
            let t = index.tenant(&Tenant::new("t")).unwrap();
            let m = t.metric(t.metric_id("m").unwrap());
            let posting = |k: &str, v: &str| {
                let (k, v) = (t.strings().get(k).unwrap(), t.strings().get(v).unwrap());
                let p = &m.postings[m.posting_id(k, v).unwrap() as usize];
                (p.series.clone(), p.points, p.live_series)
            };
            (
                (m.points, m.live_series, t.live_metrics()),
                posting("k", "a"),
                posting("z", "1"),
            )
        };
        assert_eq!(
            counts(&index),
            ((3, 2, 1), (vec![0], 2, 1), (vec![0, 1], 3, 2))
        );
        assert_eq!(head.points(), 3);

        assert_eq!(apply_delete(&mut index, &mut head, &delete("m", 25)), 2);
        assert_eq!(
            counts(&index),
            ((1, 1, 1), (vec![0], 0, 0), (vec![0, 1], 1, 1))
        );
        assert_eq!(apply_delete(&mut index, &mut head, &delete("m", 100)), 1);
        assert_eq!(
            counts(&index),
            ((0, 0, 0), (vec![0], 0, 0), (vec![0, 1], 0, 0))
        );
        assert_eq!(index.live_tenants().count(), 0);
        assert_eq!(head.points(), 0);
        assert_eq!(
            apply_delete(&mut index, &mut head, &delete("other", 100)),
            0
        );

        // A dead series comes back to life under its old id.
        apply_batch(&mut index, &mut head, &batch(&[], &[(1, 40)])).unwrap();
        assert_eq!(
            counts(&index),
            ((1, 1, 1), (vec![0], 0, 0), (vec![0, 1], 1, 1))
        );
    }

    #[test]
    fn a_staged_batch_applies_exactly_like_its_record_replayed() {
        let tenant = Tenant::new("t");
        let (a, b, c) = (
            dims(&[("k", "a"), ("z", "1")]),
            dims(&[("k", "b"), ("z", "1")]),
            dims(&[("k", "new"), ("z", "1")]),
        );
        let first = batch(&[(0, "m", a.clone()), (1, "m", b.clone())], &[(0, 10)]);
        // Every name of series 2 is in the index (defined from ids); series 3 has a value the index
        // never saw (defined from strings). The points go to old and new series.
        let second = batch(
            &[(2, "m", dims(&[("k", "a")])), (3, "m", c.clone())],
            &[(1, 20), (2, 30), (3, 40), (3, 50)],
        );
        let (mut replayed, mut replayed_head) = (Index::default(), Head::default());
        apply_batch(&mut replayed, &mut replayed_head, &first).unwrap();
        apply_batch(&mut replayed, &mut replayed_head, &second).unwrap();

        let (mut staged, mut staged_head) = (Index::default(), Head::default());
        apply_batch(&mut staged, &mut staged_head, &first).unwrap();
        let ti = staged.tenant(&tenant).unwrap();
        let mut ids = NewSeriesIds::default();
        for def in &second.new_series {
            let p = luminate_model::PointBatch::from_points([luminate_model::Point {
                name: def.metric.clone(),
                timestamp: 0,
                value: 0.0,
                dimensions: def.dims.clone(),
            }]);
            let p = p.get(0);
            ids.hashes.push(ti.hash(p.name, p.pairs()));
            let mut postings = Vec::new();
            let known = ti.known_names(p.name, p.pairs(), &mut postings);
            ids.known.push(known.map(|m| (m, postings.as_slice())));
        }
        assert!(ids.known.get(0).is_some() && ids.known.get(1).is_none());
        apply_staged(&mut staged, &mut staged_head, &second, &ids).unwrap();

        let summary = |index: &Index, head: &Head| {
            let t = index.tenant(&tenant).unwrap();
            let series: Vec<_> = (0..t.series_count() as SeriesId)
                .map(|id| (t.series(id).dimensions(), t.series_points(id)))
                .collect();
            let m = t.metric_id("m").unwrap();
            let postings: Vec<_> = t
                .metric(m)
                .postings
                .iter()
                .map(|p| (p.key, p.value, p.series.clone(), p.points, p.live_series))
                .collect();
            let rows: Vec<_> = head
                .rows(&tenant, m)
                .iter()
                .flat_map(|r| r.series.iter().copied().zip(r.timestamps.iter().copied()))
                .collect();
            (series, postings, t.strings().len(), rows, head.points())
        };
        assert_eq!(
            summary(&staged, &staged_head),
            summary(&replayed, &replayed_head)
        );
        assert_eq!(staged.tenant(&tenant).unwrap().find("m", &c), Some(3));

        // Ids that do not continue the index's are refused before anything changes.
        let wrong = batch(&[(9, "m", dims(&[("k", "x")]))], &[(0, 60)]);
        let ids = NewSeriesIds {
            hashes: vec![0],
            known: Default::default(),
        };
        let err = apply_staged(&mut staged, &mut staged_head, &wrong, &ids).unwrap_err();
        assert!(err.contains("series 4 was expected"), "{err}");
        assert_eq!(staged_head.points(), 5);
    }

    #[test]
    fn inconsistent_batches_change_nothing() {
        let (mut index, mut head) = (Index::default(), Head::default());
        let err =
            apply_batch(&mut index, &mut head, &batch(&[(3, "m", dims(&[]))], &[])).unwrap_err();
        assert!(err.contains("series 0 was expected"), "{err}");
        let err = apply_batch(
            &mut index,
            &mut head,
            &batch(&[(0, "m", dims(&[]))], &[(1, 5)]),
        )
        .unwrap_err();
        assert!(err.contains("undefined series 1"), "{err}");
        let err = apply_batch(
            &mut index,
            &mut head,
            &batch(&[(0, "m", dims(&[])), (1, "m", dims(&[]))], &[]),
        )
        .unwrap_err();
        assert!(err.contains("redefines"), "{err}");
        assert!(
            index
                .tenant(&Tenant::new("t"))
                .is_none_or(|t| t.series_count() == 0)
        );
        assert_eq!(head.points(), 0);
        apply_batch(&mut index, &mut head, &batch(&[(0, "m", dims(&[]))], &[])).unwrap();
        let err =
            apply_batch(&mut index, &mut head, &batch(&[(1, "m", dims(&[]))], &[])).unwrap_err();
        assert!(err.contains("redefines"), "{err}");
    }
}
