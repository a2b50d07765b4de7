//! Prometheus text exposition (timestamps in Unix ms) and OpenMetrics text (timestamps in Unix
//! seconds, `# EOF` ends the input), through [`luminate_model::exposition`]. Every sample line is a
//! point whatever its `# TYPE`: a histogram's `_bucket{le=...}`, `_sum` and `_count` series and a
//! summary's `{quantile=...}`, `_sum` and `_count` are imported as the plain series they are written
//! as. Labels map as remote write's do (docs/ingest.md): other `__` labels and empty values are
//! dropped, `:` and `.` become `_`. A sample without a timestamp takes `--timestamp`, or is a bad line.

use std::borrow::Cow;

use luminate_model::exposition::{Line, parse_line};
use luminate_model::validate::protocol_name;

use super::{DecodeSettings, Decoded, Decoder as LineDecoder};
use crate::cli::points::{Timestamp, Unsendable, encode, finite};

/// The decoder of one format.
pub struct Decoder {
    default_timestamp: Option<i64>,
    /// OpenMetrics: timestamps in seconds.
    seconds: bool,
}

impl Decoder {
    /// A decoder of Prometheus text, or of OpenMetrics when `openmetrics`.
    pub fn new(settings: &DecodeSettings, openmetrics: bool) -> Self {
        Self {
            default_timestamp: settings.default_timestamp,
            seconds: openmetrics,
        }
    }

    fn timestamp(&self, text: Option<&str>) -> Result<i64, String> {
        match text {
            None => self.default_timestamp.ok_or_else(|| {
                "the sample has no timestamp; give --timestamp for samples without one".to_owned()
            }),
            Some(text) if self.seconds => seconds_to_ms(text),
            Some(text) => text.parse::<i64>().map_err(|_| {
                format!("timestamp {text:?} is not an integer of Unix milliseconds (OpenMetrics' seconds need --format openmetrics)")
            }),
        }
    }
}

/// OpenMetrics' seconds (`1520879607.789`) as Unix ms, exactly (digits past the millisecond are cut).
fn seconds_to_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("timestamp {text:?} is not a number of Unix seconds");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        // Exponent notation: rare; through f64, to the millisecond.
        let seconds: f64 = text.parse().map_err(|_| bad())?;
        let ms = (seconds * 1000.0).round();
        return if ms.is_finite() && ms.abs() < 9.2e18 {
            Ok(ms as i64)
        } else {
            Err(bad())
        };
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let mut millis: i64 = 0;
    for (i, digit) in fraction.bytes().take(3).enumerate() {
        millis += i64::from(digit - b'0') * [100, 10, 1][i];
    }
    let ms = whole.checked_mul(1000).ok_or_else(bad)?;
    if text.starts_with('-') {
        ms.checked_sub(millis).ok_or_else(bad)
    } else {
        ms.checked_add(millis).ok_or_else(bad)
    }
}

impl LineDecoder for Decoder {
    fn line(&mut self, line: &str, out: &mut Vec<Result<String, Unsendable>>) -> Decoded {
        let sample = match parse_line(line) {
            Ok(Line::Sample(sample)) => sample,
            Ok(Line::Blank | Line::Comment) => return Decoded::Points,
            Ok(Line::Eof) => return Decoded::End,
            Err(e) => return Decoded::Bad(e),
        };
        let timestamp = match self.timestamp(sample.timestamp) {
            Ok(ts) => ts,
            Err(e) => return Decoded::Bad(e),
        };
        let name = protocol_name(&sample.name);
        let dims: Vec<(Cow<'_, str>, Cow<'_, str>)> = sample
            .labels
            .iter()
            .filter(|(k, v)| !k.starts_with("__") && !v.is_empty())
            .map(|(k, v)| (protocol_name(k), Cow::Borrowed(v.as_ref())))
            .collect();
        out.push(finite(sample.value).map(|v| encode(&name, &Timestamp::Ms(timestamp), v, &dims)));
        Decoded::Points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(openmetrics: bool, default: Option<i64>, line: &str) -> Result<String, String> {
        let settings = DecodeSettings {
            default_timestamp: default,
        };
        let mut out = Vec::new();
        match Decoder::new(&settings, openmetrics).line(line, &mut out) {
            Decoded::Points => out
                .pop()
                .map_or(Err("no point".into()), |p| p.map_err(|e| e.to_string())),
            Decoded::Bad(e) => Err(e),
            Decoded::End => Err("end".into()),
        }
    }

    #[test]
    fn samples_become_points_with_their_format_of_timestamp() {
        assert_eq!(
            decode(
                false,
                None,
                r#"job:rq:rate5m{le="+Inf",__x="y",e=""} 3 1700000000123"#
            )
            .unwrap(),
            r#"{"name":"job_rq_rate5m","timestamp":1700000000123,"value":3.0,"dimensions":{"le":"+Inf"}}"#
        );
        assert_eq!(
            decode(true, None, "a_total 1 1700000000.1239").unwrap(),
            r#"{"name":"a_total","timestamp":1700000000123,"value":1.0,"dimensions":{}}"#
        );
        assert_eq!(
            decode(false, Some(7), "a 1").unwrap(),
            r#"{"name":"a","timestamp":7,"value":1.0,"dimensions":{}}"#
        );
        assert!(
            decode(false, None, "a 1")
                .unwrap_err()
                .contains("--timestamp")
        );
        // `promtool tsdb dump`'s spelling: the name as the `__name__` label.
        assert_eq!(
            decode(
                false,
                None,
                r#"{__name__="up", job="prometheus"} 1 1700000000000"#
            )
            .unwrap(),
            r#"{"name":"up","timestamp":1700000000000,"value":1.0,"dimensions":{"job":"prometheus"}}"#
        );
        assert!(
            decode(false, None, "a 1 1.5")
                .unwrap_err()
                .contains("openmetrics")
        );
        assert!(
            decode(true, None, "a NaN 1")
                .unwrap_err()
                .contains("not finite")
        );
        assert_eq!(decode(true, None, "# EOF").unwrap_err(), "end");
        assert_eq!(seconds_to_ms("-1.5"), Ok(-1500));
        assert_eq!(seconds_to_ms("1.5e3"), Ok(1_500_000));
        assert!(seconds_to_ms("99999999999999999").is_err());
    }
}
