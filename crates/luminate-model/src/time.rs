//! Time on the wire: Unix-millisecond timestamps, RFC 3339 strings and the short duration syntax
//! (`90s`, `15m`, `1h`, `7d`, `2w`) used by queries and configuration.
//!
//! Owns parsing and formatting only; what a range or window *means* lives in `query` and `validate`.
//!
//! Every parser here also bounds what it accepts, so that the rest of Luminate can add, subtract and
//! multiply timestamps and durations in `i64` milliseconds without checking for overflow: a timestamp
//! lies in [`MIN_TIMESTAMP`]`..=`[`MAX_TIMESTAMP`] and a duration is at most [`MAX_DURATION`]. The
//! sum or difference of any two such values, or a timestamp rounded down to a multiple of a duration,
//! stays far inside `i64` (both bounds are below 2^44 ms). A value past a bound is an error that says
//! so, never a wrapped number.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Unix time in milliseconds, the unit of every timestamp inside Luminate.
pub type TimestampMs = i64;

/// Earliest timestamp accepted anywhere: the Unix epoch, 1970-01-01T00:00:00Z. Luminate's timestamps are
/// Unix milliseconds, and no point can be written before it.
pub const MIN_TIMESTAMP: TimestampMs = 0;

/// Latest timestamp accepted anywhere: 2262-04-11T23:47:16.854Z, the last millisecond that Unix
/// nanoseconds in an `i64` can hold (the unit of OTLP, Prometheus and most tools a point comes from).
pub const MAX_TIMESTAMP: TimestampMs = i64::MAX / 1_000_000;

/// Longest duration accepted anywhere, in milliseconds: 36 500 days (100 years). Longer is a typo, not
/// a retention or a timeout, and staying this short keeps every deadline (`Instant::now() + d`)
/// representable.
pub const MAX_DURATION_MS: u64 = 36_500 * 86_400_000;

/// [`MAX_DURATION_MS`] as a [`Duration`].
pub const MAX_DURATION: Duration = Duration::from_millis(MAX_DURATION_MS);

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
    /// Well-formed but longer than [`MAX_DURATION`] (or too long to count in milliseconds at all).
    #[error("duration {0:?} is longer than the maximum of 36500d (100 years)")]
    DurationTooLong(String),
    /// Neither Unix milliseconds nor RFC 3339.
    #[error("invalid timestamp {0:?}: expected integer Unix milliseconds or an RFC 3339 date-time")]
    Timestamp(String),
    /// Well-formed but outside [`MIN_TIMESTAMP`]`..=`[`MAX_TIMESTAMP`].
    #[error(
        "timestamp {0} is out of range: accepted are 1970-01-01T00:00:00Z (0) to \
         2262-04-11T23:47:16.854Z (9223372036854) in Unix milliseconds"
    )]
    TimestampOutOfRange(String),
}

/// The current wall-clock time in Unix milliseconds.
pub fn now_ms() -> TimestampMs {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => TimestampMs::try_from(d.as_millis()).unwrap_or(TimestampMs::MAX),
        // A clock before 1970 is a misconfigured machine; treat it as the epoch rather than panic.
        Err(_) => 0,
    }
}

/// Parses the duration syntax: one positive integer and one unit, nothing else (`1h30m` is rejected so
/// that every accepted string has exactly one meaning). At most [`MAX_DURATION`]: a longer one, however
/// many digits it has, is [`TimeParseError::DurationTooLong`].
pub fn parse_duration(text: &str) -> Result<Duration, TimeParseError> {
    let err = || TimeParseError::Duration(text.to_owned());
    let too_long = || TimeParseError::DurationTooLong(text.to_owned());
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    if digits_end == 0 {
        return Err(err());
    }
    let (digits, unit) = text.split_at(digits_end);
    let per_unit = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, ms)| *ms)
        .ok_or_else(err)?;
    // Only digits remain, so the one way to fail is a count past u64: too long, like any product past
    // the maximum.
    let count: u64 = digits.parse().map_err(|_| too_long())?;
    let ms = count.checked_mul(per_unit).ok_or_else(too_long)?;
    if ms == 0 {
        return Err(err());
    }
    if ms > MAX_DURATION_MS {
        return Err(too_long());
    }
    Ok(Duration::from_millis(ms))
}

