//! What the fuzz targets share: a global allocator that measures the peak memory one input makes a
//! decoder hold (so a target can assert a bound, where libFuzzer's own `-malloc_limit_mb` needs a
//! sanitizer runtime that `-s none` builds lack), a scratch file for decoders that read files, and a
//! way to run the async PromQL evaluator to completion without a runtime.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

/// The system allocator, counting live bytes and their peak.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated around it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it held allocated at once (beyond what was
/// allocated before it started). Fuzz targets run one input at a time, on one thread.
pub fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// A file of this process's own for decoders that read files (parts): under `/dev/shm` when it
/// exists, so each input costs no disk I/O.
pub fn scratch_file(name: &str) -> PathBuf {
    let dir = ["/dev/shm", "/tmp"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("luminate-fuzz-{}-{name}", std::process::id()))
}

/// Polls `fut` to completion on this thread. The PromQL evaluator awaits only its `SeriesSource`,
/// which the targets answer at once: a future still pending after many polls is a finding.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a future that waits on nothing did not complete");
}

/// CRC-32C framing of one WAL record, as `wal::Wal::append` writes it: length, checksum, payload.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Makes every frame of a WAL segment's bytes carry the checksum of its payload, walking the frames
/// as the scan does (after the 8-byte header, while lengths fit): a forger's segment, so the fuzzer's
/// mutations reach the records behind the checksums.
pub fn fix_frames(segment: &mut [u8]) {
    let mut at = 8;
    while at + 8 <= segment.len() {
        let len = u32_at(segment, at) as usize;
        let Some(end) = (at + 8)
            .checked_add(len)
            .filter(|&e| len > 0 && e <= segment.len())
        else {
            return;
        };
        let crc = crc32c::crc32c(&segment[at + 8..end]);
        segment[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes.get(at..at + 8).map_or(0, |b| {
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    })
}

/// Sets the CRC-32C at `crc_at` to that of `file[offset..offset + len]`, when both lie in the file.
fn fix_crc(file: &mut [u8], crc_at: usize, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
        return;
    };
    let Some(end) = offset.checked_add(len).filter(|&e| e <= file.len()) else {
        return;
    };
    if crc_at + 4 > file.len() {
        return;
    }
    let crc = crc32c::crc32c(&file[offset..end]);
    file[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Makes a part file's checksums match its bytes, as a forger would: each page blob's and summary
/// chunk's checksum in the section (found by walking the section's layout, `part` module docs in the
/// engine), then the section's in the footer. Stops where the layout stops making sense, leaving the
/// rest as it is.
pub fn fix_part_checksums(file: &mut [u8]) {
    const FOOTER: usize = 24;
    if file.len() < 8 + FOOTER {
        return;
    }
    let footer = file.len() - FOOTER;
    let section_offset = u64_at(file, footer);
    let section_len = u64_at(file, footer + 8);
    let Ok(start) = usize::try_from(section_offset) else {
        return;
    };
    if start.checked_add(section_len as usize) != Some(footer) {
        return;
    }
    let mut at = start;
    // meta: tenant str, metric str, day i64, rows u64, series u32, pages u32, page_rows u32, min_t
    // i64, max_t i64.
    for _ in 0..2 {
        at = at
            .saturating_add(4)
            .saturating_add(u32_at(file, at) as usize);
    }
    let pages_at = at + 8 + 8 + 4;
    let pages = u32_at(file, pages_at) as usize;
    at = pages_at + 4 + 4 + 8 + 8;
    // page entries: 56 bytes, the timestamps blob at 24 (offset u64, len u32, crc u32), the values
    // blob at 40.
    for _ in 0..pages {
        if at + 56 > footer {
            break;
        }
        for blob in [at + 24, at + 40] {
            fix_crc(
                file,
                blob + 12,
                u64_at(file, blob),
                u64::from(u32_at(file, blob + 8)),
            );
        }
        at += 56;
    }
    // directory: two length-prefixed blobs; then (format 2) block_ms i64, chunk_count u32 and
    // 28-byte chunk entries, the blob at 12.
    for _ in 0..2 {
        at = at
            .saturating_add(4)
            .saturating_add(u32_at(file, at) as usize);
    }
    if u32_at(file, 4) == 2 && at + 12 <= footer {
        let chunks = u32_at(file, at + 8) as usize;
        at += 12;
        for _ in 0..chunks {
            if at + 28 > footer {
                break;
            }
            fix_crc(
                file,
                at + 24,
                u64_at(file, at + 12),
                u64::from(u32_at(file, at + 20)),
            );
            at += 28;
        }
    }
    fix_crc(file, footer + 16, section_offset, section_len);
}
