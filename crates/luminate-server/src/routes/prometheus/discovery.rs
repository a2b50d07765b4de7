//! Discovery: `labels`, `label/<name>/values`, `series`, `metadata`, and the fixed answers of
//! `query_exemplars` (none) and `status/buildinfo`.
//!
//! Without `match[]`, names and values come from the store's discovery listings, which count every
//! stored point: `start` and `end` do not narrow them. With `match[]`, a selector naming only metrics
//! (`{__name__="x"}`, `{__name__=~"x|y"}`, which Grafana sends) is answered from the listings of those
//! metrics; any other selector reads its series in `[start, end]` (default: all of time, as
//! Prometheus), bounded like a query.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::response::Response;
use luminate_model::QueryContext;
use luminate_model::time::now_ms;
use luminate_promql::labels::METRIC_NAME;
use luminate_promql::{Expr, MAX_SAMPLES};
use promql_parser::parser::VectorSelector;

use super::params::Params;
use super::source::StoreSource;
use super::{PromError, success};
use crate::app::AppState;
use crate::tenant::RequestTenant;

/// Most values listed per metric and label.
const MAX_VALUES: usize = 100_000;

/// The selectors of `match[]`.
fn selectors(params: &Params) -> Result<Vec<VectorSelector>, PromError> {
    params
        .all("match[]")
        .into_iter()
        .map(|text| match luminate_promql::parse(text)? {
            Expr::VectorSelector(vs) => Ok(vs),
            _ => Err(PromError::BadData(format!(
                "invalid parameter \"match[]\": {text} is not a series selector"
            ))),
        })
        .collect()
}

/// Whether a selector only names metrics.
fn names_only(vs: &VectorSelector) -> bool {
    vs.offset.is_none()
        && vs.at.is_none()
        && vs.matchers.or_matchers.is_empty()
        && vs.matchers.matchers.iter().all(|m| m.name == METRIC_NAME)
}

fn json_strings(values: impl IntoIterator<Item = String>) -> String {
    serde_json::to_string(&values.into_iter().collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

/// One discovery request: its tenant and parameters.
struct Discovery<'a> {
    state: &'a AppState,
    tenant: &'a luminate_model::Tenant,
    params: Params,
}

impl Discovery<'_> {
    fn source(&self) -> StoreSource<'_> {
        let reservations = Arc::new(Mutex::new(Vec::new()));
        StoreSource {
            state: self.state,
            tenant: self.tenant,
            ctx: QueryContext::new(self.state.limits.default_timeout).holding(reservations.clone()),
            reservations,
        }
    }

    /// The metrics a names-only selector selects.
    async fn metrics_of(&self, vs: &VectorSelector) -> Result<Vec<String>, PromError> {
        let matchers = luminate_promql::select::matchers(vs);
        Ok(self
            .state
            .store
            .metric_names(self.tenant)
            .await?
            .into_iter()
            .filter(|name| matchers.iter().all(|m| m.is_match(name)))
            .collect())
    }

    /// The series (labels) each selector selects in `[start, end]`.
    async fn series_of(
        &self,
        selectors: &[VectorSelector],
    ) -> Result<BTreeSet<luminate_promql::Labels>, PromError> {
        let start = self.params.time("start", 0)?;
        let end = self.params.time("end", now_ms())?;
        let source = self.source();
        let mut budget = MAX_SAMPLES;
        let mut out = BTreeSet::new();
        for vs in selectors {
            let series = tokio::time::timeout(
                source.ctx.remaining(),
                luminate_promql::select::select(&source, vs, start, end, &mut budget),
            )
            .await
            .map_err(|_| PromError::Timeout("query timed out in series selection".into()))??;
            out.extend(series.into_iter().map(|s| s.labels));
        }
        Ok(out)
    }
}

async fn read(state: &AppState, request: Request) -> Result<Params, PromError> {
    Params::read(request, state.config.server.read_timeout).await
}

