//! wal: a segmented write-ahead log of opaque, checksummed records. It knows nothing of series, points
//! or threads: the commit pipeline (`crate::commit`) decides what a record means, batches appends and
//! says when to sync; `crate::record` encodes the payloads.
//!
//! Two logs use it: the WAL (`<data_dir>/wal`, write batches — keyed ones with their idempotency key —
//! and deletes since the last flush, and the live keys a flush carried over; a flush deletes the
//! segments below the manifest's `wal_start`, and replay starts there) and the series log
//! (`<data_dir>/series`, series definitions, never truncated).
//!
//! # On-disk layout (format version 1)
//! ```text
//! <data_dir>/wal/00000001.wal, 00000002.wal, ...   eight decimal digits, consecutive, log order
//! segment := header record*
//! header  := MAGIC "LWAL" (4 bytes) | FORMAT_V1 (u32 LE)                      HEADER_LEN = 8
//! record  := len (u32 LE, > 0) | crc32c of payload (u32 LE) | payload (len)   RECORD_HEADER_LEN = 8
//! ```
//! A segment rolls once it has passed `wal_segment_bytes` and holds at least one record, so a record
//! larger than the limit still fits. Before rolling, the old segment is fsynced: only the last segment
//! can ever be incomplete on disk.
//!
//! # Recovery
//! Start-up reads a log first ([`Wal::recover`]: nothing is written, created or removed) and changes
//! it only once the whole data directory has been read ([`Recovered::open`]). Reading checks:
//! - the segments from the start on are there and consecutive: the WAL's start segment (the manifest's
//!   `wal_start`, created before the manifest naming it was written) must exist, and a missing one, or a
//!   hole, is `EngineError::Missing` naming the segment;
//! - every segment but the last is whole: any damage in it is `EngineError::Corruption` (those segments
//!   were fsynced before the log rolled, so damage there is no crash artefact);
//! - the last segment ends in at most a **torn tail**: an incomplete last record with nothing valid
//!   after it. Its valid prefix ends at a short or zero-filled segment header (crash right after
//!   creating the file; a zero-filled header must have only zeros after it), a cut record header
//!   (`truncated record header`), zeros (`zero-filled tail`: the file system extended the file before
//!   the data reached it), a cut payload (`truncated payload`), a zero length or a `checksum mismatch`
//!   — and the tail is torn only if no byte offset after that point starts a complete frame (non-zero
//!   length, payload inside the file, crc32c matching; see `resync`). Damage with a complete frame
//!   after it is `EngineError::Corruption` naming the file and the damage's offset: a crash leaves an
//!   incomplete write at the end, not a hole before later records, and those records may have been
//!   acknowledged.
//!
//! Every complete record before a torn tail is replayed; opening cuts the tail off (a torn header resets
//! the segment to an empty one in place) and it is reported as a [`DroppedTail`]. Segments below the
//! WAL's start are removed then too (a crash came between the manifest swap and their deletion).
//!
//! What a torn tail held was never acknowledged under `SyncPolicy::Always` (a write is acknowledged
//! after the fsync that makes it and everything before it durable) nor, under any policy, after a
//! process crash (a write is acknowledged after its write(2) completed, and the page cache keeps it).
//! After a power loss under `Interval` or `None` it may hold acknowledged writes: those are what the
//! policy may lose. A power loss can also persist an unsynced group's pages out of order, leaving a hole
//! before complete records: start-up refuses that as corruption rather than guess; truncating the
//! segment at the named offset accepts the loss (under `Always` none of it was acknowledged).

mod resync;
mod segment;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{DroppedTail, EngineError};
use crate::files::{io_error, sync_dir};
use segment::corruption;
pub(crate) use segment::file_name as segment_file_name;
pub(crate) use segment::{header as segment_header, scan as scan_segment};
// The torn-tail check as start-up runs it, for the fuzz targets (`crate::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) use segment::torn_tail;

