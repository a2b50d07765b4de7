//! The index half of a query: filters → the sorted set of selected series (through the postings), each
//! selected series → its group (once per query, by value ids, no strings), and the per-query table that
//! maps a row's series id to what the scan accumulates it under. Taken under the index lock; owns only
//! ids, so the lock can be released before the scan.

use std::borrow::Cow;
use std::hash::BuildHasher;

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use hashbrown::{DefaultHashBuilder, HashTable};
use luminate_model::Filter;
use rayon::prelude::*;

use crate::buffer::filled;
use crate::index::{MetricId, StrId, TenantIndex};
use crate::record::SeriesId;

/// A missing dimension in a group's values (groups it under `""`).
pub(super) const MISSING: StrId = StrId::MAX;
/// No tag: the series is not selected.
const NOT_SELECTED: u32 = u32::MAX;

/// The selected series of a query and their groups.
#[derive(Debug, Default)]
pub(super) struct Selection {
    /// The queried metric (`None` when unknown: nothing is selected).
    pub metric: Option<MetricId>,
    /// Selected series, ascending.
    pub series: Vec<SeriesId>,
    /// Group of `series[i]`; moved into the per-query [`SeriesMap`] (left empty) by the queries that
    /// accumulate per group, which read it nowhere else.
    pub group_of: Vec<u32>,
    /// Each group's values.
    pub groups: Groups,
}

/// Each group's group-by values as value ids (`MISSING` for an absent key), `width` per group.
#[derive(Debug, Default, Clone)]
pub(super) struct Groups {
    pub width: usize,
    pub values: Vec<StrId>,
    pub count: usize,
}

impl Groups {
    /// The value ids of group `g`, in group-by order.
    pub(super) fn of(&self, g: u32) -> &[StrId] {
        let start = g as usize * self.width;
        &self.values[start..start + self.width]
    }
}

/// The selected series of `metric` (holding points, matching every filter) and their groups.
///
/// A filter without `""` among its values is a list of series — the posting of its one value (borrowed:
/// a single-value filter copies nothing), or the union of its values' postings — and the lists are
/// intersected, smallest first. A filter with `""` also matches series without the key (stored values
/// are never empty), which no posting lists: it is checked per remaining series instead.
pub(super) fn select(
    ti: Option<&TenantIndex>,
    metric: &str,
    filters: &[Filter],
    group_by: &[String],
    pool: &rayon::ThreadPool,
) -> Selection {
    let Some((ti, m)) = ti.and_then(|t| Some((t, t.metric_id(metric)?))) else {
        return Selection::default();
    };
    let series = matching(ti, m, filters);
    let (group_of, groups) = group(ti, m, &series, group_by, pool);
    Selection {
        metric: Some(m),
        series,
        group_of,
        groups,
    }
}

/// The series of metric `m` that hold points and match every filter, ascending (through the postings;
/// see [`select`]).
pub(super) fn matching(ti: &TenantIndex, m: MetricId, filters: &[Filter]) -> Vec<SeriesId> {
    let mi = ti.metric(m);
    let strings = ti.strings();
    let mut lists: Vec<Cow<'_, [SeriesId]>> = Vec::new();
    // Filters with `""`: the key, and the ids of its other values (sorted).
    let mut missing_or: Vec<(StrId, Vec<StrId>)> = Vec::new();
    for filter in filters {
        let Some(key) = strings.get(filter.key()) else {
            // No series ever carried the key: every series lacks it.
            if filter.matches_missing() {
                continue;
            }
            return Vec::new();
        };
        let values = filter
            .values()
            .iter()
            .filter(|v| !v.is_empty())
            .filter_map(|v| strings.get(v));
        if filter.matches_missing() {
            let mut ids: Vec<StrId> = values.collect();
            ids.sort_unstable();
            missing_or.push((key, ids));
            continue;
        }
        let postings: Vec<&[SeriesId]> = values
            .filter_map(|v| mi.posting_id(key, v))
            .map(|p| mi.postings[p as usize].series.as_slice())
            .collect();
        match postings.as_slice() {
            // No series carries any of the values: nothing matches.
            [] => return Vec::new(),
            [one] => lists.push(Cow::Borrowed(one)),
            // A series has one value per key: the postings are disjoint, their union a sorted concat.
            many => {
                let mut union = many.concat();
                union.sort_unstable();
                lists.push(Cow::Owned(union));
            }
        }
    }
    lists.sort_by_key(|l| l.len());
    let mut lists = lists.into_iter();
    // Every series of the metric holds points (the usual case: deletes empty series): none is dropped
    // for being empty, and the series table is not read for it (a cache miss per series of a filter).
    let all_live = mi.live_series == mi.series.len() as u64;
    let mut series: Vec<SeriesId> = match lists.next() {
        None if missing_or.is_empty() && all_live => return mi.series.clone(),
        None => mi.series.clone(),
        Some(smallest) => {
            let mut ids = smallest.into_owned();
            for list in lists {
                ids.retain(|id| list.binary_search(id).is_ok());
            }
            ids
        }
    };
    if all_live && missing_or.is_empty() {
        return series;
    }
    series.retain(|&s| {
        ti.is_live(s)
            && missing_or.iter().all(|(key, ids)| {
                ti.value_of(s, *key)
                    .is_none_or(|v| ids.binary_search(&v).is_ok())
            })
    });
    series
}

