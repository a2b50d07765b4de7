//! `GET {metrics.path}`: the self-metrics exposition. No JWT (scrapers have none, and the exposition
//! spans tenants) and no rate limit; who may scrape is decided here, per listener, by
//! [`ScrapeAccess`]: `metrics.bearer_token` when set; without it, open — except on the API's address
//! with `auth.enabled`, where nobody may. What is measured lives in `crate::telemetry`.
//!
//! Two formats, chosen by `Accept` as the Prometheus project's own clients do: OpenMetrics 1.0 (what
//! `prometheus_client` encodes; Prometheus asks for it first) when the scraper accepts
//! `application/openmetrics-text`, else the Prometheus text format 0.0.4 (what `curl` and
//! `promtool check metrics` get). The latter is the same text with counter families named by their
//! `_total` samples and without `# EOF`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::{AppState, auth_refusal};
use crate::auth::{ScrapeAccess, check_scrape};
use crate::error::ApiError;

/// The media type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The media type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition on the API's address.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metricsExposition",
    tag = "operations",
    summary = "Luminate's own metrics (Prometheus text or OpenMetrics), at `metrics.path`",
    description = "OpenMetrics 1.0 when `Accept` names `application/openmetrics-text`, else the Prometheus text format 0.0.4. No JWT: with `metrics.bearer_token` set, that token; with `auth.enabled` and no token, refused on the API's address (docs/monitoring.md#who-may-scrape).",
    responses(
        (status = 200, description = "The exposition.", content(
            (String = "text/plain"),
            (String = "application/openmetrics-text"),
        )),
        (status = 401, description = "`UNAUTHORIZED`: `metrics.bearer_token` not sent, or no scrape admitted on this address.", body = crate::openapi::schemas::ErrorBody),
    ),
    security((), ("metricsToken" = [])),
)]
pub async fn on_api_address(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    serve(&state, ScrapeAccess::of(&state.config, true), &headers)
}

/// The exposition on `metrics.listen`.
pub async fn on_metrics_address(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    serve(&state, ScrapeAccess::of(&state.config, false), &headers)
}

/// Encodes the registry for a scrape that `access` admits.
fn serve(state: &AppState, access: ScrapeAccess<'_>, headers: &HeaderMap) -> Response {
    let sent = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if let Err(e) = check_scrape(access, sent) {
        return auth_refusal(e);
    }
    let mut text = String::with_capacity(16 << 10);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        return ApiError::internal(format!("encoding the metrics failed: {e}")).into_response();
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (media_type, body) = if openmetrics {
        (OPENMETRICS, text)
    } else {
        (PROMETHEUS_TEXT, prometheus_text(&text))
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        body,
    )
        .into_response()
}

/// OpenMetrics text as Prometheus text 0.0.4. The encoder writes no units, exemplars, `_created`
/// samples or info/stateset families, so two differences remain: a counter family's `# HELP` and
/// `# TYPE` name the family (`x`) where Prometheus expects the sample's name (`x_total`), and the
/// closing `# EOF`.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_samples_in_prometheus_text() {
        let openmetrics = "# HELP a_x Xs.\n# TYPE a_x counter\na_x_total{t=\"1\"} 2\n\
                           # HELP a_g G.\n# TYPE a_g gauge\na_g 1\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP a_x_total Xs.\n# TYPE a_x_total counter\na_x_total{t=\"1\"} 2\n\
             # HELP a_g G.\n# TYPE a_g gauge\na_g 1\n"
        );
    }
}
