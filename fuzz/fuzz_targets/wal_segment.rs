//! A whole WAL segment as start-up replays it (`Wal::recover` on the last segment): the header, the
//! record frames and their checksums, the torn-tail rule (`wal::resync`), and each record decoded and
//! applied to an empty index and head. Any input must end in a replay or a typed `Corruption` naming
//! the offset, never a panic.
//!
//! The input is the segment as written, so the fuzzer explores the framing (lengths, checksums, the
//! search for a complete frame after damage); its first byte picks whether the frames' checksums are
//! first made to match (so the records behind them are reached too, as a forger would).

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_engine::EngineError;
use luminate_engine::fuzzing::replay_wal_segment;
use luminate_fuzz::fix_frames;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, segment)) = data.split_first() else {
        return;
    };
    let mut bytes = segment.to_vec();
    if mode & 1 == 1 {
        fix_frames(&mut bytes);
    }
    match replay_wal_segment(&bytes) {
        Ok(replay) => {
            assert!(replay.records.windows(2).all(|w| w[0] < w[1]));
            let end = replay.torn_at.unwrap_or(bytes.len() as u64);
            assert!(replay.records.iter().all(|&at| at < end), "{replay:?}");
            assert!(end <= bytes.len() as u64);
        }
        Err(EngineError::Corruption { offset, .. }) => assert!(offset <= bytes.len() as u64),
        Err(e) => panic!("a segment's bytes gave a {e:?}, not a Corruption"),
    }
});
