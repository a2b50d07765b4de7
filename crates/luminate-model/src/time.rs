//! Time on the wire: Unix-millisecond timestamps, RFC 3339 strings and the short duration syntax
//! (`90s`, `15m`, `1h`, `7d`, `2w`) used by queries and configuration.
//!
//! Owns parsing and formatting only; what a range or window *means* lives in `query` and `validate`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Unix time in milliseconds, the unit of every timestamp inside Luminate.
pub type TimestampMs = i64;

/// Milliseconds per unit of the duration syntax.
const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
];

/// A duration or timestamp that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeParseError {
    /// Not `<digits><unit>` with a unit of `ms`, `s`, `m`, `h`, `d`, `w`.
    #[error(
        "invalid duration {0:?}: expected a positive integer followed by ms, s, m, h, d or w (e.g. 90s, 15m, 7d)"
    )]
    Duration(String),
    /// Neither Unix milliseconds nor RFC 3339.
    #[error("invalid timestamp {0:?}: expected Unix milliseconds or an RFC 3339 date-time")]
    Timestamp(String),
}

/// The current wall-clock time in Unix milliseconds.
pub fn now_ms() -> TimestampMs {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as TimestampMs,
        // A clock before 1970 is a misconfigured machine; treat it as the epoch rather than panic.
        Err(_) => 0,
    }
}

/// Parses the duration syntax: one positive integer and one unit, nothing else (`1h30m` is rejected so
/// that every accepted string has exactly one meaning).
pub fn parse_duration(text: &str) -> Result<Duration, TimeParseError> {
    let err = || TimeParseError::Duration(text.to_owned());
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    if digits_end == 0 {
        return Err(err());
    }
    let (digits, unit) = text.split_at(digits_end);
    let count: u64 = digits.parse().map_err(|_| err())?;
    let per_unit = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, ms)| *ms)
        .ok_or_else(err)?;
    let ms = count.checked_mul(per_unit).ok_or_else(err)?;
    if ms == 0 {
        return Err(err());
    }
    Ok(Duration::from_millis(ms))
}

/// Formats a duration in the largest unit that divides it exactly (`parse_duration` reads it back).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    for (name, per_unit) in UNITS.iter().rev() {
        if ms != 0 && ms.is_multiple_of(*per_unit) {
            return format!("{}{}", ms / per_unit, name);
        }
    }
    format!("{ms}ms")
}

/// Parses an RFC 3339 date-time (any offset) into Unix milliseconds; sub-millisecond digits are truncated.
pub fn parse_rfc3339(text: &str) -> Result<TimestampMs, TimeParseError> {
    let dt = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| TimeParseError::Timestamp(text.to_owned()))?;
    let nanos = dt.unix_timestamp_nanos();
    Ok(nanos.div_euclid(1_000_000) as TimestampMs)
}

/// Parses a timestamp given as a string: Unix milliseconds in decimal, or RFC 3339.
pub fn parse_timestamp_str(text: &str) -> Result<TimestampMs, TimeParseError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return text
            .parse::<TimestampMs>()
            .map_err(|_| TimeParseError::Timestamp(text.to_owned()));
    }
    parse_rfc3339(text)
}

/// Parses a JSON timestamp: an integer number of Unix milliseconds or a string (see
/// [`parse_timestamp_str`]). Fractional numbers are rejected: the unit is the millisecond.
pub fn parse_timestamp_json(value: &serde_json::Value) -> Result<TimestampMs, TimeParseError> {
    match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| TimeParseError::Timestamp(n.to_string())),
        serde_json::Value::String(s) => parse_timestamp_str(s),
        other => Err(TimeParseError::Timestamp(other.to_string())),
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC (used in admin responses and logs).
pub fn format_rfc3339(ms: TimestampMs) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|dt| dt.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
    }

    #[test]
    fn durations_malformed() {
        for bad in [
            "",
            "h",
            "1",
            "1.5h",
            "-1h",
            "1h30m",
            "0s",
            "1y",
            " 1h",
            "1H",
            "99999999999999999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn duration_format_round_trip() {
        for text in ["250ms", "90s", "15m", "1h", "3d", "2w"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(parse_duration("7d").unwrap()), "1w");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 30)), "30d");
    }

    #[test]
    fn timestamps_in_both_forms() {
        assert_eq!(parse_rfc3339("2024-12-31T00:00:00Z"), Ok(1_735_603_200_000));
        assert_eq!(
            parse_rfc3339("2024-12-31T01:00:00.123456+01:00"),
            Ok(1_735_603_200_123)
        );
        assert_eq!(parse_timestamp_str("1735603200000"), Ok(1_735_603_200_000));
        assert_eq!(
            parse_timestamp_json(&serde_json::json!(1_735_603_200_000i64)),
            Ok(1_735_603_200_000)
        );
        assert!(parse_timestamp_json(&serde_json::json!(1.5)).is_err());
        assert!(parse_timestamp_json(&serde_json::json!(true)).is_err());
        assert!(parse_timestamp_str("yesterday").is_err());
        assert_eq!(format_rfc3339(1_735_603_200_000), "2024-12-31T00:00:00Z");
    }
}
