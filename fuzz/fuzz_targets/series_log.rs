//! A series-log segment as start-up replays it (`SeriesLog::recover`): framing, then each
//! `SERIES_BATCH` (or earlier `SERIES_DEFS`) record defining series in an empty index — log string
//! ids, dense series ids, key order. Any input must end in the series defined or a typed
//! `Corruption`, never a panic. The first byte picks whether the frames' checksums are first made
//! to match, so that the fuzzer reaches the records behind them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_engine::EngineError;
use luminate_engine::fuzzing::replay_series_log;
use luminate_fuzz::{fix_frames, peak_bytes};

/// Complete frames in a segment, walked as the scan walks them.
fn frames(segment: &[u8]) -> usize {
    let (mut at, mut n) = (8, 0);
    while let Some(len) = segment.get(at..at + 4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len == 0 || at + 8 + len > segment.len() {
            break;
        }
        at += 8 + len;
        n += 1;
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, segment)) = data.split_first() else {
        return;
    };
    let mut bytes = segment.to_vec();
    if mode & 1 == 1 {
        fix_frames(&mut bytes);
    }
    let (replayed, peak) = peak_bytes(|| replay_series_log(&bytes));
    // Per record: its batch decoded (at most MAX_BATCH_PAIRS pairs, 32 MiB; what pco allocates for a
    // forged blob before checking it, at most about 320 MiB: see wal_record.rs) and the index entries
    // of up to 65 536 series it defines, which pco lets a few hundred bytes describe legitimately.
    // What must not happen is a record claiming gigabytes.
    let bound = 64 * bytes.len() + (448 << 20) * frames(&bytes).max(1);
    assert!(
        peak <= bound,
        "{peak} bytes held replaying {} bytes",
        bytes.len()
    );
    match replayed {
        Ok(series) => assert!(series <= 1 << 24),
        Err(EngineError::Corruption { offset, .. }) => assert!(offset <= bytes.len() as u64),
        Err(e) => panic!("a series log's bytes gave a {e:?}, not a Corruption"),
    }
});