/// First bytes of every segment.
pub(crate) const MAGIC: [u8; 4] = *b"LWAL";
/// The framing this build writes and reads.
pub(crate) const FORMAT_V1: u32 = 1;
/// Bytes of the segment header: magic and version.
pub(crate) const HEADER_LEN: usize = 8;
/// Bytes before each payload: length and checksum.
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// Name of the WAL directory inside the data directory.
pub(crate) const WAL_DIR: &str = "wal";
/// Name of the series log directory inside the data directory (same framing as the WAL).
pub(crate) const SERIES_DIR: &str = "series";
/// The file [`probe_dir`] creates and removes. Not a segment name, so replay and truncation ignore a
/// leftover of a crash mid-probe (the next probe truncates and removes it).
pub(crate) const PROBE_FILE: &str = "health.probe";
/// What a probe writes.
const PROBE_BYTES: &[u8] = b"luminate health probe\n";

/// Where a record was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordPos {
    /// Segment sequence number.
    pub segment: u64,
    /// Offset of the record's length field in the segment.
    pub offset: u64,
}

/// The end of a log: where its next record will be appended. Every record appended so far lies in
/// segments below `segment`, or in `segment` before `len` (a backup cuts the log there:
/// `crate::backup`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogEnd {
    /// The active segment's number.
    pub segment: u64,
    /// Bytes of the active segment written so far, header included (a record boundary).
    pub len: u64,
}

/// What [`Wal::recover`] found.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// Complete records handed to the replay callback.
    pub records: u64,
    /// The torn tail of the last segment, if any (cut off by [`Recovered::open`]).
    pub dropped: Vec<DroppedTail>,
}

/// The open log: replayed, positioned at its end, ready for appends. Single owner (the commit thread).
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    /// Shared with the fsync of a commit group running on another thread ([`Wal::sync_job`]).
    active: Arc<File>,
    active_seq: u64,
    active_len: u64,
    // Roll only a segment that holds a record, so one record larger than the limit still fits somewhere.
    active_has_records: bool,
    // Reused framing buffer: one write(2) per record.
    frame: Vec<u8>,
}

/// An fsync of one segment, run off the commit thread ([`Wal::sync_job`]).
#[derive(Debug)]
pub(crate) struct SyncJob {
    file: Arc<File>,
    path: PathBuf,
}

impl SyncJob {
    /// fsyncs the segment.
    pub(crate) fn run(&self) -> Result<(), EngineError> {
        #[cfg(test)]
        fsync_gate::pass(&self.path)?;
        self.file
            .sync_data()
            .map_err(io_error("fsync WAL segment", &self.path))
    }
}

