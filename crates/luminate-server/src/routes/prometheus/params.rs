//! The parameters of Prometheus' API: from the query string and, for `POST`, a form body; repeated
//! `match[]`; times as Unix seconds (fractions allowed) or RFC 3339; durations as seconds or Prometheus
//! durations (`1m30s`).

use axum::extract::Request;
use axum::http::{Method, header};

use super::PromError;
use crate::body::read_capped;

/// Largest form body: an expression and its parameters.
const MAX_FORM_BODY: usize = 1 << 20;

/// A request's parameters, in order.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// The query string's pairs and, for a form `POST`, the body's.
    pub async fn read(
        request: Request,
        read_timeout: std::time::Duration,
    ) -> Result<Self, PromError> {
        let mut pairs: Vec<(String, String)> = request
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if request.method() == Method::POST && is_form {
            let body = read_capped(request.into_body(), MAX_FORM_BODY, read_timeout)
                .await
                .map_err(|e| {
                    PromError::BadData(format!("error parsing form body: {}", e.message))
                })?;
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Self(pairs))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (`match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The time `name` in ms, or `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, PromError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(text) => parse_time(text).ok_or_else(|| {
                PromError::BadData(format!(
                    "invalid parameter \"{name}\": cannot parse \"{text}\" to a valid timestamp"
                ))
            }),
        }
    }

    /// The duration `name` in ms, when present.
    pub fn duration(&self, name: &str) -> Result<Option<i64>, PromError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(text) => parse_duration_ms(text).map(Some).ok_or_else(|| {
                PromError::BadData(format!(
                    "invalid parameter \"{name}\": cannot parse \"{text}\" to a valid duration"
                ))
            }),
        }
    }
}

/// Unix seconds (with a fraction, rounded to the ms) or RFC 3339, in ms.
pub(super) fn parse_time(text: &str) -> Option<i64> {
    if let Ok(secs) = text.parse::<f64>() {
        return secs.is_finite().then(|| (secs * 1000.0).round() as i64);
    }
    luminate_model::time::parse_rfc3339(text).ok()
}

/// Seconds (with a fraction) or a Prometheus duration (`1h30m`, units `ms s m h d w y`), in ms.
pub(super) fn parse_duration_ms(text: &str) -> Option<i64> {
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as i64);
    }
    let mut total: i64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_as_prometheus_reads_them() {
        assert_eq!(parse_time("4"), Some(4_000));
        assert_eq!(parse_time("1700000000.123"), Some(1_700_000_000_123));
        assert_eq!(parse_time("1970-01-01T00:00:10Z"), Some(10_000));
        assert_eq!(parse_time("soon"), None);
        assert_eq!(parse_duration_ms("15"), Some(15_000));
        assert_eq!(parse_duration_ms("0.5"), Some(500));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("5x"), None);
        assert_eq!(parse_duration_ms(""), None);
    }
}
