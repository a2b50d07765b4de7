//! The JSON write body's scanner against the serde_json decoder it replaced (`wire::reference`): for
//! any UTF-8 input, the same points handed out in the same order, then the same count or the same
//! error (reason, line, column).

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_model::wire::{WireError, WirePoint, decode_write_body, reference};

/// Every point's debug text (floats by their bits through `{:?}`), then the outcome.
fn run(decode: impl FnOnce(&mut dyn FnMut(&WirePoint<'_>)) -> Result<usize, WireError>) -> String {
    let mut seen = String::new();
    let outcome = decode(&mut |p| seen.push_str(&format!("{p:?}\n")));
    format!("{seen}{outcome:?}")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = run(|each| decode_write_body(text, each));
    let theirs = run(|each| {
        reference::decode_write_body(text, each).map_err(|e| reference::to_wire_error(text, &e))
    });
    assert_eq!(ours, theirs, "body: {text:?}");
});
