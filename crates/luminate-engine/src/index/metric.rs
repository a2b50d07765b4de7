//! One metric's part of the index: its series, its postings (dimension = value → series) and the counts
//! discovery and the cardinality limits read. Knows no strings (only [`StrId`]s) and no points.
//!
//! Invariants (kept by `TenantIndex`):
//! - `series` and every posting's `series` are ascending (series ids only grow) and never shrink: a
//!   series whose points were all deleted stays, with zero points.
//! - `points` is the sum of its series' stored points; a posting's `points` the sum over its series;
//!   `live_series` counts those series holding a point.

use hashbrown::HashMap;

use super::interner::StrId;
use crate::record::SeriesId;

/// A metric's number within its tenant: dense, in creation order.
pub(crate) type MetricId = u32;
/// A posting's number within its metric: what a series' dimension arena stores per pair.
pub(crate) type PostingId = u32;

/// The series carrying one dimension value, and their counts.
#[derive(Debug)]
pub(crate) struct Posting {
    /// The dimension key.
    pub key: StrId,
    /// The dimension value.
    pub value: StrId,
    /// Ascending.
    pub series: Vec<SeriesId>,
    /// Stored points of those series: discovery orders values by it.
    pub points: u64,
    /// Those series holding a point: the value is visible while this is non-zero.
    pub live_series: u64,
}

/// One metric's series, postings and counts.
#[derive(Debug)]
pub(crate) struct MetricIndex {
    /// The metric's name.
    pub name: StrId,
    /// Every series of the metric, ascending.
    pub series: Vec<SeriesId>,
    /// By [`PostingId`].
    pub postings: Vec<Posting>,
    /// (key, value) → posting.
    by_pair: HashMap<(StrId, StrId), PostingId>,
    /// Key → its postings, in creation order (discovery lists a key's values).
    by_key: HashMap<StrId, Vec<PostingId>>,
    /// Series holding a point.
    pub live_series: u64,
    /// Stored points.
    pub points: u64,
}

impl MetricIndex {
    pub(crate) fn new(name: StrId) -> Self {
        Self {
            name,
            series: Vec::new(),
            postings: Vec::new(),
            by_pair: HashMap::default(),
            by_key: HashMap::default(),
            live_series: 0,
            points: 0,
        }
    }

    /// True when a point of the metric is stored.
    pub(crate) fn is_live(&self) -> bool {
        self.live_series > 0
    }

    /// The posting of `key = value`, if a series carries it.
    pub(crate) fn posting_id(&self, key: StrId, value: StrId) -> Option<PostingId> {
        self.by_pair.get(&(key, value)).copied()
    }

    /// The postings of `key` (empty when no series carries it).
    pub(crate) fn postings_of_key(&self, key: StrId) -> &[PostingId] {
        self.by_key.get(&key).map_or(&[], Vec::as_slice)
    }

    /// Keys carried by some series of the metric.
    pub(crate) fn keys(&self) -> impl Iterator<Item = (StrId, &[PostingId])> {
        self.by_key.iter().map(|(&k, ids)| (k, ids.as_slice()))
    }

    /// The posting of `key = value`, created when new; `Err` when the metric has used all posting ids.
    pub(crate) fn posting_for(&mut self, key: StrId, value: StrId) -> Result<PostingId, String> {
        if let Some(&id) = self.by_pair.get(&(key, value)) {
            return Ok(id);
        }
        let id = PostingId::try_from(self.postings.len())
            .map_err(|_| format!("the metric has all {} postings", PostingId::MAX))?;
        self.postings.push(Posting {
            key,
            value,
            series: Vec::new(),
            points: 0,
            live_series: 0,
        });
        self.by_pair.insert((key, value), id);
        self.by_key.entry(key).or_default().push(id);
        Ok(id)
    }

    /// Heap bytes held (capacities), for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.series.capacity() * size_of::<SeriesId>()
            + self.postings.capacity() * size_of::<Posting>()
            + self
                .postings
                .iter()
                .map(|p| p.series.capacity() * size_of::<SeriesId>())
                .sum::<usize>()
            + self.by_pair.allocation_size()
            + self.by_key.allocation_size()
            + self
                .by_key
                .values()
                .map(|v| v.capacity() * size_of::<PostingId>())
                .sum::<usize>()
    }
}
