//! index: the long-lived series index of every tenant — (metric, dimensions) → dense series id, postings
//! (dimension = value → series ids) and the stored-point counts that discovery, the cardinality explorer
//! and the cardinality limits read. Owns series identity; does not own points (the head and, later, parts
//! hold them) nor files (the WAL, and later the series log, persist it).
//!
//! # Layout, per tenant
//! - an [`Interner`]: every metric name, key and value once, in one arena, named by a [`StrId`];
//! - a [`SeriesTable`]: per series its metric, its pairs (as postings of its metric) and its point count,
//!   in one row plus a shared pair arena;
//! - per metric (dense [`MetricId`]s) a [`MetricIndex`]: its series, postings and counts;
//! - `lookup`, a hash table of series ids whose hash is computed from the *strings* (metric, then each
//!   key and value), so finding an existing series hashes the caller's strings once, probes once and
//!   compares strings: it interns nothing and allocates nothing.
//!
//! # Memory
//! Measured by `examples/index_memory.rs` (2 000 000 series of one metric with four dimensions, shaped
//! like the benchmark): 85 bytes per series including postings and the lookup table (93 bytes of resident
//! set) — 32 in the series table (a 16-byte row of 4 metric + 4 pair end + 8 points, and 4 × 4 pairs),
//! 4 in the metric's series list, 4 × 4 in postings, about 18 in the lookup table (8-byte entries: the
//! id and a hash tag, so growing the table never reads a series' strings), plus vector growth and the
//! strings. Before this index, a series cost about 750 bytes. See docs/engine.md, "Memory".
//!
//! # Invariants
//! - Series ids are dense per tenant, assigned in log order and never reused ([`TenantIndex::insert_with_id`]
//!   refuses anything else); a series' definition never changes and is never removed.
//! - A series is *live* while it holds a stored point, a metric while one of its series is, a tenant
//!   while one of its metrics is. Only live things are visible to discovery and count against limits; a
//!   series whose points were all deleted keeps its id (records refer to it) and comes back under it.
//! - Counts move only through [`TenantIndex::add_points`], which keeps a metric's and each posting's
//!   counts equal to the sums over their series.

mod discovery;
mod interner;
mod metric;
mod series;
mod staging;

use std::cmp::Ordering;
use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use luminate_model::{Dimensions, PointRef, Tenant};

use crate::record::SeriesId;
pub(crate) use interner::{Interner, StrId};
pub(crate) use metric::{MetricId, MetricIndex, PostingId};
use series::SeriesTable;
pub(crate) use staging::{KnownNames, NewSeriesIds, Prepared, Staging};

/// Points looked up together by [`TenantIndex::find_live_run`]: enough misses in flight to fill the
/// processor's queue of them, few enough that what a run reads stays in the first-level caches.
const LOOKUP_RUN: usize = 32;

/// Every tenant's index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    tenants: HashMap<Tenant, TenantIndex>,
}

impl Index {
    /// The tenant's index, if it ever defined a series.
    pub(crate) fn tenant(&self, tenant: &Tenant) -> Option<&TenantIndex> {
        self.tenants.get(tenant)
    }

    /// The tenant's index, created empty when new.
    pub(crate) fn tenant_mut(&mut self, tenant: &Tenant) -> &mut TenantIndex {
        self.tenants.entry(tenant.clone()).or_default()
    }

    /// The tenant's index for changing its counts, if it ever defined a series.
    pub(crate) fn existing_tenant_mut(&mut self, tenant: &Tenant) -> Option<&mut TenantIndex> {
        self.tenants.get_mut(tenant)
    }

    /// Tenants with at least one stored point.
    pub(crate) fn live_tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants
            .iter()
            .filter(|(_, t)| t.live_metrics > 0)
            .map(|(name, _)| name)
    }

    /// Heap bytes held and series defined, over every tenant.
    pub(crate) fn usage(&self) -> (usize, u64) {
        self.tenants.values().fold((0, 0), |(bytes, series), t| {
            (bytes + t.heap_bytes(), series + t.series_count() as u64)
        })
    }

    /// Every tenant's index (for writing the series definitions out).
    pub(crate) fn tenants(&self) -> impl Iterator<Item = (&Tenant, &TenantIndex)> {
        self.tenants.iter()
    }
}

