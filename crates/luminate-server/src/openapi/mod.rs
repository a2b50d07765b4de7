//! The OpenAPI 3.1 description of the HTTP API, served at [`PATH`] without authentication (it describes
//! routes and shapes, holds no data, and clients and tools fetch it before they have a token — as they
//! reach health). It is generated from the code: each handler carries a `#[utoipa::path]` attribute
//! (method, path, parameters, bodies, answers, scope), the JSON bodies' schemas come from the model's
//! types (`luminate-model`'s `openapi` feature) or, for bodies the handlers build with `json!`, from
//! [`schemas`]. This module assembles them and adds what every route shares — the security schemes,
//! the guard's refusals (`401`, `403`, `429`, `503`) and each route's scope in its description — so the
//! attributes on the handlers state only what is particular to them.
//!
//! The document follows the running configuration: the exposition is listed at `metrics.path`, and
//! not at all when `metrics.enabled` is false or it is served on `metrics.listen`. A test derives the
//! router's (method, path) pairs from the router itself and requires them to equal the document's
//! ([`tests`]), so a route without documentation fails CI; the schemathesis test
//! (`crates/luminate/tests/openapi.rs`) checks the real server's answers against it.

pub mod schemas;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::app::AppState;
use crate::config::Config;

/// Where the document is served.
pub const PATH: &str = "/api/v1/openapi.json";

/// Where the handlers' attributes put the exposition; [`document`] moves it to `metrics.path`.
const EXPOSITION_PATH: &str = "/metrics";

/// The generated part: every handler's operation and the named schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Luminate",
        description = "Luminate's HTTP API: JSON write and query, discovery, dashboards, admin, \
            health and self-metrics; Prometheus remote write, OTLP/HTTP metrics and Prometheus' query \
            API. Errors of the JSON API are `{\"error\": {\"code\", \"message\", \"details\"}}`; the \
            Prometheus API answers in Prometheus' envelope. See docs/api.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        crate::routes::write::handle,
        crate::routes::otlp::handle,
        crate::routes::query::handle,
        crate::routes::export::handle,
        crate::routes::metrics::list,
        crate::routes::metrics::dimensions,
        crate::routes::metrics::values,
        crate::routes::cardinality::handle,
        crate::routes::dashboards::list,
        crate::routes::dashboards::create,
        crate::routes::dashboards::export,
        crate::routes::dashboards::replace,
        crate::routes::dashboards::delete,
        crate::routes::admin::delete_before,
        crate::routes::admin::set_retention,
        crate::routes::admin::flush,
        crate::routes::backup::create,
        crate::routes::backup::list,
        crate::routes::backup::delete,
        crate::routes::backup::file,
        crate::routes::status::overview,
        crate::routes::health::handle,
        crate::routes::health::live,
        crate::routes::exposition::on_api_address,
        crate::routes::prometheus::query::instant,
        crate::routes::prometheus::query::range,
        crate::routes::prometheus::discovery::labels,
        crate::routes::prometheus::discovery::label_values,
        crate::routes::prometheus::discovery::series,
        crate::routes::prometheus::discovery::metadata,
        crate::routes::prometheus::discovery::exemplars,
        crate::routes::prometheus::discovery::buildinfo,
        serve,
    ),
    components(schemas(schemas::ErrorBody)),
    tags(
        (name = "write", description = "JSON points, Prometheus remote write, OTLP/HTTP metrics."),
        (name = "query", description = "The JSON query language (CONTRACT §4)."),
        (name = "discovery", description = "Metric names, dimension keys and values, cardinality."),
        (name = "dashboards", description = "The tenant's dashboards (docs/dashboards.md)."),
        (name = "admin", description = "Deletes, retention, flush, backups and the status overview."),
        (name = "prometheus", description = "The read half of Prometheus' HTTP API (docs/grafana.md)."),
        (name = "operations", description = "Health, self-metrics, and this document."),
    )
)]
struct ApiDoc;

/// The document for `config`, as JSON.
pub fn document(config: &Config) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    add_shared_components(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            split_shared_operation(item);
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                add_guard_answers(operation);
            }
        }
        let exposition = paths.remove(EXPOSITION_PATH);
        let metrics = &config.metrics;
        if let Some(exposition) = exposition
            && metrics.enabled
            && metrics.listen.is_none()
        {
            paths.insert(metrics.path.clone(), exposition);
        }
    }
    doc
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1).", content_type = "application/json", body = Object)),
)]
pub async fn serve(State(state): State<Arc<AppState>>) -> Response {
    // Built per request (about a millisecond): it is fetched rarely, and a cache would have to be keyed
    // by the configuration.
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document(&state.config).to_string(),
    )
        .into_response()
}