/// Holds, releases or fails the commit groups' fsyncs of one WAL directory, for tests of the pipelined
/// commit (`crate::commit`): keyed by directory, so other engines in the same test process are not
/// touched.
#[cfg(test)]
pub(crate) mod fsync_gate {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Condvar, Mutex, PoisonError};
    use std::time::Duration;

    use crate::error::EngineError;

    /// What the next fsync does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum State {
        /// Waits.
        Hold,
        /// Runs.
        Open,
        /// Fails with an I/O error.
        Fail,
    }

    /// One directory's gate.
    #[derive(Debug)]
    pub(crate) struct Gate {
        state: Mutex<(State, u32)>,
        changed: Condvar,
    }

    impl Gate {
        /// Sets what fsyncs do from now on.
        pub(crate) fn set(&self, state: State) {
            self.state.lock().unwrap_or_else(PoisonError::into_inner).0 = state;
            self.changed.notify_all();
        }

        /// Waits (at most 10 s) until `n` fsyncs have reached the gate; true when they have.
        pub(crate) fn wait_for_arrivals(&self, n: u32) -> bool {
            let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let (guard, _) = self
                .changed
                .wait_timeout_while(guard, Duration::from_secs(10), |(_, arrived)| *arrived < n)
                .unwrap_or_else(PoisonError::into_inner);
            guard.1 >= n
        }
    }

    static GATES: Mutex<Vec<(PathBuf, Arc<Gate>)>> = Mutex::new(Vec::new());

    /// Installs a gate, holding, for the WAL directory `dir`.
    pub(crate) fn install(dir: &Path) -> Arc<Gate> {
        let gate = Arc::new(Gate {
            state: Mutex::new((State::Hold, 0)),
            changed: Condvar::new(),
        });
        GATES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((dir.to_path_buf(), Arc::clone(&gate)));
        gate
    }

    /// Called by every fsync of a commit group, with its segment's path.
    pub(crate) fn pass(segment: &Path) -> Result<(), EngineError> {
        let gate = GATES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(dir, _)| Some(dir.as_path()) == segment.parent())
            .map(|(_, gate)| Arc::clone(gate));
        let Some(gate) = gate else {
            return Ok(());
        };
        let mut guard = gate.state.lock().unwrap_or_else(PoisonError::into_inner);
        guard.1 += 1;
        gate.changed.notify_all();
        let guard = gate
            .changed
            .wait_while(guard, |(state, _)| *state == State::Hold)
            .unwrap_or_else(PoisonError::into_inner);
        match guard.0 {
            State::Fail => Err(EngineError::Io {
                op: "fsync WAL segment",
                path: segment.to_path_buf(),
                source: std::io::Error::other("injected fsync failure"),
            }),
            State::Hold | State::Open => Ok(()),
        }
    }
}

/// Where replay of a log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// At segment 1, if the log has any segment (none: a new log, whose first segment `open` creates).
    First,
    /// At segment `n`, which must exist (a manifest names it); segments below it are flushed.
    At(u64),
}

/// A log read and replayed, not yet touched: what [`Recovered::open`] will change on disk to continue
/// it — nothing before every check has passed.
#[derive(Debug)]
pub(crate) struct Recovered {
    dir: PathBuf,
    /// Segments below the start: their records are in parts (a crash came between the manifest swap
    /// and their deletion).
    flushed: Vec<u64>,
    active: Active,
    replayed: Replayed,
}

impl Recovered {
    /// The torn tail [`Recovered::open`] would cut off, if any (`luminate check` reports it).
    pub(crate) fn dropped(&self) -> &[DroppedTail] {
        &self.replayed.dropped
    }

    /// Complete records replayed.
    pub(crate) fn records(&self) -> u64 {
        self.replayed.records
    }
}

/// Where appends continue.
#[derive(Debug)]
enum Active {
    /// A new log: segment `seq` is created.
    New { seq: u64 },
    /// The last segment, whose first `valid` bytes are kept (fewer than the file's: a torn tail is cut
    /// off; fewer than a header: the segment is reset to an empty one).
    Last {
        seq: u64,
        valid: u64,
        file_len: u64,
        has_records: bool,
    },
}

