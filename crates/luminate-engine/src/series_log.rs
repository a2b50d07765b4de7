//! series_log: the series log (`<data_dir>/series/`) — every series definition, append-only, never
//! truncated — written by the flusher and replayed into the index at start-up. Owns which strings and
//! series the log already holds; the framing is `wal`'s, the record layout `record`'s (`SERIES_BATCH`).
//!
//! A flush appends, per tenant, the series defined since the previous flush in batches of at most
//! `MAX_BATCH_SERIES`, each carrying the strings no earlier record of the tenant carried, then fsyncs.
//! Strings are named by *log string ids*, dense per tenant in log order; they are not the index's
//! interner ids (the interner is rebuilt in series order at start-up, and may hold strings no
//! persisted series uses), so the writer keeps, per tenant, the log id of each interner string.
//!
//! Replay rebuilds each tenant's table of log strings and defines every series with its logged id, in
//! log order; a record naming an unknown string, out of key order or not continuing the tenant's ids is
//! corruption. Records of the earlier `SERIES_DEFS` format (strings spelt out) are replayed too; their
//! strings are written to the log again the first time a new series uses them.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;

use luminate_model::{Dimensions, Tenant};

use crate::error::EngineError;
use crate::index::{Index, StrId, TenantIndex};
use crate::record::{MAX_BATCH_PAIRS, MAX_BATCH_SERIES, MAX_PAIRS, Record, SeriesBatch, SeriesId};
use crate::wal::{self, Replayed, Start, Wal};

/// Log string id of an interner string the log does not hold yet.
const NOT_LOGGED: u32 = u32::MAX;

/// The open series log and what it holds.
pub(crate) struct SeriesLog {
    log: Wal,
    tenants: HashMap<Tenant, Logged>,
    /// Records appended and not fsynced yet (an earlier `persist` failed after appending them).
    unsynced: bool,
}

/// What the log holds of one tenant.
#[derive(Debug, Default)]
struct Logged {
    /// Series persisted: ids below it are in the log.
    series: usize,
    /// Log string id of each interner string (by `StrId`), `NOT_LOGGED` when not in the log; shorter
    /// than the interner when its last strings are new.
    log_ids: Vec<u32>,
    /// The next log string id.
    next_id: u32,
}

/// Log strings of one tenant during replay: one arena and end offsets, by log string id.
#[derive(Debug, Default)]
pub(crate) struct LogStrings {
    bytes: String,
    ends: Vec<usize>,
}

impl LogStrings {
    fn get(&self, id: u32) -> Option<&str> {
        let id = id as usize;
        let end = *self.ends.get(id)?;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        Some(&self.bytes[start..end])
    }
}

/// The series log read and replayed, not yet touched (see [`Wal::recover`]).
pub(crate) struct Recovered {
    log: wal::Recovered,
    tenants: HashMap<Tenant, Logged>,
}

impl Recovered {
    /// The torn tail opening the log would cut off, if any (`luminate check` reports it).
    pub(crate) fn dropped(&self) -> &[crate::error::DroppedTail] {
        self.log.dropped()
    }

    /// Continues the log (cuts its torn tail off, creates it when new): see [`wal::Recovered::open`].
    pub(crate) fn open(self, segment_bytes: u64) -> Result<(SeriesLog, Replayed), EngineError> {
        let (log, replayed) = self.log.open(segment_bytes)?;
        Ok((
            SeriesLog {
                log,
                tenants: self.tenants,
                unsynced: false,
            },
            replayed,
        ))
    }
}

impl SeriesLog {
    /// Reads the log in `dir` without changing it, replaying every record into `index` (a torn tail
    /// of the last segment is left out, and cut off by [`Recovered::open`], as in the WAL: a flush
    /// fsyncs the log before its parts exist, so a torn record's series are still in the WAL).
    pub(crate) fn recover(dir: &Path, index: &mut Index) -> Result<Recovered, EngineError> {
        let mut strings: HashMap<Tenant, LogStrings> = HashMap::new();
        let log = Wal::recover(dir, Start::First, |path, offset, payload| {
            replay(index, &mut strings, payload).map_err(|reason| EngineError::Corruption {
                path: path.to_path_buf(),
                offset,
                reason,
            })
        })?;
        let tenants = index
            .tenants()
            .map(|(tenant, ti)| {
                let mut logged = Logged {
                    series: ti.series_count(),
                    log_ids: vec![NOT_LOGGED; ti.strings().len()],
                    next_id: 0,
                };
                if let Some(log) = strings.get(tenant) {
                    logged.next_id = log.ends.len() as u32;
                    for id in 0..logged.next_id {
                        let s = log.get(id).unwrap_or_default();
                        if let Some(sid) = ti.strings().get(s) {
                            logged.log_ids[sid as usize] = id;
                        }
                    }
                }
                (tenant.clone(), logged)
            })
            .collect();
        Ok(Recovered { log, tenants })
    }

    /// [`SeriesLog::recover`], then [`Recovered::open`].
    #[cfg(test)]
    pub(crate) fn open(
        dir: &Path,
        segment_bytes: u64,
        index: &mut Index,
    ) -> Result<Self, EngineError> {
        Ok(Self::recover(dir, index)?.open(segment_bytes)?.0)
    }