/// `GET|POST api/v1/labels`.
#[utoipa::path(
    method(get, post),
    path = "/prometheus/api/v1/labels",
    operation_id = "promLabels",
    tag = "prometheus",
    summary = "Label names",
    params(("match[]" = Option<Vec<String>>, Query, explode = true, description = "Series selectors; repeatable."), ("start" = Option<String>, Query, description = "Unix seconds or RFC 3339."), ("end" = Option<String>, Query, description = "Unix seconds or RFC 3339."), ("limit" = Option<String>, Query, description = "At most this many.")),
    request_body(content((crate::openapi::schemas::PromForm = "application/x-www-form-urlencoded")), description = "`POST`: the parameters as a form, instead of or besides the query string."),
    responses(
        (status = 200, description = "Prometheus' success envelope.", body = crate::openapi::schemas::PromSuccess),
        (status = 400, description = "`bad_data`: a parameter or the expression is wrong or outside the subset.", body = crate::openapi::schemas::PromFailure),
        (status = 422, description = "`execution`: a valid query that cannot be answered.", body = crate::openapi::schemas::PromFailure),
        (status = 503, description = "`timeout` or `unavailable` (Prometheus' envelope); or the guard's `STORAGE_UNAVAILABLE`.", content(
            (crate::openapi::schemas::PromFailure = "application/json"),
        )),
    ),
    security(("bearer" = ["read"]), ("basic" = ["read"])),
)]
pub async fn labels(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, PromError> {
    let req = Discovery {
        params: read(&state, request).await?,
        state: &state,
        tenant: &tenant,
    };
    let selectors = selectors(&req.params)?;
    let mut names = BTreeSet::new();
    if selectors.iter().all(names_only) {
        let metrics = if selectors.is_empty() {
            state.store.metric_names(&tenant).await?
        } else {
            let mut all = BTreeSet::new();
            for vs in &selectors {
                all.extend(req.metrics_of(vs).await?);
            }
            all.into_iter().collect()
        };
        if !metrics.is_empty() {
            names.insert(METRIC_NAME.to_owned());
        }
        for metric in metrics {
            names.extend(
                state
                    .store
                    .dimension_keys(&tenant, &metric)
                    .await?
                    .unwrap_or_default(),
            );
        }
    } else {
        for labels in req.series_of(&selectors).await? {
            names.extend(labels.pairs().iter().map(|(k, _)| k.clone()));
        }
    }
    Ok(success(&json_strings(names)))
}

/// `GET api/v1/label/<name>/values`.
#[utoipa::path(
    get,
    path = "/prometheus/api/v1/label/{name}/values",
    operation_id = "promLabelValues",
    tag = "prometheus",
    summary = "A label's values",
    params(("name" = String, Path, description = "A label name; `__name__` lists metric names."), ("match[]" = Option<Vec<String>>, Query, explode = true, description = "Series selectors; repeatable."), ("start" = Option<String>, Query, description = "Unix seconds or RFC 3339."), ("end" = Option<String>, Query, description = "Unix seconds or RFC 3339."), ("limit" = Option<String>, Query, description = "At most this many.")),
    responses(
        (status = 200, description = "Prometheus' success envelope.", body = crate::openapi::schemas::PromSuccess),
        (status = 400, description = "`bad_data`: a parameter or the expression is wrong or outside the subset.", body = crate::openapi::schemas::PromFailure),
        (status = 422, description = "`execution`: a valid query that cannot be answered.", body = crate::openapi::schemas::PromFailure),
        (status = 503, description = "`timeout` or `unavailable` (Prometheus' envelope); or the guard's `STORAGE_UNAVAILABLE`.", content(
            (crate::openapi::schemas::PromFailure = "application/json"),
        )),
    ),
    security(("bearer" = ["read"]), ("basic" = ["read"])),
)]
pub async fn label_values(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, PromError> {
    let req = Discovery {
        params: read(&state, request).await?,
        state: &state,
        tenant: &tenant,
    };
    let selectors = selectors(&req.params)?;
    let mut values = BTreeSet::new();
    if selectors.iter().all(names_only) {
        let metrics: Vec<String> = if selectors.is_empty() {
            state.store.metric_names(&tenant).await?
        } else {
            let mut all = BTreeSet::new();
            for vs in &selectors {
                all.extend(req.metrics_of(vs).await?);
            }
            all.into_iter().collect()
        };
        if name == METRIC_NAME {
            values.extend(metrics);
        } else {
            for metric in metrics {
                let listed = state
                    .store
                    .dimension_values(&tenant, &metric, &name, "", MAX_VALUES)
                    .await?
                    .unwrap_or_default();
                values.extend(
                    listed
                        .into_iter()
                        .map(|v| v.value)
                        .filter(|v| !v.is_empty()),
                );
            }
        }
    } else {
        for labels in req.series_of(&selectors).await? {
            let v = labels.get(&name);
            if !v.is_empty() {
                values.insert(v.to_owned());
            }
        }
    }
    Ok(success(&json_strings(values)))
}

/// `GET|POST api/v1/series`: `match[]` (at least one), `start`, `end`, `limit`.
#[utoipa::path(
    method(get, post),
    path = "/prometheus/api/v1/series",
    operation_id = "promSeries",
    tag = "prometheus",
    summary = "Series matching selectors",
    params(("match[]" = Option<Vec<String>>, Query, explode = true, description = "Series selectors; repeatable."), ("start" = Option<String>, Query, description = "Unix seconds or RFC 3339."), ("end" = Option<String>, Query, description = "Unix seconds or RFC 3339."), ("limit" = Option<String>, Query, description = "At most this many.")),
    request_body(content((crate::openapi::schemas::PromForm = "application/x-www-form-urlencoded")), description = "`POST`: the parameters as a form, instead of or besides the query string."),
    responses(
        (status = 200, description = "Prometheus' success envelope.", body = crate::openapi::schemas::PromSuccess),
        (status = 400, description = "`bad_data`: a parameter or the expression is wrong or outside the subset.", body = crate::openapi::schemas::PromFailure),
        (status = 422, description = "`execution`: a valid query that cannot be answered.", body = crate::openapi::schemas::PromFailure),
        (status = 503, description = "`timeout` or `unavailable` (Prometheus' envelope); or the guard's `STORAGE_UNAVAILABLE`.", content(
            (crate::openapi::schemas::PromFailure = "application/json"),
        )),
    ),
    security(("bearer" = ["read"]), ("basic" = ["read"])),
)]
pub async fn series(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, PromError> {
    let req = Discovery {
        params: read(&state, request).await?,
        state: &state,
        tenant: &tenant,
    };
    let selectors = selectors(&req.params)?;
    if selectors.is_empty() {
        return Err(PromError::BadData("no match[] parameter provided".into()));
    }
    let limit = limit(&req.params)?;
    let series = req.series_of(&selectors).await?;
    let mut out = String::from("[");
    for (i, labels) in series.iter().take(limit).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let map: serde_json::Map<String, serde_json::Value> = labels
            .pairs()
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        out.push_str(&serde_json::Value::Object(map).to_string());
    }
    out.push(']');
    Ok(success(&out))
}

