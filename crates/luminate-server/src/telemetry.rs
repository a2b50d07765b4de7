//! Luminate's own metrics (issue 6): their definitions, registration on a [`Registry`] the caller
//! passes in (no global), the HTTP middleware that records every request, and the tenant label's cap.
//! Owns no route: the exposition is served by `crate::routes::exposition`.
//!
//! Every name starts with `luminate_` (the sub-registry's prefix) and every label is bounded:
//! - `route` is the matched route template (`/api/v1/metrics/{name}/dimensions`), never a raw path;
//!   requests no route matched are `unmatched`.
//! - `method` is one of the standard methods, anything else `other`.
//! - `tenant` is the request's tenant once the route guard resolved it; the first
//!   `metrics.max_tenant_labels` distinct tenants keep their id, later ones are `other`. A request with
//!   no tenant (health, the exposition, an unauthenticated or unmatched request) is `-`, which no tenant
//!   id can be (ids never start with `-`). A tenant really named `other` shares its label with the
//!   folded ones.
//! - `reason` is a contract error code, `limit` a `rate_limits` key.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use luminate_model::{ErrorCode, Tenant};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

/// Prefix of every metric name.
pub const PREFIX: &str = "luminate";

/// The `route` of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `tenant` of tenants past `metrics.max_tenant_labels`.
pub const OTHER_TENANT: &str = "other";

/// The `tenant` of requests that have none (health, the exposition, refused before authentication).
pub const NO_TENANT: &str = "-";

/// Upper bounds of the request duration histogram, in seconds: 0.5 ms to 30 s (the default
/// `server.write_timeout` and `query_limits.max_query_timeout`).
pub const DURATION_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The compiler that built this binary (`rustc 1.x.y (...)`), recorded by `build.rs`.
const RUSTC_VERSION: &str = env!("LUMINATE_RUSTC_VERSION");

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    rustc: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
    tenant: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RejectionLabels {
    tenant: String,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabels {
    tenant: String,
    limit: &'static str,
}

/// The handles of every metric; cheap to clone (each family is shared).
#[derive(Debug, Clone)]
pub struct Telemetry {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    in_flight: Gauge,
    points_ingested: Family<TenantLabels, Counter>,
    points_rejected: Family<RejectionLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    tenants: Arc<TenantLabelCap>,
}

impl Telemetry {
    /// Registers every metric under `luminate_` on `registry`, with at most `max_tenant_labels` tenant
    /// label values (plus `other` and `-`).
    pub fn register(registry: &mut Registry, max_tenant_labels: usize) -> Self {
        let registry = registry.sub_registry_with_prefix(PREFIX);
        let up: Gauge = Gauge::default();
        up.set(1);
        registry.register("up", "1 while this Luminate process serves", up);
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                rustc: RUSTC_VERSION,
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the labels give the version and the compiler that built it",
            build,
        );

        let telemetry = Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(|| {
                Histogram::new(DURATION_BUCKETS.iter().copied())
            }),
            in_flight: Gauge::default(),
            points_ingested: Family::default(),
            points_rejected: Family::default(),
            rate_limited: Family::default(),
            tenants: Arc::new(TenantLabelCap::new(max_tenant_labels)),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template, status and tenant",
            telemetry.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request's head to producing its response, by method and route template",
            telemetry.durations.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled",
            telemetry.in_flight.clone(),
        );
        registry.register(
            "points_ingested",
            "Points stored by the write route, by tenant",
            telemetry.points_ingested.clone(),
        );
        registry.register(
            "points_rejected",
            "Points the write route reported as rejected, by tenant and error code",
            telemetry.points_rejected.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429 RATE_LIMIT_EXCEEDED, by tenant and rate_limits key",
            telemetry.rate_limited.clone(),
        );
        telemetry
    }

    /// `n` points of `tenant` stored.
    pub fn points_ingested(&self, tenant: &Tenant, n: u64) {
        if n > 0 {
            self.points_ingested
                .get_or_create(&TenantLabels {
                    tenant: self.tenants.label(tenant),
                })
                .inc_by(n);
        }
    }

    /// One point of `tenant` rejected with `code`.
    pub fn point_rejected(&self, tenant: &Tenant, code: ErrorCode) {
        self.points_rejected
            .get_or_create(&RejectionLabels {
                tenant: self.tenants.label(tenant),
                reason: code.as_str(),
            })
            .inc();
    }

    /// A `429` for `tenant` from the `rate_limits` key `limit`.
    pub fn rate_limited(&self, tenant: &Tenant, limit: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels {
                tenant: self.tenants.label(tenant),
                limit,
            })
            .inc();
    }
}

/// The tenant label's cap: remembers the first `max` tenants seen; every later one is `other`.
#[derive(Debug)]
struct TenantLabelCap {
    max: usize,
    /// A std mutex: nothing is awaited while it is held, and it is held for one set lookup.
    labelled: Mutex<HashSet<Tenant>>,
}

impl TenantLabelCap {
    fn new(max: usize) -> Self {
        Self {
            max,
            labelled: Mutex::new(HashSet::new()),
        }
    }

