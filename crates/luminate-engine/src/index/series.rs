//! The series table of one tenant: per dense [`SeriesId`], its metric, its dimension pairs and its stored
//! point count, as columns (no allocation per series). Knows ids only; `TenantIndex` resolves them.
//!
//! A series' pairs are stored as [`PostingId`]s of its metric (the posting names the key and value),
//! sorted by key as `Dimensions` are: 4 bytes per pair instead of 8 for (key, value) ids, and counting a
//! point reaches each posting's counters without a hash lookup.

use super::metric::{MetricId, PostingId};
use crate::record::SeriesId;

/// Columns indexed by series id.
#[derive(Debug, Default)]
pub(crate) struct SeriesTable {
    metric: Vec<MetricId>,
    /// End offset of series `i`'s pairs in `pairs` (its start is the end of `i - 1`).
    pair_ends: Vec<u32>,
    pairs: Vec<PostingId>,
    /// Stored points: the series is live while non-zero.
    points: Vec<u64>,
}

impl SeriesTable {
    /// Number of series (the next id).
    pub(crate) fn len(&self) -> usize {
        self.metric.len()
    }

    /// The series' metric.
    pub(crate) fn metric(&self, id: SeriesId) -> MetricId {
        self.metric[id as usize]
    }

    /// The series' pairs as postings of its metric, in key order.
    pub(crate) fn pairs(&self, id: SeriesId) -> &[PostingId] {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.pair_ends[id - 1] as usize
        };
        &self.pairs[start..self.pair_ends[id] as usize]
    }

    /// The series' stored points.
    pub(crate) fn points(&self, id: SeriesId) -> u64 {
        self.points[id as usize]
    }

    /// Checks that a series with `pairs` pairs can be appended; returns its id.
    pub(crate) fn next_id(&self, pairs: usize) -> Result<SeriesId, String> {
        let id = SeriesId::try_from(self.len())
            .map_err(|_| format!("the tenant has used all {} series ids", SeriesId::MAX))?;
        u32::try_from(self.pairs.len() + pairs)
            .map_err(|_| "the tenant's series table holds 4 Gi dimension pairs".to_owned())?;
        Ok(id)
    }

    /// Appends a series (after `next_id` said it fits).
    pub(crate) fn push(&mut self, metric: MetricId, pairs: impl IntoIterator<Item = PostingId>) {
        self.metric.push(metric);
        self.pairs.extend(pairs);
        self.pair_ends.push(self.pairs.len() as u32);
        self.points.push(0);
    }

    /// Adds `delta` stored points; returns whether the series was live before and is live after.
    pub(crate) fn add_points(&mut self, id: SeriesId, delta: i64) -> (bool, bool) {
        let n = &mut self.points[id as usize];
        let was = *n > 0;
        *n = n.saturating_add_signed(delta);
        (was, *n > 0)
    }

    /// Heap bytes held (capacities), for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.metric.capacity() * size_of::<MetricId>()
            + self.pair_ends.capacity() * size_of::<u32>()
            + self.pairs.capacity() * size_of::<PostingId>()
            + self.points.capacity() * size_of::<u64>()
    }
}