    /// Appends every series `index` defined since the last call (or since `open`) and fsyncs: parts
    /// refer to series by id, so their definitions must be durable before the WAL records holding them
    /// are deleted. The index lock is taken once per batch, only to copy its ids and new strings.
    ///
    /// A record that does not fit the disk is cut off the log again (`NoSpace`, see [`Wal::append`])
    /// and its series are marked unlogged again, so the next call appends them; the records appended
    /// before it stay, and are fsynced by the next call that succeeds.
    pub(crate) fn persist<I: Deref<Target = Index>>(
        &mut self,
        read_index: impl Fn() -> I,
    ) -> Result<(), EngineError> {
        loop {
            let batch = {
                let index = read_index();
                let mut next = None;
                for (tenant, ti) in index.tenants() {
                    let logged = self.tenants.entry(tenant.clone()).or_default();
                    if logged.series < ti.series_count() {
                        let before = (logged.series, logged.next_id);
                        next = Some((logged.batch(tenant, ti), before));
                        break;
                    }
                }
                next
            };
            let Some((batch, (series, next_id))) = batch else {
                break;
            };
            let record = batch.encode().map_err(|e| EngineError::Io {
                op: "encode series definitions for",
                path: self.log.dir().to_path_buf(),
                source: std::io::Error::other(e),
            })?;
            if let Err(e) = self.log.append(&record) {
                if let Some(logged) = self.tenants.get_mut(&batch.tenant) {
                    logged.unlog(series, next_id);
                }
                return Err(e);
            }
            self.unsynced = true;
        }
        if self.unsynced {
            self.log.sync()?;
            self.unsynced = false;
        }
        Ok(())
    }
}

impl SeriesLog {
    /// Where the log ends: after [`SeriesLog::persist`] returned, everything it appended is before it
    /// and fsynced.
    pub(crate) fn end(&self) -> wal::LogEnd {
        self.log.end()
    }
}

impl Logged {
    /// Forgets the series and strings marked logged since `series` and `next_id` (their record was not
    /// appended).
    fn unlog(&mut self, series: usize, next_id: u32) {
        self.series = series;
        self.next_id = next_id;
        for id in &mut self.log_ids {
            if *id != NOT_LOGGED && *id >= next_id {
                *id = NOT_LOGGED;
            }
        }
    }

    /// The next batch of `ti`'s unlogged series, with the strings they use that the log lacks; marks
    /// them logged.
    fn batch(&mut self, tenant: &Tenant, ti: &TenantIndex) -> SeriesBatch {
        let strings = ti.strings();
        let end = ti.series_count().min(self.series + MAX_BATCH_SERIES);
        let mut batch = SeriesBatch {
            tenant: tenant.clone(),
            first_string: self.next_id,
            strings: Vec::new(),
            first_series: self.series as u32,
            metrics: Vec::new(),
            pair_counts: Vec::new(),
            pairs: Vec::new(),
        };
        // Series name their strings by interner id, so a string's log id is one array read (its text
        // is read only the first time it is logged).
        let mut log_id = |sid: StrId| -> u32 {
            let sid = sid as usize;
            if sid >= self.log_ids.len() {
                self.log_ids.resize(strings.len().max(sid + 1), NOT_LOGGED);
            }
            if self.log_ids[sid] != NOT_LOGGED {
                return self.log_ids[sid];
            }
            self.log_ids[sid] = self.next_id;
            batch.strings.push(strings.resolve(sid as StrId).to_owned());
            self.next_id += 1;
            self.next_id - 1
        };
        let (mut metrics, mut pair_counts, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
        let mut end = end;
        for id in self.series..end {
            // Close the batch while any series still fits under the reader's bound on pairs.
            if pairs.len() > MAX_BATCH_PAIRS - MAX_PAIRS as usize {
                end = id;
                break;
            }
            let (metric, series_pairs) = ti.series_str_ids(id as SeriesId);
            metrics.push(log_id(metric));
            let before = pairs.len();
            for (k, v) in series_pairs {
                pairs.push((log_id(k), log_id(v)));
            }
            pair_counts.push((pairs.len() - before) as u32);
        }
        (batch.metrics, batch.pair_counts, batch.pairs) = (metrics, pair_counts, pairs);
        self.series = end;
        batch
    }
}

/// Applies one record of the series log to the index; `Err` says why it is corrupt.
pub(crate) fn replay(
    index: &mut Index,
    strings: &mut HashMap<Tenant, LogStrings>,
    payload: &[u8],
) -> Result<(), String> {
    match Record::decode(payload) {
        Ok(Record::SeriesBatch(batch)) => {
            let log = strings.entry(batch.tenant.clone()).or_default();
            if batch.first_string as usize != log.ends.len() {
                return Err(format!(
                    "strings from log id {} where {} was expected",
                    batch.first_string,
                    log.ends.len()
                ));
            }
            for s in &batch.strings {
                log.bytes.push_str(s);
                log.ends.push(log.bytes.len());
            }
            let ti = index.tenant_mut(&batch.tenant);
            for (id, metric, pairs) in batch.series() {
                let resolve = |id: u32| {
                    log.get(id)
                        .ok_or_else(|| format!("series names string {id}, not in the log"))
                };
                let metric = resolve(metric)?;
                let mut dims = Vec::with_capacity(pairs.len());
                for &(k, v) in pairs {
                    let k = resolve(k)?;
                    if dims
                        .last()
                        .is_some_and(|(last, _): &(String, String)| last.as_str() >= k)
                    {
                        return Err(format!("series {id} has its keys out of order"));
                    }
                    dims.push((k.to_owned(), resolve(v)?.to_owned()));
                }
                ti.insert_with_id(id, metric, &Dimensions::from_pairs(dims))?;
            }
            Ok(())
        }
        Ok(Record::Series(defs)) => {
            let ti = index.tenant_mut(&defs.tenant);
            for def in &defs.series {
                ti.insert_with_id(def.id, &def.metric, &def.dims)?;
            }
            Ok(())
        }
        Ok(_) => Err("a WAL record in the series log".to_owned()),
        Err(e) => Err(format!(
            "undecodable record (payload byte {}): {}",
            e.offset, e.reason
        )),
    }
}

#[cfg(test)]
mod tests;