/// One tenant's strings, series and metrics.
#[derive(Default)]
pub(crate) struct TenantIndex {
    strings: Interner,
    series: SeriesTable,
    /// Series ids by the hash of their strings, each with the hash's upper 32 bits (see [`Tagged`]).
    lookup: HashTable<Tagged>,
    hasher: DefaultHashBuilder,
    /// By [`MetricId`].
    metrics: Vec<MetricIndex>,
    /// Metric name → id.
    metric_ids: HashMap<StrId, MetricId>,
    /// Metric ids sorted by name, so discovery lists names in order without sorting.
    by_name: Vec<MetricId>,
    live_metrics: u64,
    /// Posting ids of the series being defined (kept to avoid an allocation per definition).
    scratch: Vec<PostingId>,
}

impl TenantIndex {
    /// The series of `metric` with exactly `dims`, if defined. Allocates nothing.
    #[cfg(test)]
    pub(crate) fn find(&self, metric: &str, dims: &Dimensions) -> Option<SeriesId> {
        self.find_pairs(
            metric,
            dims.pairs().iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// The series of `metric` with exactly these pairs (sorted by key, unique keys), if defined.
    /// Allocates nothing.
    pub(crate) fn find_pairs<'a>(
        &self,
        metric: &str,
        pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<SeriesId> {
        self.find_hashed(self.hash(metric, pairs.clone()), metric, pairs)
    }

    /// The lookup hash of `metric` with these pairs: computed once, it serves [`Self::find_hashed`] and
    /// [`Self::insert_hashed`] (the writer thread hashes a new series once, not once per step). Only
    /// valid for this tenant's index (each has its own hasher).
    pub(crate) fn hash<'a>(
        &self,
        metric: &str,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> u64 {
        hash_series(&self.hasher, metric, pairs)
    }

    /// [`Self::find_pairs`] with the hash computed by [`Self::hash`].
    pub(crate) fn find_hashed<'a>(
        &self,
        hash: u64,
        metric: &str,
        pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<SeriesId> {
        let tagged = Tagged::new(hash, 0);
        self.lookup
            .find(tagged.table_hash(), |entry| {
                entry.tag == tagged.tag && self.series_is(entry.id, metric, pairs.clone())
            })
            .map(|entry| entry.id)
    }

    /// The live series of each of `points`, whose [`Self::hash`]es are `hashes`: `Some` only for a
    /// series that is defined, holds a point and is exactly the point's metric and pairs (as
    /// [`Self::find_hashed`] then [`Self::is_live`] would say); `None` for every other point, including
    /// the rare one whose answer this pass could not settle cheaply — the caller resolves those exactly.
    /// Appends one answer per point to `out`.
    ///
    /// Each lookup is a chain of dependent cache misses (table slot, series row, pair list, postings,
    /// strings): over millions of series each one is a trip to memory. Looked up one point at a time,
    /// the chains run one after another; here a run of [`LOOKUP_RUN`] points goes through them stage by
    /// stage (every slot, then every row, then every pair list and its postings, then the compares), so
    /// the processor has the misses of a whole run in flight at once.
    pub(crate) fn find_live_run(
        &self,
        hashes: &[u64],
        points: &[PointRef<'_>],
        out: &mut Vec<Option<SeriesId>>,
    ) {
        for (hashes, points) in hashes.chunks(LOOKUP_RUN).zip(points.chunks(LOOKUP_RUN)) {
            let mut found = [None::<SeriesId>; LOOKUP_RUN];
            // Slots: the first entry with the point's tag. Another series may share a tag (one in
            // 2^32 per series); then the compare below fails and the point is left to the caller.
            for (f, &hash) in found.iter_mut().zip(hashes) {
                let tagged = Tagged::new(hash, 0);
                *f = self
                    .lookup
                    .find(tagged.table_hash(), |e| e.tag == tagged.tag)
                    .map(|e| e.id);
            }
            // Rows: a series without points is not live, whatever its strings.
            for f in &mut found {
                *f = f.filter(|&id| self.is_live(id));
            }
            // Pair lists and postings, read ahead of the compares that need them.
            let mut touched = 0u32;
            for &id in found.iter().flatten() {
                let m = &self.metrics[self.series.metric(id) as usize];
                for &p in self.series.pairs(id) {
                    touched ^= m.postings[p as usize].value;
                }
            }
            std::hint::black_box(touched);
            for (f, p) in found.iter().zip(points) {
                out.push(f.filter(|&id| self.series_is(id, p.name, p.pairs())));
            }
        }
    }

    /// The metric of `metric` with these pairs, appending the posting of each pair to `postings`, when
    /// the index holds the metric and every posting already (`None` otherwise; `postings` may then hold
    /// some of them). Allocates nothing but `postings`' growth.
    pub(crate) fn known_names<'a>(
        &self,
        metric: &str,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        postings: &mut Vec<PostingId>,
    ) -> Option<MetricId> {
        let m = self.metric_id(metric)?;
        let mi = &self.metrics[m as usize];
        for (k, v) in pairs {
            let (k, v) = (self.strings.get(k)?, self.strings.get(v)?);
            postings.push(mi.posting_id(k, v)?);
        }
        Some(m)
    }

    /// Defines series `id` of metric `m` with the pairs of `postings` (ids [`Self::known_names`] gave
    /// for its names), whose [`Self::hash`] is `hash`, after the caller checked that it does not exist
    /// yet and that `id` is the next id: the same change as [`Self::insert_hashed`] of its strings,
    /// without interning or hashing one.
    pub(crate) fn insert_known(
        &mut self,
        id: SeriesId,
        m: MetricId,
        postings: &[PostingId],
        hash: u64,
    ) -> Result<(), String> {
        let next = self.series.next_id(postings.len())?;
        if id != next {
            return Err(format!(
                "series {id} defined where series {next} was expected"
            ));
        }
        let metric = &mut self.metrics[m as usize];
        for &p in postings {
            metric.postings[p as usize].series.push(id);
        }
        metric.series.push(id);
        self.series.push(m, postings.iter().copied());
        let entry = Tagged::new(hash, id);
        self.lookup
            .insert_unique(entry.table_hash(), entry, Tagged::table_hash);
        Ok(())
    }

    /// Defines series `id` of `metric` with `dims`. It must be the next id (ids are dense and in log
    /// order) and must not exist yet; otherwise nothing changes and the error says why.
    pub(crate) fn insert_with_id(
        &mut self,
        id: SeriesId,
        metric: &str,
        dims: &Dimensions,
    ) -> Result<(), String> {
        let next = self.series.next_id(dims.len())?;
        if id != next {
            return Err(format!(
                "series {id} defined where series {next} was expected"
            ));
        }
        let pairs = dims.pairs().iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let hash = self.hash(metric, pairs.clone());
        if self.find_hashed(hash, metric, pairs).is_some() {
            return Err(format!(
                "series {id} redefines an existing series of metric {metric:?}"
            ));
        }
        self.insert_hashed(id, metric, dims, hash)
    }

    /// Defines series `id` of `metric` with `dims`, whose [`Self::hash`] is `hash`, after the caller
    /// checked that it does not exist yet ([`Self::find_hashed`]) and that `id` is the next id.
    pub(crate) fn insert_hashed(
        &mut self,
        id: SeriesId,
        metric: &str,
        dims: &Dimensions,
        hash: u64,
    ) -> Result<(), String> {
        let next = self.series.next_id(dims.len())?;
        if id != next {
            return Err(format!(
                "series {id} defined where series {next} was expected"
            ));
        }
        let m = self.metric_for(metric)?;
        // A reused buffer: defining a series allocates only what it adds to the columns.
        let mut posting_ids = std::mem::take(&mut self.scratch);
        posting_ids.clear();
        for (k, v) in dims.pairs() {
            let (k, v) = (self.strings.intern(k)?, self.strings.intern(v)?);
            let metric = &mut self.metrics[m as usize];
            let p = metric.posting_for(k, v)?;
            metric.postings[p as usize].series.push(id);
            posting_ids.push(p);
        }
        self.series.push(m, posting_ids.iter().copied());
        self.scratch = posting_ids;
        self.metrics[m as usize].series.push(id);
        let entry = Tagged::new(hash, id);
        self.lookup
            .insert_unique(entry.table_hash(), entry, Tagged::table_hash);
        Ok(())
    }

    /// Moves the counts after series `id` gained (`delta > 0`) or lost stored points.
    pub(crate) fn add_points(&mut self, id: SeriesId, delta: i64) {
        let (was_live, is_live) = self.series.add_points(id, delta);
        let m = &mut self.metrics[self.series.metric(id) as usize];
        let metric_was_live = m.is_live();
        m.points = m.points.saturating_add_signed(delta);
        let live_delta = i64::from(is_live) - i64::from(was_live);
        m.live_series = m.live_series.saturating_add_signed(live_delta);
        for &p in self.series.pairs(id) {
            let posting = &mut m.postings[p as usize];
            posting.points = posting.points.saturating_add_signed(delta);
            posting.live_series = posting.live_series.saturating_add_signed(live_delta);
        }
        match (metric_was_live, m.is_live()) {
            (false, true) => self.live_metrics += 1,
            (true, false) => self.live_metrics -= 1,
            _ => {}
        }
    }

    /// [`Self::add_points`] of each (series, delta), a run of [`LOOKUP_RUN`] at a time: first the
    /// run's rows and postings are read in loops of independent loads (their cache misses overlap),
    /// then counted.
    pub(crate) fn add_points_many(&mut self, runs: &[(SeriesId, i64)]) {
        for run in runs.chunks(LOOKUP_RUN) {
            let mut touched = 0u64;
            for &(id, _) in run {
                touched ^= self.series.points(id);
            }
            for &(id, _) in run {
                let m = &self.metrics[self.series.metric(id) as usize];
                for &p in self.series.pairs(id) {
                    touched ^= m.postings[p as usize].points;
                }
            }
            std::hint::black_box(touched);
            for &(id, delta) in run {
                self.add_points(id, delta);
            }
        }
    }

    /// Number of series defined (the next id).
    pub(crate) fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Stored points of series `id` (head and parts).
    pub(crate) fn series_points(&self, id: SeriesId) -> u64 {
        self.series.points(id)
    }

    /// True when series `id` holds a stored point.
    pub(crate) fn is_live(&self, id: SeriesId) -> bool {
        self.series.points(id) > 0
    }

    /// Live metrics (for the per-tenant limit).
    pub(crate) fn live_metrics(&self) -> u64 {
        self.live_metrics
    }

    /// The metric's id, if the metric ever had a series.
    pub(crate) fn metric_id(&self, name: &str) -> Option<MetricId> {
        self.metric_ids.get(&self.strings.get(name)?).copied()
    }

    /// A metric's name.
    pub(crate) fn metric_name(&self, id: MetricId) -> &str {
        self.strings.resolve(self.metrics[id as usize].name)
    }

    /// A metric by id.
    pub(crate) fn metric(&self, id: MetricId) -> &MetricIndex {
        &self.metrics[id as usize]
    }

    /// The metric of series `id`.
    pub(crate) fn metric_of(&self, id: SeriesId) -> MetricId {
        self.series.metric(id)
    }

    /// The tenant's strings.
    pub(crate) fn strings(&self) -> &Interner {
        &self.strings
    }

    /// Series `id` (an id below `series_count`), resolved to strings on demand.
    pub(crate) fn series(&self, id: SeriesId) -> SeriesView<'_> {
        SeriesView {
            strings: &self.strings,
            series: &self.series,
            metrics: &self.metrics,
            id,
        }
    }

    /// Series `id`'s metric name and (key, value) pairs as interned string ids, keys in order (the
    /// series log writes them without resolving or hashing a string).
    pub(crate) fn series_str_ids(
        &self,
        id: SeriesId,
    ) -> (StrId, impl Iterator<Item = (StrId, StrId)> + '_) {
        let m = &self.metrics[self.series.metric(id) as usize];
        let pairs = self.series.pairs(id).iter().map(move |&p| {
            let p = &m.postings[p as usize];
            (p.key, p.value)
        });
        (m.name, pairs)
    }

    /// The pairs of series `id`, as ids of its metric's postings (queries group series by them).
    pub(crate) fn posting_ids(&self, id: SeriesId) -> &[PostingId] {
        self.series.pairs(id)
    }

    /// The value id of `key` in series `id`, if the series carries the key.
    pub(crate) fn value_of(&self, id: SeriesId, key: StrId) -> Option<StrId> {
        let m = &self.metrics[self.series.metric(id) as usize];
        self.series
            .pairs(id)
            .iter()
            .map(|&p| &m.postings[p as usize])
            .find(|p| p.key == key)
            .map(|p| p.value)
    }

    /// Orders two series by their dimensions as `Dimensions` orders them.
    pub(crate) fn cmp_dims(&self, a: SeriesId, b: SeriesId) -> Ordering {
        self.series(a).pairs().cmp(self.series(b).pairs())
    }

    /// Heap bytes held (capacities), for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.strings.heap_bytes()
            + self.series.heap_bytes()
            + self.lookup.allocation_size()
            + self.metrics.capacity() * size_of::<MetricIndex>()
            + self
                .metrics
                .iter()
                .map(MetricIndex::heap_bytes)
                .sum::<usize>()
            + self.metric_ids.allocation_size()
            + self.by_name.capacity() * size_of::<MetricId>()
    }