impl Wal {
    /// Reads the log in `dir` (`<data_dir>/wal` or `<data_dir>/series`) without changing anything:
    /// checks that its segments from `start` on are there and consecutive, hands every complete record
    /// of them to `replay` in log order with its file and offset, and decides what opening it will cut
    /// off — only a torn tail of the last segment (see the module docs). A missing segment is
    /// `Missing`; damage anywhere else, or damage with a complete record after it, is `Corruption`.
    pub(crate) fn recover(
        dir: &Path,
        start: Start,
        mut replay: impl FnMut(&Path, u64, &[u8]) -> Result<(), EngineError>,
    ) -> Result<Recovered, EngineError> {
        let all = segment_numbers(dir)?;
        let first = match start {
            Start::First => 1,
            Start::At(n) => n,
        };
        let (flushed, live) = all.split_at(all.partition_point(|&s| s < first));
        match (live.first(), start) {
            (None, Start::First) => {
                return Ok(Recovered {
                    dir: dir.to_path_buf(),
                    flushed: flushed.to_vec(),
                    active: Active::New { seq: 1 },
                    replayed: Replayed::default(),
                });
            }
            (Some(&seq), _) if seq == first => {}
            (found, _) => {
                let found = match found {
                    Some(&seq) => format!("the log continues at {}", segment::file_name(seq)),
                    None if dir.is_dir() => {
                        format!("{} holds no segment from it on", dir.display())
                    }
                    None => format!("{} does not exist", dir.display()),
                };
                let why = match start {
                    Start::First => "a log starts at its first segment",
                    Start::At(_) => {
                        "the manifest starts WAL replay at this segment (created before the \
                         manifest was written): it holds the writes not yet in parts"
                    }
                };
                return Err(missing(dir, first, format!("{why}; {found}")));
            }
        }
        if let Some(pair) = live.windows(2).find(|pair| pair[1] != pair[0] + 1) {
            return Err(missing(
                dir,
                pair[0] + 1,
                format!(
                    "segments {} and {} are there, the log has no hole",
                    segment::file_name(pair[0]),
                    segment::file_name(pair[1])
                ),
            ));
        }
        let mut replayed = Replayed::default();
        let mut active = Active::New { seq: first };
        for (i, &seq) in live.iter().enumerate() {
            let path = dir.join(segment::file_name(seq));
            let bytes = fs::read(&path).map_err(io_error("read WAL segment", &path))?;
            let mut count = 0u64;
            let damage = segment::scan(&path, &bytes, |offset, payload| {
                count += 1;
                replay(&path, offset, payload)
            })?;
            replayed.records += count;
            let is_last = i + 1 == live.len();
            let file_len = bytes.len() as u64;
            let valid = match damage {
                None => file_len,
                Some(d) if !is_last => return Err(corruption(&path, d.offset, d.reason)),
                Some(d) => {
                    let d = segment::torn_tail(&path, &bytes, d)?;
                    replayed.dropped.push(DroppedTail {
                        path,
                        offset: d.offset,
                        bytes: file_len - d.offset,
                        reason: d.reason,
                    });
                    d.offset
                }
            };
            active = Active::Last {
                seq,
                valid,
                file_len,
                has_records: count > 0,
            };
        }
        Ok(Recovered {
            dir: dir.to_path_buf(),
            flushed: flushed.to_vec(),
            active,
            replayed,
        })
    }

    /// [`Wal::recover`], then [`Recovered::open`].
    #[cfg(test)]
    pub(crate) fn open(
        dir: &Path,
        start: Start,
        segment_bytes: u64,
        replay: impl FnMut(&Path, u64, &[u8]) -> Result<(), EngineError>,
    ) -> Result<(Self, Replayed), EngineError> {
        Self::recover(dir, start, replay)?.open(segment_bytes)
    }

