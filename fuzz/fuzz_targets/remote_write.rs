//! Remote write bodies as the route decodes them: snappy with the size cap, then each protobuf
//! version. Any input must end in points or a 400/413, never a panic or an unbounded allocation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_model::ErrorCode;
use luminate_model::ValidationRules;
use luminate_server::remote_write::{Version, decode, unsnappy_capped};

fuzz_target!(|data: &[u8]| {
    let rules = ValidationRules::default();
    let now = 1_800_000_000_000;
    // The raw input as a compressed body, and as an already decompressed one (most random inputs are
    // not valid snappy, and the protobuf decoder should see them all the same).
    let decompressed = unsnappy_capped(data, 1 << 20);
    for body in [decompressed.ok(), Some(data.to_vec())]
        .into_iter()
        .flatten()
    {
        for version in [Version::V1, Version::V2] {
            match decode(version, &body, now, &rules, 100) {
                Ok(d) => assert!(d.batches.iter().all(|b| !b.is_empty() && b.len() <= 100)),
                Err(e) => assert!(matches!(
                    e.code,
                    ErrorCode::InvalidRequest | ErrorCode::PayloadTooLarge
                )),
            }
        }
    }
});
