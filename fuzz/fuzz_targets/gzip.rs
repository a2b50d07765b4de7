//! gzip request bodies (`POST /api/v1/write` and OTLP with `Content-Encoding: gzip`) as the routes
//! inflate them: `gunzip_capped` with the server's size limit. Any input must end in the inflated
//! bytes (never more than the cap, and exactly what an uncapped decoder gives) or a 400/413, and the
//! decoder must never hold much more memory than the cap, whatever the input claims.

#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use luminate_fuzz::peak_bytes;
use luminate_model::ErrorCode;
use luminate_server::body::gunzip_capped;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a cap from 1 byte to 64 KiB, so that inputs reach it and cross it (the
    // server's default is 10 MiB: what matters is the behaviour at the limit, not its size).
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let cap = 1usize << (pick % 17);
    let (inflated, peak) = peak_bytes(|| gunzip_capped(body, cap));
    // The output buffer (at most cap + 1 bytes, doubling) and flate2's window and state (~100 KiB).
    assert!(
        peak <= 2 * cap + (256 << 10),
        "{peak} bytes held for a cap of {cap}"
    );
    // What an uncapped decoder makes of the same bytes, read up to one byte past the cap.
    let mut reference = Vec::new();
    let plain = flate2::read::MultiGzDecoder::new(body)
        .take(cap as u64 + 1)
        .read_to_end(&mut reference);
    match inflated {
        Ok(bytes) => {
            assert!(bytes.len() <= cap);
            assert!(plain.is_ok());
            assert_eq!(bytes, reference);
        }
        Err(e) if e.code == ErrorCode::PayloadTooLarge => {
            assert!(plain.is_ok() && reference.len() > cap, "{e:?}");
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{e:?}");
            assert!(plain.is_err());
        }
    }
});