/// Each series' group: by the postings of its pairs through a dense table when the group-by keys'
/// value combinations are few enough ([`group_by_postings`]); otherwise with one key through a dense
/// table indexed by value id, with more through a hash table of value-id tuples. Allocates per group,
/// never per series.
fn group(
    ti: &TenantIndex,
    m: MetricId,
    series: &[SeriesId],
    group_by: &[String],
    pool: &rayon::ThreadPool,
) -> (Vec<u32>, Groups) {
    let strings = ti.strings();
    let keys: Vec<Option<StrId>> = group_by.iter().map(|k| strings.get(k)).collect();
    // Stored values are never empty, but if one were it must group with the missing ones, as `""`.
    let empty = strings.get("");
    group_by_postings(ti, m, series, &keys, empty, pool)
        .unwrap_or_else(|| group_by_values(ti, series, &keys, empty))
}

/// The general path of [`group`]: each series' value ids looked up by key.
fn group_by_values(
    ti: &TenantIndex,
    series: &[SeriesId],
    keys: &[Option<StrId>],
    empty: Option<StrId>,
) -> (Vec<u32>, Groups) {
    let strings = ti.strings();
    let value = |s: SeriesId, key: Option<StrId>| {
        key.and_then(|k| ti.value_of(s, k))
            .filter(|&v| Some(v) != empty)
            .unwrap_or(MISSING)
    };
    let mut groups = Groups {
        width: keys.len(),
        values: Vec::new(),
        count: 0,
    };
    let new_group = |groups: &mut Groups, values: &[StrId]| {
        groups.values.extend_from_slice(values);
        groups.count += 1;
        (groups.count - 1) as u32
    };
    let group_of = match keys {
        [] => {
            if !series.is_empty() {
                new_group(&mut groups, &[]);
            }
            filled(series.len(), 0)
        }
        [key] => {
            // Slot `len` is the missing value.
            let mut by_value = vec![NOT_SELECTED; strings.len() + 1];
            series
                .iter()
                .map(|&s| {
                    let v = value(s, *key);
                    let slot = if v == MISSING {
                        strings.len()
                    } else {
                        v as usize
                    };
                    if by_value[slot] == NOT_SELECTED {
                        by_value[slot] = new_group(&mut groups, &[v]);
                    }
                    by_value[slot]
                })
                .collect()
        }
        _ => {
            let hasher = DefaultHashBuilder::default();
            let mut table: HashTable<u32> = HashTable::new();
            let mut scratch: Vec<StrId> = Vec::with_capacity(keys.len());
            series
                .iter()
                .map(|&s| {
                    scratch.clear();
                    scratch.extend(keys.iter().map(|&k| value(s, k)));
                    let hash = hasher.hash_one(scratch.as_slice());
                    if let Some(&g) = table.find(hash, |&g| groups.of(g) == scratch.as_slice()) {
                        return g;
                    }
                    let g = new_group(&mut groups, &scratch);
                    table.insert_unique(hash, g, |&other| hasher.hash_one(groups.of(other)));
                    g
                })
                .collect()
        }
    };
    (group_of, groups)
}

/// Most cells of the dense table [`group_by_postings`] uses (4 bytes each).
const DENSE_GROUP_CELLS: usize = 1 << 22;

