//! The auto-interval rule: the bucket width of a timeseries panel whose query names none, chosen from
//! its time range so that the chart has about 100–300 points and its buckets are a round duration.

use std::time::Duration;

/// Bucket widths a panel may be given, smallest first: round durations whose neighbours are at most
/// 3× apart below a day (so a range of 100 s or more always gets 100–300 buckets, up to 300 days).
pub const LADDER: [Duration; 19] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(2 * 60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(12 * 3600),
    Duration::from_secs(86_400),
    Duration::from_secs(7 * 86_400),
    Duration::from_secs(30 * 86_400),
];

/// Most buckets an auto interval gives.
pub const MAX_BUCKETS: u128 = 300;

/// The smallest ladder step that splits `span` into at most [`MAX_BUCKETS`] buckets (the largest step
/// for a span too long for any).
pub fn auto_interval(span: Duration) -> Duration {
    LADDER
        .into_iter()
        .find(|step| span.as_millis().div_ceil(step.as_millis()) <= MAX_BUCKETS)
        .unwrap_or(LADDER[LADDER.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_duration, parse_duration};

    fn auto(span: &str) -> String {
        format_duration(auto_interval(parse_duration(span).unwrap()))
    }

    #[test]
    fn common_ranges_get_round_intervals() {
        for (span, interval) in [
            ("1m", "1s"),
            ("5m", "1s"),
            ("15m", "5s"),
            ("1h", "15s"),
            ("3h", "1m"),
            ("6h", "2m"),
            ("12h", "5m"),
            ("24h", "5m"),
            ("2d", "10m"),
            ("7d", "1h"),
            ("30d", "3h"),
            ("90d", "12h"),
            ("1000d", "1w"),
            ("3000d", "30d"),
        ] {
            assert_eq!(auto(span), interval, "{span}");
        }
    }

    #[test]
    fn ranges_from_100s_to_300d_get_100_to_300_buckets() {
        let mut span = 100_000u64;
        while span <= 300 * 86_400_000 {
            let step = auto_interval(Duration::from_millis(span)).as_millis() as u64;
            let buckets = span.div_ceil(step);
            assert!(
                (100..=300).contains(&buckets),
                "{span} ms: {buckets} buckets of {step} ms"
            );
            span = span * 13 / 10 + 7;
        }
    }
}