/// Formats a duration in the largest unit that divides it exactly (`parse_duration` reads it back);
/// sub-millisecond parts are dropped. A duration past `u64` milliseconds (never parsed, only built in
/// code) is shown as `u64::MAX` milliseconds rather than wrapped.
pub fn format_duration(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    for (name, per_unit) in UNITS.iter().rev() {
        if ms != 0 && ms.is_multiple_of(*per_unit) {
            return format!("{}{}", ms / per_unit, name);
        }
    }
    format!("{ms}ms")
}

/// Checks that Unix milliseconds lie in [`MIN_TIMESTAMP`]`..=`[`MAX_TIMESTAMP`].
pub fn check_timestamp(ms: TimestampMs) -> Result<TimestampMs, TimeParseError> {
    if (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&ms) {
        Ok(ms)
    } else {
        Err(TimeParseError::TimestampOutOfRange(ms.to_string()))
    }
}

/// Parses an RFC 3339 date-time (any offset) into Unix milliseconds; sub-millisecond digits are
/// truncated. Years 0000 to 9999 parse, but only the range of [`check_timestamp`] is accepted.
pub fn parse_rfc3339(text: &str) -> Result<TimestampMs, TimeParseError> {
    let dt = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| TimeParseError::Timestamp(text.to_owned()))?;
    let ms = dt.unix_timestamp_nanos().div_euclid(1_000_000);
    TimestampMs::try_from(ms)
        .ok()
        .filter(|ms| (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(ms))
        .ok_or_else(|| TimeParseError::TimestampOutOfRange(text.to_owned()))
}

/// Parses a timestamp given as a string: Unix milliseconds in decimal (an optional `-`, then digits),
/// or RFC 3339. Either way within the range of [`check_timestamp`].
pub fn parse_timestamp_str(text: &str) -> Result<TimestampMs, TimeParseError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Only a sign and digits: the one way to fail is a number past i64, which is out of range.
        return text
            .parse::<TimestampMs>()
            .map_err(|_| TimeParseError::TimestampOutOfRange(text.to_owned()))
            .and_then(check_timestamp);
    }
    parse_rfc3339(text)
}

