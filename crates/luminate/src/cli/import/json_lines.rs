//! Luminate's JSON lines: one point object per line (`{"name", "timestamp", "value", "dimensions"}`),
//! what the write route takes inside `metrics`. Passed on as written once its braces are seen to close on
//! its line (`object_line`); the server validates each point.

use super::{Decoded, Decoder as LineDecoder};
use crate::cli::points::{Unsendable, object_line};

/// The decoder (stateless).
pub struct Decoder;

impl LineDecoder for Decoder {
    fn line(&mut self, line: &str, out: &mut Vec<Result<String, Unsendable>>) -> Decoded {
        let line = line.trim();
        if line.is_empty() {
            return Decoded::Points;
        }
        match object_line(line) {
            Ok(()) => {
                out.push(Ok(line.to_owned()));
                Decoded::Points
            }
            Err(e) => Decoded::Bad(e),
        }
    }
}
