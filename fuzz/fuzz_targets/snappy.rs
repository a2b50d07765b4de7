//! The snappy block framing of remote write bodies on its own, as the route decompresses them:
//! `unsnappy_capped` with the size limit. Any input must end in the decompressed bytes (never more
//! than the cap, exactly what the snap crate gives) or a 400/413 — and a body that declares more than
//! the cap must be refused before anything is allocated for it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_fuzz::peak_bytes;
use luminate_model::ErrorCode;
use luminate_server::remote_write::unsnappy_capped;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let cap = 1usize << (pick % 21);
    let (decompressed, peak) = peak_bytes(|| unsnappy_capped(body, cap));
    let declared = snap::raw::decompress_len(body);
    match decompressed {
        Ok(bytes) => {
            assert!(bytes.len() <= cap);
            assert_eq!(Ok(bytes.len()), declared.map_err(|_| ()));
            assert_eq!(
                snap::raw::Decoder::new().decompress_vec(body).ok(),
                Some(bytes)
            );
            // The output (its declared length) and an error message at most.
            assert!(peak <= cap + 4096, "{peak} bytes held for a cap of {cap}");
        }
        Err(e) if e.code == ErrorCode::PayloadTooLarge => {
            assert!(declared.is_ok_and(|n| n > cap), "{e:?}");
            assert!(
                peak <= 4096,
                "{peak} bytes held to refuse an over-limit body"
            );
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{e:?}");
            assert!(peak <= cap + 4096, "{peak} bytes held for a cap of {cap}");
        }
    }
});
