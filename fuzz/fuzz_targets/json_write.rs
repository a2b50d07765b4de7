//! The JSON write body's decoders, on any UTF-8 input:
//! - the body scanner against the serde_json decoder it replaced (`wire::reference`): the same points
//!   handed out in the same order, then the same count or the same error (reason, line, column);
//! - the same input read as JSON lines (`application/x-ndjson`): the points, or the failing line, that
//!   each line as a body of its own (`{"metrics":[line]}`) gives — no line ever reaches into the next.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_model::wire::{
    WireError, WirePoint, decode_write_body, decode_write_lines, reference,
};

/// Every point's debug text (floats by their bits through `{:?}`), then the outcome.
fn run(decode: impl FnOnce(&mut dyn FnMut(&WirePoint<'_>)) -> Result<usize, WireError>) -> String {
    let mut seen = String::new();
    let outcome = decode(&mut |p| seen.push_str(&format!("{p:?}\n")));
    format!("{seen}{outcome:?}")
}

/// Every point's debug text, then the count or the failing line, decoding `text` as JSON lines.
fn as_lines(text: &str) -> String {
    let mut seen = String::new();
    let outcome = decode_write_lines(text, |p| seen.push_str(&format!("{p:?}\n")));
    let line_start: usize = match &outcome {
        Ok(_) => 0,
        Err(e) => text.split('\n').take(e.line() - 1).map(|l| l.len() + 1).sum(),
    };
    if let Err(e) = &outcome {
        let line_len = text.split('\n').nth(e.line() - 1).map_or(0, str::len);
        assert!(
            (line_start..=line_start + line_len).contains(&e.offset()),
            "{e} at offset {} is not on its line: {text:?}",
            e.offset()
        );
    }
    format!("{seen}{:?}", outcome.map_err(|e| e.line()))
}

/// What [`as_lines`] must give: each non-blank line decoded as a body of one point.
fn line_by_line(text: &str) -> String {
    let mut seen = String::new();
    let mut count = 0;
    for (number, line) in (1..).zip(text.split('\n')) {
        if line.trim_matches([' ', '\t', '\r']).is_empty() {
            continue;
        }
        let body = format!("{{\"metrics\":[{line}]}}");
        let mut points = String::new();
        match decode_write_body(&body, |p| points.push_str(&format!("{p:?}\n"))) {
            Ok(1) => {
                seen.push_str(&points);
                count += 1;
            }
            _ => return format!("{seen}{:?}", Err::<usize, usize>(number)),
        }
    }
    format!("{seen}{:?}", Ok::<usize, usize>(count))
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
    assert_eq!(as_lines(text), line_by_line(text), "lines: {text:?}");
});