/// Groups the series of metric `m` by the postings of their pairs, without looking a posting up per
/// series: each of the metric's postings of a group-by key gets a small code (its rank among that
/// key's postings; `count` of the key for a missing or empty value), a series' codes form one index
/// (its *cell*) into a dense table of groups. The series' pairs are read sequentially from the series
/// table, in parallel on `pool` (2 M series read 64 MB of it); the postings only once per query. Groups
/// are numbered in cell order. `None` (use the general path) for repeated keys or when the table would
/// exceed [`DENSE_GROUP_CELLS`].
fn group_by_postings(
    ti: &TenantIndex,
    m: MetricId,
    series: &[SeriesId],
    keys: &[Option<StrId>],
    empty: Option<StrId>,
    pool: &rayon::ThreadPool,
) -> Option<(Vec<u32>, Groups)> {
    let known: Vec<StrId> = keys.iter().flatten().copied().collect();
    if keys.is_empty()
        || keys.len() > u8::MAX as usize
        || (1..known.len()).any(|i| known[..i].contains(&known[i]))
    {
        return None;
    }
    let postings = &ti.metric(m).postings;
    // Per posting: the group-by key it belongs to (`NO_KEY`: none) and its code under that key.
    const NO_KEY: u8 = u8::MAX;
    let mut key_of = vec![NO_KEY; postings.len()];
    let mut code_of = filled(postings.len(), 0u32);
    // Per key: its postings' values by code, then `MISSING` at index `len` (missing or empty value).
    let mut values: Vec<Vec<StrId>> = vec![Vec::new(); keys.len()];
    for (p, posting) in postings.iter().enumerate() {
        let Some(j) = keys.iter().position(|&k| k == Some(posting.key)) else {
            continue;
        };
        if Some(posting.value) == empty {
            continue;
        }
        key_of[p] = j as u8;
        code_of[p] = values[j].len() as u32;
        values[j].push(posting.value);
    }
    // Mixed radix: key j's code times the product of the later keys' sizes.
    let mut strides = vec![0usize; keys.len()];
    let mut cells = 1usize;
    for j in (0..keys.len()).rev() {
        strides[j] = cells;
        cells = cells.checked_mul(values[j].len() + 1)?;
    }
    if cells > DENSE_GROUP_CELLS {
        return None;
    }
    // A posting's code already multiplied by its key's stride, minus the key's missing code: a
    // series' cell is the all-missing cell plus one such term per pair of a group-by key.
    let missing: usize = (0..keys.len()).map(|j| values[j].len() * strides[j]).sum();
    let offset_of: Vec<isize> = (0..postings.len())
        .map(|p| match key_of[p] {
            NO_KEY => 0,
            j => {
                let j = j as usize;
                (code_of[p] as isize - values[j].len() as isize) * strides[j] as isize
            }
        })
        .collect();
    let cell_of = |s: SeriesId| -> u32 {
        let offset: isize = ti
            .posting_ids(s)
            .iter()
            .map(|&p| offset_of[p as usize])
            .sum();
        (missing as isize + offset) as u32
    };
    // Each series' cell, and which cells are used, in parallel; then the used cells numbered in order.
    let mut group_of = filled(series.len(), 0u32);
    let used: Vec<AtomicBool> = (0..cells).map(|_| AtomicBool::new(false)).collect();
    pool.install(|| {
        group_of
            .par_chunks_mut(GROUP_CHUNK)
            .zip(series.par_chunks(GROUP_CHUNK))
            .for_each(|(out, ids)| {
                for (cell, &s) in out.iter_mut().zip(ids) {
                    *cell = cell_of(s);
                    // Stored only when not yet seen: a store to a flag the other threads read too
                    // moved its cache line between the cores for every series (a few cells, 2 M series).
                    let flag = &used[*cell as usize];
                    if !flag.load(AtomicOrdering::Relaxed) {
                        flag.store(true, AtomicOrdering::Relaxed);
                    }
                }
            });
    });
    for v in &mut values {
        v.push(MISSING);
    }
    let mut groups = Groups {
        width: keys.len(),
        values: Vec::new(),
        count: 0,
    };
    let mut group_of_cell = vec![NOT_SELECTED; cells];
    for (cell, used) in used.iter().enumerate() {
        if !used.load(AtomicOrdering::Relaxed) {
            continue;
        }
        let mut rest = cell;
        for (j, stride) in strides.iter().enumerate() {
            groups.values.push(values[j][rest / stride]);
            rest %= stride;
        }
        group_of_cell[cell] = groups.count as u32;
        groups.count += 1;
    }
    pool.install(|| {
        group_of
            .par_chunks_mut(GROUP_CHUNK)
            .for_each(|out| out.iter_mut().for_each(|g| *g = group_of_cell[*g as usize]));
    });
    Some((group_of, groups))
}

/// Series per task of the parallel grouping.
const GROUP_CHUNK: usize = 1 << 16;

/// Series id → tag (a group, or a position in the selection), looked up once per scanned row.
#[derive(Debug)]
pub(crate) enum SeriesMap {
    /// A table over the selected ids' span: one load per row.
    Dense { base: SeriesId, tags: Vec<u32> },
    /// Few series spread over a wide span: a bitset over the span rejects most rows with one bit test;
    /// a selected id's tag is at its rank among the set bits (the bits set in the words before its
    /// own, kept per word, and those below it in its word): a few loads, where a binary search over
    /// the ids took a dozen dependent ones for every row of a metric whose rows are all selected.
    Sparse {
        base: SeriesId,
        bits: Vec<u64>,
        /// Bits set in the words before each word.
        ranks: Vec<u32>,
        tags: Vec<u32>,
    },
}

