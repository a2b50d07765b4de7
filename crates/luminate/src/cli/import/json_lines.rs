//! Luminate's JSON lines: one point object per line (`{"name", "timestamp", "value", "dimensions"}`),
//! what the write route takes inside `metrics`. Passed on as written; the server validates each point.

use super::{Decoded, Decoder as LineDecoder};
use crate::cli::points::{Unsendable, json_object};

/// The decoder (stateless).
pub struct Decoder;

impl LineDecoder for Decoder {
    fn line(&mut self, line: &str, out: &mut Vec<Result<String, Unsendable>>) -> Decoded {
        if line.trim().is_empty() {
            return Decoded::Points;
        }
        match json_object(line) {
            Ok(json) => {
                out.push(Ok(json));
                Decoded::Points
            }
            Err(e) => Decoded::Bad(e),
        }
    }
}