/// The `limit` parameter: `0` or absent is no limit.
fn limit(params: &Params) -> Result<usize, PromError> {
    match params.get("limit") {
        None | Some("") => Ok(usize::MAX),
        Some(text) => match text.parse::<usize>() {
            Ok(0) => Ok(usize::MAX),
            Ok(n) => Ok(n),
            Err(_) => Err(PromError::BadData(format!(
                "invalid parameter \"limit\": cannot parse \"{text}\" to a valid limit"
            ))),
        },
    }
}

/// `GET api/v1/metadata`: every metric (or `metric`), with type `unknown` (Luminate keeps no types nor
/// help texts), at most `limit`.
#[utoipa::path(
    get,
    path = "/prometheus/api/v1/metadata",
    operation_id = "promMetadata",
    tag = "prometheus",
    summary = "Metric metadata (type `unknown`)",
    params(("metric" = Option<String>, Query, description = "Only this metric."), ("limit" = Option<String>, Query, description = "At most this many.")),
    responses(
        (status = 200, description = "Prometheus' success envelope.", body = crate::openapi::schemas::PromSuccess),
        (status = 400, description = "`bad_data`: a parameter or the expression is wrong or outside the subset.", body = crate::openapi::schemas::PromFailure),
        (status = 422, description = "`execution`: a valid query that cannot be answered.", body = crate::openapi::schemas::PromFailure),
        (status = 503, description = "`timeout` or `unavailable` (Prometheus' envelope); or the guard's `STORAGE_UNAVAILABLE`.", content(
            (crate::openapi::schemas::PromFailure = "application/json"),
        )),
    ),
    security(("bearer" = ["read"]), ("basic" = ["read"])),
)]
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, PromError> {
    let params = read(&state, request).await?;
    let limit = limit(&params)?;
    let only = params.get("metric").filter(|m| !m.is_empty());
    let names = state.store.metric_names(&tenant).await?;
    let mut data = serde_json::Map::new();
    for name in names
        .into_iter()
        .filter(|n| only.is_none_or(|m| m == n))
        .take(limit)
    {
        data.insert(
            name,
            serde_json::json!([{"type": "unknown", "help": "", "unit": ""}]),
        );
    }
    Ok(success(&serde_json::Value::Object(data).to_string()))
}

/// `GET|POST api/v1/query_exemplars`: Luminate stores no exemplars.
#[utoipa::path(
    method(get, post),
    path = "/prometheus/api/v1/query_exemplars",
    operation_id = "promExemplars",
    tag = "prometheus",
    summary = "Exemplars (none are stored)",
    request_body(content((crate::openapi::schemas::PromForm = "application/x-www-form-urlencoded")), description = "`POST`: the parameters as a form, instead of or besides the query string."),
    responses(
        (status = 200, description = "Prometheus' success envelope.", body = crate::openapi::schemas::PromSuccess),
    ),
    security(("bearer" = ["read"]), ("basic" = ["read"])),
)]
pub async fn exemplars() -> Response {
    success("[]")
}

/// `GET api/v1/status/buildinfo`. The version is the Prometheus API level this serves: Grafana chooses
/// the features it uses by it.
#[utoipa::path(
    get,
    path = "/prometheus/api/v1/status/buildinfo",
    operation_id = "promBuildinfo",
    tag = "prometheus",
    summary = "Build information (the Prometheus API level served)",
    responses(
        (status = 200, description = "Prometheus' success envelope.", body = crate::openapi::schemas::PromSuccess),
    ),
    security(("bearer" = ["read"]), ("basic" = ["read"])),
)]
pub async fn buildinfo() -> Response {
    let data = serde_json::json!({
        "version": "2.42.0",
        "revision": concat!("luminate-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    });
    success(&data.to_string())
}
