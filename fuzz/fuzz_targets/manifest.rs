//! The manifest (`<data_dir>/MANIFEST`, JSON) as start-up reads it: any input must end in a
//! manifest or a typed `Corruption`, never a panic, and a manifest must write back to bytes that read
//! to the same manifest (and write the same bytes again).

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_engine::EngineError;
use luminate_engine::fuzzing::manifest_round_trip;

fuzz_target!(|data: &[u8]| {
    match manifest_round_trip(data) {
        Ok(written) => {
            let again = manifest_round_trip(&written)
                .unwrap_or_else(|e| panic!("a manifest writes bytes it cannot read: {e}"));
            assert_eq!(again, written);
        }
        Err(EngineError::Corruption { .. }) => {}
        Err(e) => panic!("a manifest's bytes gave a {e:?}, not a Corruption"),
    }
});
