//! wal: a segmented write-ahead log of opaque, checksummed records. It knows nothing of series, points
//! or threads: the commit pipeline (`crate::commit`) decides what a record means, batches appends and
//! says when to sync; `crate::record` encodes the payloads.
//!
//! Two logs use it: the WAL (`<data_dir>/wal`, write batches and deletes since the last flush; a flush
//! deletes the segments below the manifest's `wal_start`, and replay starts there) and the series log
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
//! A crash can tear the last segment in these ways, each of which ends the valid prefix:
//! - the segment header itself is short or zero-filled (crash right after creating the file);
//! - a record header is cut (`truncated record header`) or the tail is zeros (`zero-filled tail`: the
//!   file system extended the file before the data reached it);
//! - a payload is cut (`truncated payload`) or its bytes are not those checksummed (`checksum mismatch`).
//!
//! Every complete record before that point is replayed; the rest of the last segment is cut off (a torn
//! header removes the file) and reported as a [`DroppedTail`]. The same damage in any other segment is
//! `EngineError::Corruption`: those segments were complete and fsynced, so damage there is not a crash
//! artefact, and the engine refuses to open rather than serve data with a hole in it.

mod segment;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::files::{io_error, sync_dir};
use crate::{DroppedTail, EngineError};
use segment::corruption;

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

/// What `Wal::open` found.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// Complete records handed to the replay callback.
    pub records: u64,
    /// The torn tail cut off the last segment, if any.
    pub dropped: Vec<DroppedTail>,
}

/// The open log: replayed, positioned at its end, ready for appends. Single owner (the commit thread).
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    active: File,
    active_seq: u64,
    active_len: u64,
    // Roll only a segment that holds a record, so one record larger than the limit still fits somewhere.
    active_has_records: bool,
    // Reused framing buffer: one write(2) per record.
    frame: Vec<u8>,
}