    fn label(&self, tenant: &Tenant) -> String {
        let mut labelled = self.labelled.lock().unwrap_or_else(|e| e.into_inner());
        if labelled.contains(tenant) {
            return tenant.to_string();
        }
        if labelled.len() < self.max {
            labelled.insert(tenant.clone());
            return tenant.to_string();
        }
        OTHER_TENANT.to_owned()
    }
}

/// A standard method's name, anything else `other`: a client must not be able to mint label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Decrements the in-flight gauge when the request ends, also when its future is dropped.
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The middleware that counts and times every request. Installed with `Router::layer`, which wraps
/// each route (and the fallback) after routing, so the matched template is in the extensions. The
/// tenant comes back in the response's extensions, put there by the route guard.
pub async fn record_http(
    State(telemetry): State<Telemetry>,
    request: Request,
    next: Next,
) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    telemetry.in_flight.inc();
    let in_flight = InFlight(telemetry.in_flight.clone());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    drop(in_flight);
    let tenant = response
        .extensions()
        .get::<Tenant>()
        .map_or_else(|| NO_TENANT.to_owned(), |t| telemetry.tenants.label(t));
    telemetry
        .durations
        .get_or_create(&RouteLabels {
            method,
            route: route.clone(),
        })
        .observe(elapsed);
    telemetry
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
            tenant,
        })
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_labels_stop_growing_at_the_cap() {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 100);
        for i in 0..5_000 {
            let tenant = Tenant::new(format!("tenant-{i}"));
            telemetry.points_ingested(&tenant, 1);
            telemetry.point_rejected(&tenant, ErrorCode::InvalidValue);
            telemetry.rate_limited(&tenant, "write_requests_per_second");
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let tenants = label_values(&text, "luminate_points_ingested_total", "tenant");
        assert_eq!(tenants.len(), 101);
        assert!(tenants.contains(OTHER_TENANT));
        assert!(tenants.contains("tenant-0") && tenants.contains("tenant-99"));
        assert!(!tenants.contains("tenant-100"));
        let other = format!("luminate_points_ingested_total{{tenant=\"{OTHER_TENANT}\"}} 4900");
        assert!(text.contains(&other), "{text}");
        assert_eq!(
            label_values(&text, "luminate_points_rejected_total", "tenant").len(),
            101
        );
        assert_eq!(
            label_values(&text, "luminate_rate_limited_total", "tenant").len(),
            101
        );
    }

    /// The distinct values of `label` among the samples of `metric` in an exposition.
    fn label_values(text: &str, metric: &str, label: &str) -> HashSet<String> {
        let prefix = format!("{metric}{{");
        let key = format!("{label}=\"");
        text.lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|rest| {
                let start = rest.find(&key)? + key.len();
                let end = rest[start..].find('"')? + start;
                Some(rest[start..end].to_owned())
            })
            .collect()
    }

    #[tokio::test]
    async fn requests_are_labelled_by_template_and_tenants_and_paths_stay_bounded() {
        use axum::Router;
        use axum::body::Body;
        use axum::routing::get;
        use tower::ServiceExt;

        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 10);
        // A stand-in for the route guard: the tenant comes from a header and goes back in the response.
        let handler = |request: Request| async move {
            let tenant = request
                .headers()
                .get("x-tenant")
                .and_then(|v| v.to_str().ok())
                .map(Tenant::new);
            let mut response = Response::new(Body::empty());
            if let Some(t) = tenant {
                response.extensions_mut().insert(t);
            }
            response
        };
        let app = Router::new()
            .route("/api/v1/metrics/{name}/dimensions", get(handler))
            .layer(axum::middleware::from_fn_with_state(
                telemetry.clone(),
                record_http,
            ));
        for i in 0..2_000 {
            let known = axum::http::Request::get(format!("/api/v1/metrics/m{i}/dimensions"))
                .header("x-tenant", format!("t{i}"))
                .body(Body::empty())
                .unwrap();
            assert_eq!(app.clone().oneshot(known).await.unwrap().status(), 200);
            let unknown = axum::http::Request::get(format!("/random/{i}/path-{}", i * 7919))
                .body(Body::empty())
                .unwrap();
            assert_eq!(app.clone().oneshot(unknown).await.unwrap().status(), 404);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let routes = label_values(&text, "luminate_http_requests_total", "route");
        let expected: HashSet<String> = ["/api/v1/metrics/{name}/dimensions", UNMATCHED_ROUTE]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(routes, expected);
        let tenants = label_values(&text, "luminate_http_requests_total", "tenant");
        assert_eq!(
            tenants.len(),
            10 + 1 + 1,
            "ten tenants, other, and - : {tenants:?}"
        );
        assert!(text.contains(
            "luminate_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\",tenant=\"-\"} 2000"
        ), "{text}");
        assert!(text.contains(
            "luminate_http_requests_total{method=\"GET\",route=\"/api/v1/metrics/{name}/dimensions\",status=\"200\",tenant=\"other\"} 1990"
        ), "{text}");
        assert!(text.contains(
            "luminate_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\"} 2000"
        ), "{text}");
        assert!(
            text.contains("luminate_http_requests_in_flight 0"),
            "{text}"
        );
    }
}