    /// True when series `id` is `metric` with exactly `pairs`.
    fn series_is<'a>(
        &self,
        id: SeriesId,
        metric: &str,
        pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> bool {
        let view = self.series(id);
        view.metric() == metric
            && self.series.pairs(id).len() == pairs.len()
            && view.pairs().zip(pairs).all(|(a, b)| a == b)
    }

    /// The id of `name`, creating the metric when new.
    fn metric_for(&mut self, name: &str) -> Result<MetricId, String> {
        let name_id = self.strings.intern(name)?;
        if let Some(&m) = self.metric_ids.get(&name_id) {
            return Ok(m);
        }
        let m = MetricId::try_from(self.metrics.len())
            .map_err(|_| format!("the tenant has all {} metrics", MetricId::MAX))?;
        self.metrics.push(MetricIndex::new(name_id));
        self.metric_ids.insert(name_id, m);
        let strings = &self.strings;
        let metrics = &self.metrics;
        let at = self
            .by_name
            .partition_point(|&other| strings.resolve(metrics[other as usize].name) < name);
        self.by_name.insert(at, m);
        Ok(m)
    }
}

impl std::fmt::Debug for TenantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantIndex")
            .field("strings", &self.strings)
            .field("series", &self.series.len())
            .field("metrics", &self.metrics.len())
            .field("live_metrics", &self.live_metrics)
            .finish()
    }
}

