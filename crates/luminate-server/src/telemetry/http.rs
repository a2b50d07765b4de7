//! The HTTP layer's metrics: requests by route template, status and tenant, their durations and sizes,
//! and the requests in flight, recorded by the [`record_http`] middleware.

use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use luminate_model::Tenant;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::{
    HistogramFamily, NO_TENANT, Registrar, Telemetry, UNMATCHED_ROUTE, duration_histogram,
    histograms, size_histogram,
};

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

/// The HTTP layer's metric handles.
#[derive(Debug, Clone)]
pub(crate) struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily<RouteLabels>,
    request_sizes: HistogramFamily<RouteLabels>,
    response_sizes: HistogramFamily<RouteLabels>,
    in_flight: Gauge,
}

impl HttpMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> Self {
        Self {
            requests: r.add(
                "http_requests",
                "HTTP requests answered, by method, route template, status and tenant",
                &["method", "route", "status", "tenant"],
                Family::default(),
            ),
            durations: r.add(
                "http_request_duration_seconds",
                "Time from receiving a request's head to producing its response, by method and route template",
                &["method", "route"],
                histograms(duration_histogram),
            ),
            request_sizes: r.add(
                "http_request_size_bytes",
                "Size of request bodies as sent (Content-Length, before any gzip is inflated), by method and route template",
                &["method", "route"],
                histograms(size_histogram),
            ),
            response_sizes: r.add(
                "http_response_size_bytes",
                "Size of response bodies, by method and route template",
                &["method", "route"],
                histograms(size_histogram),
            ),
            in_flight: r.add(
                "http_requests_in_flight",
                "HTTP requests being handled",
                &[],
                Gauge::default(),
            ),
        }
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

/// The middleware that counts, times and sizes every request. Installed with `Router::layer`, which
/// wraps each route (and the fallback) after routing, so the matched template is in the extensions.
/// The tenant comes back in the response's extensions, put there by the route guard.
pub async fn record_http(
    State(telemetry): State<Telemetry>,
    request: Request,
    next: Next,
) -> Response {
    let metrics = &telemetry.http;
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    // A body without a length (chunked) is not measured: reading it here would buffer it twice.
    let request_size = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| request.body().size_hint().exact());
    metrics.in_flight.inc();
    let in_flight = InFlight(metrics.in_flight.clone());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    drop(in_flight);
    let tenant = response
        .extensions()
        .get::<Tenant>()
        .map_or_else(|| NO_TENANT.to_owned(), |t| telemetry.tenant_label(t));
    let labels = RouteLabels { method, route };
    metrics.durations.get_or_create(&labels).observe(elapsed);
    if let Some(size) = request_size {
        metrics
            .request_sizes
            .get_or_create(&labels)
            .observe(size as f64);
    }
    if let Some(size) = response.body().size_hint().exact() {
        metrics
            .response_sizes
            .get_or_create(&labels)
            .observe(size as f64);
    }
    telemetry
        .totals
        .request(response.status().is_server_error());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: labels.route,
            status: response.status().as_u16(),
            tenant,
        })
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;
    use crate::telemetry::tests::{exposition, label_values};
    use crate::telemetry::{OTHER_TENANT, Registry};

    #[tokio::test]
    async fn requests_are_labelled_by_template_and_tenants_and_paths_stay_bounded() {
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
        let text = exposition(&registry);
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
        assert!(tenants.contains(OTHER_TENANT));
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

    #[tokio::test]
    async fn request_and_response_bodies_are_sized() {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 10);
        let app = Router::new()
            .route(
                "/echo",
                post(|body: axum::body::Bytes| async move { body.repeat(3) }),
            )
            .layer(axum::middleware::from_fn_with_state(
                telemetry.clone(),
                record_http,
            ));
        for size in [10usize, 100, 5_000] {
            let request = axum::http::Request::post("/echo")
                .header(header::CONTENT_LENGTH, size)
                .body(Body::from(vec![b'x'; size]))
                .unwrap();
            assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 200);
        }
        let text = exposition(&registry);
        for line in [
            "luminate_http_request_size_bytes_sum{method=\"POST\",route=\"/echo\"} 5110.0",
            "luminate_http_request_size_bytes_count{method=\"POST\",route=\"/echo\"} 3",
            "luminate_http_request_size_bytes_bucket{le=\"64.0\",method=\"POST\",route=\"/echo\"} 1",
            "luminate_http_request_size_bytes_bucket{le=\"256.0\",method=\"POST\",route=\"/echo\"} 2",
            "luminate_http_response_size_bytes_sum{method=\"POST\",route=\"/echo\"} 15330.0",
            "luminate_http_response_size_bytes_bucket{le=\"16384.0\",method=\"POST\",route=\"/echo\"} 3",
            "luminate_http_response_size_bytes_bucket{le=\"4096.0\",method=\"POST\",route=\"/echo\"} 2",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
