//! OTLP bodies as the route decodes them: gzip with the size cap, then the protobuf and the JSON
//! `ExportMetricsServiceRequest` decoders and the mapping to points (every instrument kind, exponential
//! histogram bounds included). Any input must end in points or a 400/413, never a panic or an unbounded
//! allocation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_model::ErrorCode;
use luminate_model::ValidationRules;
use luminate_server::body::gunzip_capped;
use luminate_server::otlp::{DEFAULT_PROMOTED_RESOURCE_ATTRIBUTES, decode_json, decode_protobuf};

fuzz_target!(|data: &[u8]| {
    let rules = ValidationRules::default();
    let now = 1_800_000_000_000;
    let promoted: Vec<String> = DEFAULT_PROMOTED_RESOURCE_ATTRIBUTES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    // The raw input as a gzip body, and as an already inflated one (most random inputs are not gzip,
    // and the decoders should see them all the same).
    let inflated = gunzip_capped(data, 1 << 20);
    for body in [inflated.ok(), Some(data.to_vec())].into_iter().flatten() {
        for decoded in [
            decode_protobuf(&body, now, &rules, 100, &promoted),
            decode_json(&body, now, &rules, 100, &promoted),
        ] {
            match decoded {
                Ok(export) => assert!(
                    export
                        .decoded
                        .batches
                        .iter()
                        .all(|b| !b.is_empty() && b.len() <= 100)
                ),
                Err(e) => assert!(matches!(
                    e.code,
                    ErrorCode::InvalidRequest | ErrorCode::PayloadTooLarge
                )),
            }
        }
    }
});