impl Wal {
    /// Opens (creating if needed) the log in `dir` (`<data_dir>/wal` or `<data_dir>/series`), removes
    /// the segments below `start` (their records are in parts: a crash came between the manifest swap
    /// and their deletion), hands every complete record from segment `start` on to `replay` in log
    /// order with its file and offset, cuts a torn tail off the last segment, and positions for appends
    /// after the last good record.
    pub(crate) fn open(
        dir: &Path,
        start: u64,
        segment_bytes: u64,
        mut replay: impl FnMut(&Path, u64, &[u8]) -> Result<(), EngineError>,
    ) -> Result<(Self, Replayed), EngineError> {
        let dir = dir.to_path_buf();
        crate::files::create_dir_durable(&dir)?;
        remove_segments_below(&dir, start)?;
        let seqs = list_segments(&dir)?;
        if let Some(&first) = seqs.first()
            && first > start.max(1)
        {
            return Err(corruption(
                &dir.join(segment::file_name(first)),
                0,
                format!(
                    "segment {} before it is missing",
                    segment::file_name(start.max(1))
                ),
            ));
        }
        let mut replayed = Replayed::default();
        // The last segment, if it is usable for appends: (seq, valid length, has records).
        let mut resume: Option<(u64, u64, bool)> = None;
        let mut next_seq = start.max(1);
        for (i, &seq) in seqs.iter().enumerate() {
            let path = dir.join(segment::file_name(seq));
            let bytes = fs::read(&path).map_err(io_error("read WAL segment", &path))?;
            let mut count = 0u64;
            let damage = segment::scan(&path, &bytes, |offset, payload| {
                count += 1;
                replay(&path, offset, payload)
            })?;
            replayed.records += count;
            let is_last = i + 1 == seqs.len();
            next_seq = seq + 1;
            match damage {
                None if is_last => resume = Some((seq, bytes.len() as u64, count > 0)),
                None => {}
                Some(d) if !is_last => return Err(corruption(&path, d.offset, d.reason)),
                Some(d) => {
                    let bytes_dropped = bytes.len() as u64 - d.offset;
                    tracing::warn!(
                        path = %path.display(), offset = d.offset, bytes = bytes_dropped, reason = %d.reason,
                        "dropping torn tail of the last WAL segment"
                    );
                    if d.in_header {
                        fs::remove_file(&path)
                            .map_err(io_error("remove torn WAL segment", &path))?;
                        sync_dir(&dir)?;
                        next_seq = seq;
                    } else {
                        let file = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(io_error("open WAL segment", &path))?;
                        file.set_len(d.offset)
                            .map_err(io_error("truncate WAL segment", &path))?;
                        file.sync_all()
                            .map_err(io_error("fsync WAL segment", &path))?;
                        resume = Some((seq, d.offset, count > 0));
                    }
                    replayed.dropped.push(DroppedTail {
                        path,
                        offset: d.offset,
                        bytes: bytes_dropped,
                        reason: d.reason,
                    });
                }
            }
        }
        let wal = match resume {
            Some((seq, len, has_records)) => {
                let path = dir.join(segment::file_name(seq));
                let active = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_error("open WAL segment", &path))?;
                Self {
                    dir,
                    segment_bytes,
                    active,
                    active_seq: seq,
                    active_len: len,
                    active_has_records: has_records,
                    frame: Vec::new(),
                }
            }
            None => {
                let active = create_segment(&dir, next_seq)?;
                let active_len = HEADER_LEN as u64;
                Self {
                    dir,
                    segment_bytes,
                    active,
                    active_seq: next_seq,
                    active_len,
                    active_has_records: false,
                    frame: Vec::new(),
                }
            }
        };
        Ok((wal, replayed))
    }

    /// Appends one record with write(2) (no fsync), rolling to a new segment first if the active one is
    /// past the size limit. A failure leaves the log in an unknown state: the caller must stop appending.
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
        self.active
            .write_all(&self.frame)
            .map_err(io_error("write WAL record", &self.active_path()))?;
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

    /// Starts a new segment unless the active one is empty, and returns the active segment's number:
    /// every record appended so far lies in segments below it.
    pub(crate) fn roll_now(&mut self) -> Result<u64, EngineError> {
        if self.active_has_records {
            self.roll()?;
        }
        Ok(self.active_seq)
    }

    /// The log's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn active_path(&self) -> PathBuf {
        self.dir.join(segment::file_name(self.active_seq))
    }

    fn roll(&mut self) -> Result<(), EngineError> {
        self.sync()?;
        let seq = self.active_seq + 1;
        self.active = create_segment(&self.dir, seq)?;
        self.active_seq = seq;
        self.active_len = HEADER_LEN as u64;
        self.active_has_records = false;
        Ok(())
    }
}

/// Creates segment `seq` with its header, durable (file and directory fsynced) before it is used.
/// Never overwrites: an existing file of that name is an error.
fn create_segment(dir: &Path, seq: u64) -> Result<File, EngineError> {
    let path = dir.join(segment::file_name(seq));
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_error("create WAL segment", &path))?;
    file.write_all(&segment::header())
        .map_err(io_error("write WAL segment header", &path))?;
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
    let mut removed = false;
    for entry in fs::read_dir(dir).map_err(io_error("list WAL directory", dir))? {
        let entry = entry.map_err(io_error("list WAL directory", dir))?;
        let below = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
            .is_some_and(|s| s < seq);
        if below {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error("remove flushed WAL segment", &path))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Sequence numbers of the segments in `dir`, ascending; a gap is corruption (a segment went missing).
fn list_segments(dir: &Path) -> Result<Vec<u64>, EngineError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("list WAL directory", dir))? {
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
    for pair in seqs.windows(2) {
        if pair[1] != pair[0] + 1 {
            let path = dir.join(segment::file_name(pair[1]));
            return Err(corruption(
                &path,
                0,
                format!(
                    "segment {} before it is missing",
                    segment::file_name(pair[0] + 1)
                ),
            ));
        }
    }
    Ok(seqs)
}

#[cfg(test)]
mod tests;