/// The security schemes and the guard's answers, which operations refer to.
fn add_shared_components(doc: &mut Value) {
    let Some(root) = doc.as_object_mut() else {
        return;
    };
    let components = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(components) = components else {
        return;
    };
    components.insert(
        "securitySchemes".into(),
        json!({
            "bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A JWT whose `tenant_id` claim names the tenant and whose `scopes` include the \
                    route's (`read`, `write`, `admin`): docs/configuration.md#authentication. Without \
                    `auth.enabled` no token is needed and every request is tenant `default`."
            },
            "basic": {
                "type": "http", "scheme": "basic",
                "description": "The Prometheus API only (Grafana's datasource offers it): any user name, \
                    the JWT as password."
            },
            "metricsToken": {
                "type": "http", "scheme": "bearer",
                "description": "`metrics.bearer_token`, not a JWT: docs/monitoring.md#who-may-scrape."
            }
        }),
    );
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    let header =
        |description: &str| json!({"description": description, "schema": {"type": "string"}});
    components.insert(
        "responses".into(),
        json!({
            "Unauthorized": {
                "description": "`UNAUTHORIZED`: no token, or one that is malformed, badly signed, expired, \
                    of another algorithm family, or without a valid `tenant_id`.",
                "headers": {"WWW-Authenticate": header("`Bearer realm=\"luminate\"`, with `error=\"invalid_token\"` for a bad token.")},
                "content": error.clone()
            },
            "Forbidden": {
                "description": "`FORBIDDEN`: the token lacks the route's scope (`details.required_scope`).",
                "headers": {"WWW-Authenticate": header("`Bearer realm=\"luminate\", error=\"insufficient_scope\", scope=\"…\"`.")},
                "content": error.clone()
            },
            "RateLimited": {
                "description": "`RATE_LIMIT_EXCEEDED`: the tenant is over one of its rate limits \
                    (`details`: `limit`, `value`, `retry_after_seconds`).",
                "headers": {
                    "Retry-After": header("Seconds to wait."),
                    "X-RateLimit-Limit": header("The bucket's rate."),
                    "X-RateLimit-Remaining": header("Tokens left."),
                    "X-RateLimit-Reset": header("Unix seconds when the bucket is full again.")
                },
                "content": error.clone()
            },
            "Unavailable": {
                "description": "`STORAGE_UNAVAILABLE`: the storage cannot serve now, or gave no answer \
                    within `server.write_timeout`.",
                "content": error
            }
        }),
    );
}

/// One handler documented for several methods (`method(get, post)`: Prometheus' form `POST`s) gives
/// each the same operation: the `GET` sends no body, and every method but the first gets an
/// `operationId` of its own (`promQueryPost`), since operation ids must be unique.
fn split_shared_operation(item: &mut Map<String, Value>) {
    let mut seen = Vec::new();
    for (method, operation) in item.iter_mut() {
        let Some(operation) = operation.as_object_mut() else {
            continue;
        };
        if method == "get" {
            operation.remove("requestBody");
        }
        let Some(id) = operation.get("operationId").and_then(Value::as_str) else {
            continue;
        };
        if seen.iter().any(|s: &String| s == id) {
            let mut suffixed = id.to_owned();
            let mut chars = method.chars();
            suffixed.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            suffixed.push_str(chars.as_str());
            operation.insert("operationId".into(), Value::String(suffixed));
        } else {
            seen.push(id.to_owned());
        }
    }
}

/// For an operation behind the route guard (one with a security requirement): its scope in the
/// description, and the guard's refusals among its answers unless the operation documents its own.
fn add_guard_answers(operation: &mut Map<String, Value>) {
    let mut scopes: Vec<String> = operation
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|scope| scope.as_str().map(str::to_owned))
        .collect();
    scopes.dedup();
    let [scope] = scopes.as_slice() else {
        return;
    };
    let line = format!("Scope: `{scope}` (with `auth.enabled`).");
    let description = match operation.get("description").and_then(Value::as_str) {
        Some(text) if !text.is_empty() => format!("{text}\n\n{line}"),
        _ => line,
    };
    operation.insert("description".into(), Value::String(description));
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, name) in [
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("429", "RateLimited"),
        ("503", "Unavailable"),
    ] {
        responses
            .entry(status)
            .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
    }
}

#[cfg(test)]
mod tests;