    /// Appends one record with write(2) (no fsync), rolling to a new segment first if the active one is
    /// past the size limit.
    ///
    /// A record that does not fit the file system (`ENOSPC`, `EDQUOT`) is cut off again — the segment
    /// is truncated back to the end of the last whole record — and the error is `NoSpace`: the log is
    /// as it was, and the same append may be tried again. Any other failure (or a failed truncation)
    /// leaves the log in an unknown state: the caller must stop appending.
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<RecordPos, EngineError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| EngineError::Io {
                op: "append WAL record",
                path: self.active_path(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "record of {} bytes does not fit the frame (1 to {} bytes)",
                        payload.len(),
                        u32::MAX
                    ),
                ),
            })?;
        if self.active_has_records && self.active_len >= self.segment_bytes {
            self.roll()?;
        }
        self.frame.clear();
        self.frame.extend_from_slice(&len.to_le_bytes());
        self.frame
            .extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        self.frame.extend_from_slice(payload);
        let pos = RecordPos {
            segment: self.active_seq,
            offset: self.active_len,
        };
        let path = self.active_path();
        if let Err(e) = crate::files::write_all(&self.active, &path, &self.frame) {
            return Err(self.cut_back(&path, e));
        }
        self.active_len += self.frame.len() as u64;
        self.active_has_records = true;
        Ok(pos)
    }

    /// fsyncs the active segment (older ones were fsynced when they rolled).
    pub(crate) fn sync(&mut self) -> Result<(), EngineError> {
        self.active
            .sync_data()
            .map_err(io_error("fsync WAL segment", &self.active_path()))
    }

    /// An fsync of the active segment that another thread can run while appends go on: it covers every
    /// record appended before it starts (older segments were fsynced when they rolled).
    pub(crate) fn sync_job(&self) -> SyncJob {
        SyncJob {
            file: Arc::clone(&self.active),
            path: self.active_path(),
        }
    }

    /// Starts a new segment unless the active one is empty, and returns the active segment's number:
    /// every record appended so far lies in segments below it.
    pub(crate) fn roll_now(&mut self) -> Result<u64, EngineError> {
        if self.active_has_records {
            self.roll()?;
        }
        Ok(self.active_seq)
    }

    /// Where the next record will be appended (a record boundary: appends happen on the owner's thread).
    pub(crate) fn end(&self) -> LogEnd {
        LogEnd {
            segment: self.active_seq,
            len: self.active_len,
        }
    }

    /// The log's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn active_path(&self) -> PathBuf {
        self.dir.join(segment::file_name(self.active_seq))
    }

    /// After a failed write of a record: truncates the active segment back to the end of its last
    /// whole record, so nothing half-written stays (appends go on from there: the file is opened for
    /// appending). The error to report: the write's (`NoSpace` when out of space), or the truncation's
    /// if it failed.
    fn cut_back(&self, path: &Path, write: std::io::Error) -> EngineError {
        if let Err(e) = self.active.set_len(self.active_len) {
            return io_error("truncate WAL segment after a failed append", path)(e);
        }
        crate::space::write_error("write WAL record", path, write)
    }

    /// Bytes the next record of `payload_len` bytes takes in the log, a roll's new segment included.
    pub(crate) fn frame_len(payload_len: usize) -> u64 {
        (RECORD_HEADER_LEN + HEADER_LEN + payload_len) as u64
    }

    fn roll(&mut self) -> Result<(), EngineError> {
        self.sync()?;
        let seq = self.active_seq + 1;
        self.active = Arc::new(create_segment(&self.dir, seq)?);
        self.active_seq = seq;
        self.active_len = HEADER_LEN as u64;
        self.active_has_records = false;
        Ok(())
    }
}

impl Recovered {
    /// Continues the log — the only changes start-up makes to it, once every check has passed: creates
    /// the directory and first segment of a new log, cuts the torn tail off the last segment (or resets
    /// a segment whose header was torn), removes the segments below the start, and positions for appends
    /// after the last complete record.
    pub(crate) fn open(self, segment_bytes: u64) -> Result<(Wal, Replayed), EngineError> {
        let Self {
            dir,
            flushed,
            active,
            replayed,
        } = self;
        crate::files::create_dir_durable(&dir)?;
        let (active, active_seq, active_len, active_has_records) = match active {
            Active::New { seq } => (create_segment(&dir, seq)?, seq, HEADER_LEN as u64, false),
            Active::Last {
                seq,
                valid,
                file_len,
                has_records,
            } => {
                let path = dir.join(segment::file_name(seq));
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_error("open WAL segment", &path))?;
                let mut len = valid;
                let torn_header = valid < HEADER_LEN as u64;
                if let Some(tail) = replayed.dropped.first() {
                    tracing::warn!(
                        path = %tail.path.display(), offset = tail.offset, bytes = tail.bytes,
                        reason = %tail.reason, "cutting the torn tail off the last segment of the log"
                    );
                }
                if torn_header || valid < file_len {
                    if torn_header {
                        file.set_len(0)
                            .map_err(io_error("truncate WAL segment", &path))?;
                        (&file)
                            .write_all(&segment::header())
                            .map_err(io_error("write WAL segment header", &path))?;
                        len = HEADER_LEN as u64;
                    } else {
                        file.set_len(valid)
                            .map_err(io_error("truncate WAL segment", &path))?;
                    }
                    file.sync_all()
                        .map_err(io_error("fsync WAL segment", &path))?;
                }
                (file, seq, len, has_records)
            }
        };
        remove_segments(&dir, &flushed)?;
        let wal = Wal {
            dir,
            segment_bytes,
            active: Arc::new(active),
            active_seq,
            active_len,
            active_has_records,
            frame: Vec::new(),
        };
        Ok((wal, replayed))
    }
}