/// Parses a JSON timestamp: an integer number of Unix milliseconds or a string (see
/// [`parse_timestamp_str`]), within the range of [`check_timestamp`]. Fractional numbers are rejected:
/// the unit is the millisecond.
pub fn parse_timestamp_json(value: &serde_json::Value) -> Result<TimestampMs, TimeParseError> {
    match value {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(ms) => check_timestamp(ms),
            // An integer past i64 is out of range; anything else is not an integer.
            None if n.is_u64() => Err(TimeParseError::TimestampOutOfRange(n.to_string())),
            None => Err(TimeParseError::Timestamp(n.to_string())),
        },
        serde_json::Value::String(s) => parse_timestamp_str(s),
        other => Err(TimeParseError::Timestamp(other.to_string())),
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC (used in admin responses and logs).
pub fn format_rfc3339(ms: TimestampMs) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
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
            "", "h", "1", "1.5h", "-1h", "1h30m", "0s", "1y", " 1h", "1H",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(TimeParseError::Duration(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn durations_past_the_maximum_are_too_long_not_wrapped() {
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
        assert_eq!(
            parse_duration(&format!("{MAX_DURATION_MS}ms")),
            Ok(MAX_DURATION)
        );
        for long in [
            "36501d",
            "5215w",
            "3153600000001ms",
            // u64::MAX - 59 999: as i64 milliseconds this was -60 s.
            "18446744073709491616ms",
            "18446744073709551615ms",
            "18446744073709551615s",
            "18446744073709551616ms",
            "99999999999999999999w",
            "99999999999999999999d",
        ] {
            assert_eq!(
                parse_duration(long),
                Err(TimeParseError::DurationTooLong(long.to_owned())),
                "{long:?}"
            );
        }
        assert_eq!(
            TimeParseError::DurationTooLong("36501d".into()).to_string(),
            format!(
                "duration \"36501d\" is longer than the maximum of {} (100 years)",
                format_duration(MAX_DURATION)
            )
        );
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

    #[test]
    fn timestamp_bounds_are_the_documented_instants() {
        assert_eq!(format_rfc3339(MIN_TIMESTAMP), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(MAX_TIMESTAMP), "2262-04-11T23:47:16.854Z");
        assert_eq!(MAX_TIMESTAMP, 9_223_372_036_854);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(MIN_TIMESTAMP));
        assert_eq!(parse_rfc3339("2262-04-11T23:47:16.854Z"), Ok(MAX_TIMESTAMP));
        assert_eq!(
            parse_timestamp_str("9223372036854"),
            Ok(MAX_TIMESTAMP),
            "the last accepted millisecond"
        );
        assert_eq!(parse_timestamp_json(&serde_json::json!(0)), Ok(0));
        let message = TimeParseError::TimestampOutOfRange("-1".into()).to_string();
        assert!(
            message.contains(&format!("({MIN_TIMESTAMP})"))
                && message.contains(&format!("({MAX_TIMESTAMP})")),
            "{message}"
        );
    }

    #[test]
    fn timestamps_outside_the_bounds_are_out_of_range_not_wrapped() {
        let out = |t: &str| TimeParseError::TimestampOutOfRange(t.to_owned());
        for text in [
            "-1",
            "-9223372036854775808",
            "9223372036854775807",
            "9223372036855",
            "99999999999999999999",
            "-99999999999999999999",
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "2262-04-11T23:47:16.855Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59.999999999-23:59",
        ] {
            assert_eq!(parse_timestamp_str(text), Err(out(text)), "{text}");
            assert_eq!(
                parse_timestamp_json(&serde_json::json!(text)),
                Err(out(text)),
                "{text}"
            );
        }
        for n in [
            serde_json::json!(i64::MIN),
            serde_json::json!(-1),
            serde_json::json!(u64::MAX),
        ] {
            assert_eq!(parse_timestamp_json(&n), Err(out(&n.to_string())), "{n}");
        }
        // Not integers at all: a timestamp error, not a range error.
        for n in [
            serde_json::json!(1e30),
            serde_json::json!(1.5),
            serde_json::json!(-0.5),
        ] {
            assert_eq!(
                parse_timestamp_json(&n),
                Err(TimeParseError::Timestamp(n.to_string())),
                "{n}"
            );
        }
        assert_eq!(
            parse_timestamp_str("1-2"),
            Err(TimeParseError::Timestamp("1-2".into()))
        );
        assert_eq!(
            parse_timestamp_str("--1"),
            Err(TimeParseError::Timestamp("--1".into()))
        );
        assert_eq!(parse_timestamp_str("-0"), Ok(0));
    }

    #[test]
    fn formatting_never_wraps() {
        assert_eq!(format_duration(Duration::MAX), format!("{}ms", u64::MAX));
        assert_eq!(format_rfc3339(i64::MIN), i64::MIN.to_string());
        assert_eq!(format_rfc3339(i64::MAX), i64::MAX.to_string());
    }

    /// Extreme inputs for every parser: each either fails cleanly or gives a value inside the bounds
    /// that reads back to itself.
    mod extremes {
        use proptest::prelude::*;

        use super::*;

        /// Every kind of number a client or a configuration might send, as text.
        fn number_text() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(u64::MAX.to_string()),
                Just((u64::MAX - 59_999).to_string()),
                Just(i64::MAX.to_string()),
                Just(i64::MIN.to_string()),
                Just(MAX_DURATION_MS.to_string()),
                Just((MAX_DURATION_MS + 1).to_string()),
                Just(MAX_TIMESTAMP.to_string()),
                Just((MAX_TIMESTAMP + 1).to_string()),
                Just("0".to_owned()),
                Just("-0".to_owned()),
                Just("00000000000000000000000000001".to_owned()),
                any::<u64>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                (0u64..100_000).prop_map(|n| n.to_string()),
                "[0-9]{1,60}",
                "-[0-9]{1,30}",
                "[0-9]{1,12}\\.[0-9]{1,6}",
                "[0-9]{1,3}[eE][0-9]{1,3}",
            ]
        }

        fn unit() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                "ms", "s", "m", "h", "d", "w", "", "y", "us", "ns", "M", "H", " s", "s ", "mss",
            ])
        }

        /// RFC 3339 date-times over years 0000 to 9999, with fractions and offsets.
        fn rfc3339_text() -> impl Strategy<Value = String> {
            (
                0u32..=9999,
                1u32..=12,
                1u32..=28,
                0u32..=23,
                0u32..=59,
                0u32..=59,
                prop::option::of("[0-9]{1,9}"),
                prop::sample::select(vec!["Z", "+00:00", "-23:59", "+23:59", "+05:30"]),
            )
                .prop_map(|(y, mo, d, h, mi, s, frac, offset)| {
                    let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{offset}")
                })
        }

        fn timestamp_text() -> impl Strategy<Value = String> {
            prop_oneof![number_text(), rfc3339_text()]
        }

        fn in_bounds(ms: TimestampMs) -> bool {
            (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&ms)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn duration_is_bounded_and_reads_back(number in number_text(), unit in unit()) {
                let text = format!("{number}{unit}");
                if let Ok(d) = parse_duration(&text) {
                    let ms = u64::try_from(d.as_millis()).expect("bounded");
                    prop_assert!(ms > 0 && ms <= MAX_DURATION_MS, "{text} gave {ms} ms");
                    // The value is exactly count × unit, computed without any chance of wrapping.
                    let per_unit = UNITS.iter().find(|(n, _)| *n == unit).expect("a unit").1;
                    let count: u128 = number.parse().expect("digits");
                    prop_assert_eq!(u128::from(ms), count * u128::from(per_unit));
                    prop_assert!(i64::try_from(ms).is_ok());
                    prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
                }
            }

            #[test]
            fn timestamp_string_is_bounded_and_consistent(text in timestamp_text()) {
                if let Ok(ms) = parse_timestamp_str(&text) {
                    prop_assert!(in_bounds(ms), "{text} gave {ms}");
                    match text.parse::<i128>() {
                        Ok(n) => prop_assert_eq!(i128::from(ms), n),
                        Err(_) => {
                            prop_assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Ok(ms));
                            prop_assert_eq!(parse_rfc3339(&text), Ok(ms));
                        }
                    }
                }
                let json = serde_json::Value::String(text.clone());
                prop_assert_eq!(parse_timestamp_json(&json), parse_timestamp_str(&text));
            }

            #[test]
            fn timestamp_number_is_bounded_and_equal(text in number_text()) {
                // As a JSON number (when it is one): only in-range integers come back, unchanged.
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
                    match parse_timestamp_json(&json) {
                        Ok(ms) => {
                            prop_assert!(in_bounds(ms));
                            prop_assert_eq!(json.as_i64(), Some(ms));
                        }
                        Err(_) => prop_assert!(json.as_i64().is_none_or(|n| !in_bounds(n))),
                    }
                }
            }

            #[test]
            fn any_i64_is_either_in_range_or_refused(ms in any::<i64>()) {
                let json = serde_json::json!(ms);
                match check_timestamp(ms) {
                    Ok(back) => {
                        prop_assert_eq!(back, ms);
                        prop_assert_eq!(parse_timestamp_json(&json), Ok(ms));
                        prop_assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Ok(ms));
                    }
                    Err(e) => {
                        prop_assert!(!in_bounds(ms));
                        prop_assert_eq!(parse_timestamp_json(&json), Err(e));
                    }
                }
            }
        }
    }
}
