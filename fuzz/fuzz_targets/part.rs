//! Part files as the engine opens and reads them (`Part::open`, then everything a query reads: every
//! series' rows, every page's values, every block summary). Any input must end in rows or a typed
//! `Corruption` naming the file, never a panic, and what is read must keep the promises queries
//! rely on: series ascending, one value per timestamp, timestamps ascending within a series and within
//! the part's recorded range, no more rows than the part says it holds.
//!
//! The first byte picks whether the checksums are first made to match the bytes (as a forger would),
//! so that mutations reach the section and blob decoders behind them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_engine::EngineError;
use luminate_engine::fuzzing::read_part;
use luminate_fuzz::{fix_part_checksums, scratch_file};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else {
        return;
    };
    let mut bytes = file.to_vec();
    if mode & 1 == 1 {
        fix_part_checksums(&mut bytes);
    }
    let path = scratch_file("0000000001.part");
    std::fs::write(&path, &bytes).expect("write the scratch part");
    // No memory bound here beyond libFuzzer's RSS limit: a valid part of a few kilobytes may hold
    // millions of one-row series (pco stores a constant column in a few bytes), and the reader keeps
    // 8 bytes per series by design.
    let read = read_part(&path);
    match read {
        Ok(part) => {
            assert!(
                part.series.windows(2).all(|w| w[0] < w[1]),
                "series not ascending"
            );
            let mut rows = 0u64;
            let mut last = None;
            for run in &part.runs {
                assert!(
                    last < Some(run.series),
                    "runs not in ascending series order"
                );
                last = Some(run.series);
                assert!(part.series.binary_search(&run.series).is_ok());
                assert!(run.values_match, "{run:?}");
                rows += run.rows as u64;
            }
            assert!(
                rows <= part.rows,
                "{rows} rows read from a part of {}",
                part.rows
            );
            assert!(part.visited <= part.rows);
        }
        Err(EngineError::Corruption { path: p, .. }) => assert_eq!(p, path),
        Err(e) => panic!("a part's bytes gave a {e:?}, not a Corruption"),
    }
});
