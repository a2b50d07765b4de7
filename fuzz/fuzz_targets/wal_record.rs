//! WAL and series-log record payloads as replay decodes them (`record::Record::decode`): the bytes
//! inside a frame whose checksum matched — which anyone able to write the file can forge, so the
//! decoder is the boundary. Any input must end in a record or a decode error, never a panic; the
//! decoder must hold memory in proportion to the payload (a few bytes must not claim gigabytes); and
//! a decoded record must re-encode to bytes that decode to the same record (decode ∘ encode is a fixed
//! point; exactly the input for a delete).

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_engine::fuzzing::Record;
use luminate_fuzz::peak_bytes;

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = peak_bytes(|| Record::decode(data));
    // Strings and vectors a few times their encoded size, plus what the format bounds whatever the
    // payload: a series batch's pairs (MAX_BATCH_PAIRS, 32 MiB decoded: pco stores equal numbers in a
    // few bytes, so a small payload may legitimately claim them) and its id columns; and what pco
    // allocates for one blob from its header before any check against the numbers asked for, which
    // the format bounds but a forged blob of a few bytes may claim whole: a page of up to 2^24
    // numbers (64 MiB of u32s), and per latent variable (at most 2 for u32s) a delta lookback window
    // of up to 2^24 latents, read and then copied (2 × 64 MiB). Measured: 62-byte series batches held
    // 104 and 124 MiB. So a forged record costs start-up at most about 350 MiB (32 + 64 + 4 × 64) for
    // a moment, whatever its size, and never an abort (docs/fuzzing.md).
    let bound = 64 * data.len() + (384 << 20);
    assert!(
        peak <= bound,
        "{peak} bytes held decoding {} bytes",
        data.len()
    );
    let Ok(record) = decoded else {
        return;
    };
    let encoded = record.encode();
    let again = Record::decode(&encoded).unwrap_or_else(|e| {
        panic!(
            "a {} record re-encodes to bytes that do not decode: {e:?}",
            record.kind()
        )
    });
    // Compared as bytes: a NaN value is equal to itself only by its bits.
    assert_eq!(again.encode(), encoded, "{} record", record.kind());
    if record.kind() == "delete" {
        assert_eq!(encoded, data);
    }
});