/// Creates segment `seq` with its header, durable (file and directory fsynced) before it is used.
/// Never overwrites: an existing file of that name is an error.
/// A segment that does not fit the file system is removed again (`NoSpace`: nothing changed, a later
/// roll creates it anew).
fn create_segment(dir: &Path, seq: u64) -> Result<File, EngineError> {
    let path = dir.join(segment::file_name(seq));
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| crate::space::write_error("create WAL segment", &path, e))?;
    if let Err(e) = crate::files::write_all(&file, &path, &segment::header()) {
        drop(file);
        crate::files::remove_written(&path)?;
        return Err(crate::space::write_error(
            "write WAL segment header",
            &path,
            e,
        ));
    }
    file.sync_all()
        .map_err(io_error("fsync WAL segment", &path))?;
    sync_dir(dir)?;
    Ok(file)
}

/// The segment files of the log in `dir` and their total bytes; (0, 0) when it cannot be listed (a
/// gauge, not a reason to fail).
pub(crate) fn segment_usage(dir: &Path) -> (u64, u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(segment::parse_file_name)
                .is_some()
        })
        .filter_map(|e| e.metadata().ok())
        .fold((0, 0), |(n, bytes), m| (n + 1, bytes + m.len()))
}

/// Proves that `dir` accepts a new file now, as rolling to the next segment needs: creates
/// [`PROBE_FILE`], writes a few bytes, fsyncs them, removes the file and fsyncs the directory. The
/// caller runs one probe of a directory at a time (they share the file name). The error names the
/// file and the step that failed.
pub(crate) fn probe_dir(dir: &Path) -> Result<(), EngineError> {
    let path = dir.join(PROBE_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(io_error("create health probe file", &path))?;
    file.write_all(PROBE_BYTES)
        .map_err(io_error("write health probe file", &path))?;
    file.sync_all()
        .map_err(io_error("fsync health probe file", &path))?;
    drop(file);
    fs::remove_file(&path).map_err(io_error("remove health probe file", &path))?;
    sync_dir(dir)
}

/// Removes the segments of the log in `dir` numbered below `seq` (their records are in parts), then
/// fsyncs the directory. Only ever removes segments older than the active one: safe beside appends.
pub(crate) fn remove_segments_below(dir: &Path, seq: u64) -> Result<(), EngineError> {
    let below: Vec<u64> = segment_numbers(dir)?
        .into_iter()
        .take_while(|&s| s < seq)
        .collect();
    remove_segments(dir, &below)
}

/// Removes segments `seqs` of the log in `dir`, then fsyncs the directory.
fn remove_segments(dir: &Path, seqs: &[u64]) -> Result<(), EngineError> {
    for &seq in seqs {
        let path = dir.join(segment::file_name(seq));
        fs::remove_file(&path).map_err(io_error("remove flushed WAL segment", &path))?;
    }
    if !seqs.is_empty() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Sequence numbers of the segment files in `dir`, ascending; none when `dir` does not exist.
pub(crate) fn segment_numbers(dir: &Path) -> Result<Vec<u64>, EngineError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list WAL directory", dir)(e)),
    };
    let mut seqs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("list WAL directory", dir))?;
        if let Some(seq) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// A `Missing` error for segment `seq` of the log in `dir`.
fn missing(dir: &Path, seq: u64, reason: String) -> EngineError {
    EngineError::Missing {
        path: dir.join(segment::file_name(seq)),
        reason,
    }
}

#[cfg(test)]
mod tests;