impl SeriesMap {
    /// [`SeriesMap::new`] taking the tags: when every id of the span is selected they become the table
    /// as they are (2 M series: 8 MB not copied, nor their pages faulted in again).
    pub(super) fn from_owned(series: &[SeriesId], tags: Vec<u32>) -> Self {
        match (series.first(), series.last()) {
            (Some(&first), Some(&last)) if (last - first) as usize + 1 == series.len() => {
                Self::Dense { base: first, tags }
            }
            _ => Self::new(series, &tags),
        }
    }

    /// Maps `series[i]` (ascending) to `tags[i]`.
    pub(super) fn new(series: &[SeriesId], tags: &[u32]) -> Self {
        let (Some(&first), Some(&last)) = (series.first(), series.last()) else {
            return Self::Dense {
                base: 0,
                tags: Vec::new(),
            };
        };
        let span = (last - first) as usize + 1;
        // A dense table costs 4 bytes per id of the span: worth it unless the selection is sparse in it.
        if span == series.len() {
            // Every id of the span (a group-by over a whole metric that has the tenant's ids to itself).
            return Self::Dense {
                base: first,
                tags: tags.to_vec(),
            };
        }
        if span <= 16 * series.len() + 65_536 {
            let mut dense = vec![NOT_SELECTED; span];
            for (&s, &tag) in series.iter().zip(tags) {
                dense[(s - first) as usize] = tag;
            }
            return Self::Dense {
                base: first,
                tags: dense,
            };
        }
        let mut bits = filled(span.div_ceil(64), 0u64);
        for &s in series {
            let i = (s - first) as usize;
            bits[i / 64] |= 1 << (i % 64);
        }
        let mut ranks = Vec::with_capacity(bits.len());
        let mut below = 0u32;
        for word in &bits {
            ranks.push(below);
            below += word.count_ones();
        }
        Self::Sparse {
            base: first,
            bits,
            ranks,
            tags: tags.to_vec(),
        }
    }

    /// The tag of series `id`, if selected.
    #[inline]
    pub(super) fn get(&self, id: SeriesId) -> Option<u32> {
        match self {
            Self::Dense { base, tags } => {
                let tag = *tags.get(id.wrapping_sub(*base) as usize)?;
                (tag != NOT_SELECTED).then_some(tag)
            }
            Self::Sparse {
                base,
                bits,
                ranks,
                tags,
            } => {
                let i = id.wrapping_sub(*base) as usize;
                let word = *bits.get(i / 64)?;
                let bit = 1u64 << (i % 64);
                if word & bit == 0 {
                    return None;
                }
                let rank = ranks[i / 64] + (word & (bit - 1)).count_ones();
                Some(tags[rank as usize])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use luminate_model::Point;
    use luminate_model::testkit::{self, Rng};

    use super::*;
    use crate::apply::apply_batch;
    use crate::head::Head;
    use crate::index::Index;

    /// Grouping by postings and by looked-up values put every series under the same values, for one
    /// key, several, unknown and missing keys.
    #[test]
    fn grouping_by_postings_equals_grouping_by_values() {
        let mut rng = Rng::new(5);
        let points: Vec<Point> = testkit::random_points(&mut rng, 4_000, 0, 60_000);
        let tenant = super::super::tests::tenant();
        let (mut index, mut head) = (Index::default(), Head::default());
        for batch in super::super::tests::batches(&points, 1) {
            apply_batch(&mut index, &mut head, &batch).unwrap();
        }
        let ti = index.tenant(&tenant).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut keys: Vec<String> = points
            .iter()
            .flat_map(|p| p.dimensions.pairs().iter().map(|(k, _)| k.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        keys.push("no_such_key".to_owned());
        let mut checked = 0;
        for metric in ["m", &points[0].name] {
            let Some(m) = ti.metric_id(metric) else {
                continue;
            };
            let series = ti.metric(m).series.clone();
            let key_sets: Vec<Vec<String>> = keys
                .iter()
                .map(|k| vec![k.clone()])
                .chain(keys.windows(2).map(|w| w.to_vec()))
                .chain([keys.clone()])
                .collect();
            for group_by in key_sets {
                let ids: Vec<Option<StrId>> =
                    group_by.iter().map(|k| ti.strings().get(k)).collect();
                let empty = ti.strings().get("");
                let (a_of, a) = group_by_postings(ti, m, &series, &ids, empty, &pool).unwrap();
                let (b_of, b) = group_by_values(ti, &series, &ids, empty);
                assert_eq!(a.count, b.count, "{group_by:?}");
                for i in 0..series.len() {
                    assert_eq!(a.of(a_of[i]), b.of(b_of[i]), "{group_by:?}, series {i}");
                }
                checked += 1;
            }
        }
        assert!(checked > 5);
    }
}