/// One series of a tenant, resolved to strings on demand.
#[derive(Clone, Copy)]
pub(crate) struct SeriesView<'a> {
    strings: &'a Interner,
    series: &'a SeriesTable,
    metrics: &'a [MetricIndex],
    id: SeriesId,
}

impl<'a> SeriesView<'a> {
    /// Its metric's name.
    pub(crate) fn metric(&self) -> &'a str {
        let m = &self.metrics[self.series.metric(self.id) as usize];
        self.strings.resolve(m.name)
    }

    /// Its (key, value) pairs, sorted by key.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let (strings, m) = (
            self.strings,
            &self.metrics[self.series.metric(self.id) as usize],
        );
        self.series.pairs(self.id).iter().map(move |&p| {
            let p = &m.postings[p as usize];
            (strings.resolve(p.key), strings.resolve(p.value))
        })
    }

    /// Its dimensions, as an owned value (for results).
    pub(crate) fn dimensions(&self) -> Dimensions {
        Dimensions::from_pairs(self.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())))
    }
}

/// An entry of the lookup table: a series id and the upper 32 bits of its series hash.
///
/// The table is keyed by a hash derived from the tag alone, so growing the table rehashes each entry
/// from the entry itself: rehashing from the strings cost several cache misses per series (a fifth of
/// the writer thread's time while 2 M series were defined). The tag also turns away most other series
/// before their strings are compared. Costs 4 bytes per slot.
#[derive(Debug, Clone, Copy)]
struct Tagged {
    id: SeriesId,
    tag: u32,
}

impl Tagged {
    fn new(hash: u64, id: SeriesId) -> Self {
        Self {
            id,
            tag: (hash >> 32) as u32,
        }
    }

    /// The table's hash: the tag spread over 64 bits (the table takes its bucket from the low bits and
    /// its control byte from the high ones).
    fn table_hash(&self) -> u64 {
        u64::from(self.tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// The lookup hash of a series: its metric, then each key and value (a `str` hash ends with a
/// terminator byte, so the concatenation is unambiguous).
fn hash_series<'a>(
    hasher: &DefaultHashBuilder,
    metric: &str,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> u64 {
    let mut h = hasher.build_hasher();
    metric.hash(&mut h);
    for (k, v) in pairs {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests;
