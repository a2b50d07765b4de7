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

fuzz_target!(|data: &[u8]| {
    let Some((&mode, segment)) = data.split_first() else {
        return;
    };
    let mut bytes = segment.to_vec();
    if mode & 1 == 1 {
        fix_frames(&mut bytes);
    }
    let (replayed, peak) = peak_bytes(|| replay_series_log(&bytes));
    let bound = 256 * bytes.len() + (16 << 20);
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
