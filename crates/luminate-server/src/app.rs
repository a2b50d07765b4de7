//! The application: shared state, the router with its layers, and the server's lifecycle (bind, serve,
//! graceful shutdown, close the store). The connections below the router — their cap, timeouts and the
//! requests refused before routing — are [`crate::conn`]'s.
//!
//! Layers, outermost first: request id (`x-request-id`, kept from the client or assigned) and tracing;
//! self-metrics ([`crate::telemetry::record_http`], which sees the matched route template); the route
//! guard — authentication, the route's scope, the tenant's request bucket and, for queries, its
//! concurrency slot (see [`guard`]; a query then reserves its memory from the server's budget itself:
//! [`crate::query_memory`]); a response deadline (`server.write_timeout`) on every route but the
//! query, which has its own timeout, and the export, which streams for as long as it takes within
//! its own bounds ([`routes::export`]); then the handler, which bounds its own body. Health and the
//! metrics exposition (`metrics.path`) have no guard and no rate limit; the exposition decides who may
//! scrape itself (`metrics.bearer_token`; closed on the API's address with auth on and no token: see
//! [`crate::auth::ScrapeAccess`]), and is served on `metrics.listen` instead when that is set. The web
//! UI's static files ([`crate::ui`], `GET /` and `/ui/…`) have no guard either. Prometheus' query API
//! ([`routes::prometheus`]) has the same guards, with Basic auth turned into a bearer token before them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use luminate_model::dashboard::DashboardStore;
use luminate_model::{ErrorCode, MetricsStore, QueryLimits, StoreError, ValidationRules};
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::auth::{Authenticator, KeyError, Principal, Scope};
use crate::config::Config;
use crate::conn::ConnectionLimits;
use crate::error::{ApiError, method_not_allowed, route_not_found};
use crate::idempotency::IdempotencyCache;
use crate::limits::{Bucket, RateLimiter};
use crate::query_memory::QueryMemory;
use crate::routes;
use crate::routes::remote_write::{is_remote_write, retryable};
use crate::storage::dashboards::NoDashboards;
use crate::storage::{OpenError, OpenedStore, build_store};
use crate::telemetry::Telemetry;
use crate::telemetry::collector::{Collector, CollectorConfig};
use crate::telemetry::storage::InstrumentedStore;

/// What every handler shares.
pub struct AppState {
    /// The backend.
    pub store: Arc<dyn MetricsStore>,
    /// Where the backend keeps dashboards.
    pub dashboards: Arc<dyn DashboardStore>,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Derived once from `config`: per-point validation.
    pub rules: ValidationRules,
    /// Derived once from `config`: query limits.
    pub limits: QueryLimits,
    /// Write retries by `Idempotency-Key`.
    pub idempotency: IdempotencyCache,
    /// For `uptime_seconds`.
    pub started: Instant,
    /// Wakes the retention task after an admin changes a retention.
    pub retention_wakeup: Arc<Notify>,
    /// Token verification; `None` when `auth.enabled` is false (every request is tenant `default`).
    pub auth: Option<Authenticator>,
    /// Per-tenant rate limits.
    pub rate_limiter: RateLimiter,
    /// The server-wide budget of query memory.
    pub query_memory: QueryMemory,
    /// Self-metrics handles, shared by the middleware, the write route and the rate limiter.
    pub telemetry: Telemetry,
    /// What the exposition encodes: every metric registered by this process.
    pub registry: Registry,
    /// The backup snapshots held for `luminate backup` ([`routes::backup`]).
    pub backups: routes::backup::Snapshots,
    /// The exports running now (`POST /api/v1/export`), bounded per tenant and server.
    pub exports: routes::export::ExportSlots,
}

impl AppState {
    /// State for `config` over `store`, registering the server's metrics on `registry` (the binary's,
    /// which other components may have registered on too); fails when the auth key cannot be read.
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn MetricsStore>,
        mut registry: Registry,
    ) -> Result<Self, KeyError> {
        let telemetry = Telemetry::register(&mut registry, config.metrics.max_tenant_labels);
        Self::with_telemetry(config, store, registry, telemetry)
    }

    /// State whose metrics are already registered on `registry` as `telemetry`.
    pub fn with_telemetry(
        config: Arc<Config>,
        store: Arc<dyn MetricsStore>,
        registry: Registry,
        telemetry: Telemetry,
    ) -> Result<Self, KeyError> {
        let auth = if config.auth.enabled {
            Some(Authenticator::from_config(&config.auth)?)
        } else {
            None
        };
        Ok(Self {
            auth,
            rate_limiter: RateLimiter::from_config(&config, telemetry.clone()),
            query_memory: QueryMemory::new(config.query_limits.memory_budget_bytes, &telemetry),
            telemetry,
            registry,
            exports: routes::export::ExportSlots::default(),
            rules: config.validation_rules(),
            limits: config.query_limits(),
            idempotency: IdempotencyCache::new(
                config.batch_write.idempotency_key_ttl,
                config.batch_write.idempotency_max_keys,
            ),
            started: Instant::now(),
            retention_wakeup: Arc::new(Notify::new()),
            backups: routes::backup::Snapshots::default(),
            dashboards: Arc::new(NoDashboards {
                backend: store.backend_name(),
            }),
            store,
            config,
        })
    }

    /// The same state, keeping dashboards in `dashboards` (without: every dashboard route is `503`).
    pub fn with_dashboards(mut self, dashboards: Arc<dyn DashboardStore>) -> Self {
        self.dashboards = dashboards;
        self
    }
}

/// What a route needs: its scope, and which of the tenant's buckets it draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteClass {
    /// `POST /api/v1/write`, and changing dashboards.
    Write,
    /// `POST /api/v1/query`: `read`, a query token and a concurrency slot.
    Query,
    /// Discovery, cardinality, and viewing dashboards.
    Read,
    /// `/api/v1/admin/*`.
    Admin,
}

impl RouteClass {
    fn scope(self) -> Scope {
        match self {
            Self::Write => Scope::Write,
            Self::Query | Self::Read => Scope::Read,
            Self::Admin => Scope::Admin,
        }
    }

    fn bucket(self) -> Bucket {
        match self {
            Self::Write | Self::Admin => Bucket::WriteRequests,
            Self::Query | Self::Read => Bucket::QueryRequests,
        }
    }
}

/// The route guard: who is asking (`401` without a valid token), may they (`403` without the scope),
/// and is their tenant within its request rate (`429`; `503` for remote write and OTLP, which senders
/// retry). Puts the principal's tenant in the request's
/// extensions (handlers read it through [`crate::tenant::RequestTenant`]; a client has no other way
/// to name one) and the bucket's `X-RateLimit-*` headers on the response. Once the tenant is known it
/// also goes in the response's extensions, for the self-metrics layer outside.
async fn guard(
    State((state, class)): State<(Arc<AppState>, RouteClass)>,
    request: Request,
    next: Next,
) -> Response {
    let principal = match &state.auth {
        None => Principal::anonymous(),
        Some(auth) => {
            let header = request.headers().get(axum::http::header::AUTHORIZATION);
            match auth.authenticate(header.map(HeaderValue::as_bytes)) {
                Ok(p) => p,
                Err(e) => return auth_refusal(e),
            }
        }
    };
    let tenant = principal.tenant.clone();
    let mut response = admit(&state, class, principal, request, next).await;
    response.extensions_mut().insert(tenant);
    response
}

/// The guard once the principal is known: scope, request bucket, query slot, then the handler.
async fn admit(
    state: &AppState,
    class: RouteClass,
    principal: Principal,
    mut request: Request,
    next: Next,
) -> Response {
    if let Err(e) = principal.require(class.scope()) {
        return auth_refusal(e);
    }
    let tenant = principal.tenant.clone();
    let snapshot = match state.rate_limiter.check_request(class.bucket(), &tenant) {
        Ok(snapshot) => snapshot,
        // Protocol senders (remote write, OTLP) retry 503, not always 429.
        Err(limited)
            if class == RouteClass::Write
                && (is_remote_write(request.headers())
                    || request.uri().path() == routes::otlp::PATH) =>
        {
            return retryable(limited.into_response());
        }
        Err(limited) => return limited.into_response(),
    };
    // Held until the query's response is built: the slot frees when the work is done or cancelled.
    let _slot = if class == RouteClass::Query {
        match state.rate_limiter.start_query(&tenant) {
            Ok(permit) => permit,
            Err(e) => {
                let mut response = e.into_response();
                if let Some(snapshot) = snapshot {
                    snapshot.apply(response.headers_mut());
                }
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(1u32));
                return response;
            }
        }
    } else {
        None
    };
    request.extensions_mut().insert(tenant);
    // For a handler whose request may ask for more than its route's scope (a write's backfill).
    request.extensions_mut().insert(principal);
    let mut response = next.run(request).await;
    // A handler that charged another bucket (points) has set the headers of that one.
    if let Some(snapshot) = snapshot
        && !response.headers().contains_key(crate::limits::LIMIT_HEADER)
    {
        snapshot.apply(response.headers_mut());
    }
    response
}

/// A `401`/`403` with its `WWW-Authenticate` header (RFC 6750).
pub(crate) fn auth_refusal(error: ApiError) -> Response {
    let challenge = crate::auth::www_authenticate(&error);
    let mut response = error.into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(axum::http::header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Request ids: a per-process prefix (start time) and a counter — unique, cheap, and sortable in logs.
#[derive(Clone)]
struct SequentialRequestId {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl SequentialRequestId {
    fn new() -> Self {
        Self {
            prefix: format!("{:x}", luminate_model::time::now_ms()).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Answers `503` when a handler has not produced a response within `server.write_timeout` (most likely
/// a storage that stopped answering).
async fn response_deadline(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config.server.write_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::StorageUnavailable,
            format!(
                "no response within server.write_timeout of {}",
                luminate_model::time::format_duration(limit)
            ),
        )
        .into_response(),
    }
}

/// The router with every route and layer.
pub fn router(state: Arc<AppState>) -> Router {
    // Answers that are whole JSON bodies go gzipped to clients that take it (`crate::gzip`); the
    // layer is outermost, so refusals by the guards are JSON answers like the others.
    let gzip_answers = || middleware::from_fn(crate::gzip::gzip_answers);
    let guarded = |class: RouteClass, routes: Router<Arc<AppState>>| {
        routes.route_layer(middleware::from_fn_with_state(
            (state.clone(), class),
            guard,
        ))
    };
    let write = guarded(
        RouteClass::Write,
        Router::new()
            .route("/api/v1/write", post(routes::write::handle))
            .route(routes::otlp::PATH, post(routes::otlp::handle)),
    );
    let read = guarded(
        RouteClass::Read,
        Router::new()
            .route("/api/v1/metrics", get(routes::metrics::list))
            .route(
                "/api/v1/metrics/{name}/dimensions",
                get(routes::metrics::dimensions),
            )
            .route(
                "/api/v1/metrics/{name}/dimensions/{key}/values",
                get(routes::metrics::values),
            )
            .route("/api/v1/cardinality", get(routes::cardinality::handle)),
    )
    .route_layer(gzip_answers());
    let admin = guarded(
        RouteClass::Admin,
        Router::new()
            .route(
                "/api/v1/admin/metrics/{name}",
                delete(routes::admin::delete_before),
            )
            .route(
                "/api/v1/admin/retention",
                post(routes::admin::set_retention),
            )
            .route("/api/v1/admin/flush", post(routes::admin::flush))
            .route("/api/v1/status/overview", get(routes::status::overview)),
    );
    // Viewing takes `read`, changing takes `write`: one guard per method of the same path.
    let guard_of =
        |class: RouteClass| middleware::from_fn_with_state((state.clone(), class), guard);
    let dashboards = Router::new()
        .route(
            "/api/v1/dashboards",
            get(routes::dashboards::list)
                .route_layer(guard_of(RouteClass::Read))
                .merge(post(routes::dashboards::create).route_layer(guard_of(RouteClass::Write))),
        )
        .route(
            "/api/v1/dashboards/{id}",
            get(routes::dashboards::export)
                .route_layer(guard_of(RouteClass::Read))
                .merge(
                    put(routes::dashboards::replace)
                        .delete(routes::dashboards::delete)
                        .route_layer(guard_of(RouteClass::Write)),
                ),
        )
        .route_layer(gzip_answers());
    // Prometheus' API: Basic auth is translated outside the guards, so they see a bearer token.
    let basic_auth = || middleware::from_fn(routes::prometheus::basic_auth_as_bearer);
    let prometheus_read = guarded(RouteClass::Read, routes::prometheus::read_routes())
        .route_layer(basic_auth())
        .route_layer(gzip_answers());
    let prometheus_query = guarded(RouteClass::Query, routes::prometheus::query_routes())
        .route_layer(basic_auth())
        .route_layer(gzip_answers());
    let deadline_bound = Router::new()
        .merge(write)
        .merge(prometheus_read)
        .merge(read)
        .merge(admin)
        .merge(dashboards)
        .route("/api/v1/health", get(routes::health::handle))
        // Liveness: no guard either (probes carry no token), and no storage call.
        .route("/api/v1/health/live", get(routes::health::live))
        // No guard, like health: it describes the API and holds no data.
        .route(crate::openapi::PATH, get(crate::openapi::serve))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            response_deadline,
        ));
    let query = guarded(
        RouteClass::Query,
        Router::new().route("/api/v1/query", post(routes::query::handle)),
    )
    .route_layer(gzip_answers());
    // Backups: `admin`, outside the response deadline (a snapshot checksums every file it pins, a
    // download lasts as long as the file takes).
    let backups = guarded(
        RouteClass::Admin,
        Router::new()
            .route(
                "/api/v1/admin/backups",
                post(routes::backup::create).get(routes::backup::list),
            )
            .route("/api/v1/admin/backups/{id}", delete(routes::backup::delete))
            .route(
                "/api/v1/admin/backups/{id}/files/{*path}",
                get(routes::backup::file),
            ),
    );
    // Exports stream for as long as they take: outside the response deadline, bounded by their own
    // slots (`routes::export`).
    let export = guarded(
        RouteClass::Read,
        Router::new().route("/api/v1/export", post(routes::export::handle)),
    );
    // The UI's static files: no guard (they hold no data; the pages' API calls carry the token).
    let mut api = Router::new()
        .merge(backups)
        .merge(query)
        .merge(export)
        .merge(prometheus_query)
        .merge(deadline_bound)
        .merge(crate::ui::routes());
    let metrics = &state.config.metrics;
    if metrics.enabled && metrics.listen.is_none() {
        api = api.route(&metrics.path, get(routes::exposition::on_api_address));
    }
    with_common_layers(api, state)
}

/// The router of `metrics.listen`: the exposition alone.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    let path = state.config.metrics.path.clone();
    with_common_layers(
        Router::new().route(&path, get(routes::exposition::on_metrics_address)),
        state,
    )
}

/// Fallbacks, state, self-metrics (unless `metrics.enabled` is false), tracing and request ids: what
/// every listener's router has.
fn with_common_layers(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    let telemetry = state.telemetry.clone();
    let measured = state.config.metrics.enabled;
    let routes = routes
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    let routes = if measured {
        routes.layer(middleware::from_fn_with_state(
            telemetry,
            crate::telemetry::record_http,
        ))
    } else {
        routes
    };
    routes
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(SequentialRequestId::new()))
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The storage backend did not open.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `host:port` as configured.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The listening socket failed (its bound address could not be read).
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    /// The store could not be flushed at shutdown.
    #[error("closing the store failed: {0}")]
    Close(StoreError),
    /// The auth key could not be used.
    #[error(transparent)]
    Auth(#[from] KeyError),
    /// Protected mode: auth disabled on a network address without the explicit setting.
    #[error("{0}")]
    Unprotected(crate::config::LoadError),
}

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    /// `metrics.listen`, when the exposition has an address of its own.
    metrics_listener: Option<TcpListener>,
    /// OTLP over gRPC (`otlp.grpc`), when enabled.
    #[cfg(feature = "grpc")]
    grpc_listener: Option<TcpListener>,
    state: Arc<AppState>,
    /// Refreshes the expensive gauges while serving (with `metrics.enabled`).
    collector: Collector,
}

impl Server {
    /// Opens the configured store, then binds `server.host:server.port` (and `metrics.listen`). The
    /// store comes first so that a locked data directory fails before the port is taken. The server's
    /// metrics are registered on `registry`.
    pub async fn bind(config: Config, mut registry: Registry) -> Result<Self, ServeError> {
        config.check_exposure().map_err(ServeError::Unprotected)?;
        let telemetry = Telemetry::register(&mut registry, config.metrics.max_tenant_labels);
        let opened = build_store(&config, &telemetry).await?;
        Self::bind_opened(config, opened, registry, telemetry).await
    }

    /// Binds over an already opened store.
    pub async fn bind_with_store(
        config: Config,
        store: Arc<dyn MetricsStore>,
        mut registry: Registry,
    ) -> Result<Self, ServeError> {
        let telemetry = Telemetry::register(&mut registry, config.metrics.max_tenant_labels);
        let opened = OpenedStore {
            dashboards: Arc::new(NoDashboards {
                backend: store.backend_name(),
            }),
            store,
            engine: None,
        };
        Self::bind_opened(config, opened, registry, telemetry).await
    }

    /// Binds over an opened store whose metrics are `telemetry`: every call the server makes to it is
    /// measured ([`InstrumentedStore`]), and the collector reads its gauges directly (its polls are not
    /// the server's work).
    async fn bind_opened(
        config: Config,
        opened: OpenedStore,
        registry: Registry,
        telemetry: Telemetry,
    ) -> Result<Self, ServeError> {
        config.check_exposure().map_err(ServeError::Unprotected)?;
        let collector = Collector::new(
            opened.store.clone(),
            telemetry.clone(),
            CollectorConfig {
                engine: opened.engine,
                max_series_per_metric: config.cardinality_limits.max_unique_series_per_metric,
                max_metrics_per_tenant: config.cardinality_limits.max_metrics_per_tenant,
                top_metrics: config.metrics.top_metrics,
            },
        );
        let store = InstrumentedStore::wrap(opened.store, &telemetry.storage);
        let store = crate::cardinality_guard::wrap(store, &config, &telemetry);
        let state = Arc::new(
            AppState::with_telemetry(Arc::new(config), store, registry, telemetry)?
                .with_dashboards(opened.dashboards),
        );
        let (host, port) = (state.config.server.host.clone(), state.config.server.port);
        let listener = TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|source| ServeError::Bind {
                addr: format!("{host}:{port}"),
                source,
            })?;
        let metrics_listener =
            match &state.config.metrics.listen {
                Some(addr) if state.config.metrics.enabled => {
                    // `check` has made sure it is HOST:PORT; brackets of an IPv6 host are not part of it.
                    let (host, port) = addr.rsplit_once(':').unwrap_or((addr.as_str(), "0"));
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let port: u16 = port.parse().unwrap_or(0);
                    Some(TcpListener::bind((host, port)).await.map_err(|source| {
                        ServeError::Bind {
                            addr: addr.clone(),
                            source,
                        }
                    })?)
                }
                _ => None,
            };
        #[cfg(feature = "grpc")]
        let grpc_listener = crate::otlp::grpc::bind(&state.config)
            .await
            .map_err(|source| ServeError::Bind {
                addr: format!("{host}:{} (otlp.grpc)", state.config.otlp_grpc_port()),
                source,
            })?;
        Ok(Self {
            listener,
            metrics_listener,
            #[cfg(feature = "grpc")]
            grpc_listener,
            state,
            collector,
        })
    }

    /// The address actually bound (the port is chosen by the OS when configured as 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of `metrics.listen` actually bound, when it is set.
    pub fn metrics_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.metrics_listener.as_ref().map(TcpListener::local_addr)
    }

    /// The address OTLP over gRPC is served on, when it is (`otlp.grpc.enabled` in a `grpc` build).
    pub fn grpc_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        #[cfg(feature = "grpc")]
        return self.grpc_listener.as_ref().map(TcpListener::local_addr);
        #[cfg(not(feature = "grpc"))]
        None
    }

    /// Serves (the API, and the exposition on `metrics.listen` when set) until `shutdown` completes, then
    /// stops accepting on both, lets in-flight requests finish (at most `server.shutdown_timeout`), stops
    /// the retention task and closes the store.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Self {
            listener,
            metrics_listener,
            #[cfg(feature = "grpc")]
            grpc_listener,
            state,
            collector,
        } = self;
        let config = state.config.clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        tracing::info!(mode = config.exposure(), "access");
        tracing::info!("{}", config.rate_limit_summary());
        if let Some(auth) = &state.auth {
            tracing::info!(algorithms = auth.algorithms(), "bearer tokens accepted");
        }
        if metrics_listener.is_none()
            && config.metrics.enabled
            && crate::auth::ScrapeAccess::of(&config, true) == crate::auth::ScrapeAccess::Closed
        {
            tracing::warn!(
                path = %config.metrics.path,
                "the metrics exposition refuses every scrape (401): with auth.enabled it needs \
                 metrics.bearer_token, or an address of its own (metrics.listen)"
            );
        }
        let limiter_state = state.clone();
        let mut limiter_stop = stop_rx.clone();
        let limiter_cleanup = tokio::spawn(async move {
            // Buckets of tenants idle for a minute are full again: dropping them loses nothing.
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => limiter_state.rate_limiter.retain_recent(),
                    _ = limiter_stop.changed() => break,
                }
            }
        });
        let collecting = config
            .metrics
            .enabled
            .then(|| collector.spawn(config.metrics.interval, stop_rx.clone()));
        let retention = crate::retention::spawn(
            state.store.clone(),
            config.clone(),
            state.retention_wakeup.clone(),
            stop_rx,
        );

        let open_file_limit = crate::conn::open_files::open_file_limit();
        let limits = ConnectionLimits::api(&config.server, open_file_limit);
        tracing::info!(
            max_connections = limits.max_connections,
            open_file_limit = open_file_limit.map_or("unlimited".to_owned(), |l| l.to_string()),
            "connections"
        );
        if !crate::conn::open_files::leaves_reserve(limits.max_connections, open_file_limit) {
            tracing::warn!(
                max_connections = limits.max_connections,
                "server.max_connections leaves the rest of the process too few of the open-file limit: \
                 a flood of connections can make the engine's file operations wait for descriptors"
            );
        }
        // Both listeners stop accepting when the shutdown signal comes; `conn::serve` returns only after
        // that (accept errors are logged and waited out), once its connections have closed.
        let (connections_stop_tx, connections_stop_rx) = watch::channel(false);
        let metrics_serving = metrics_listener.map(|listener| {
            tokio::spawn(crate::conn::serve(
                listener,
                metrics_router(state.clone()),
                limits.metrics(),
                connections_stop_rx.clone(),
            ))
        });
        #[cfg(feature = "grpc")]
        let grpc_serving = grpc_listener.map(|listener| {
            tokio::spawn(crate::otlp::grpc::serve(
                listener,
                state.clone(),
                limits.max_connections as usize,
                connections_stop_rx.clone(),
            ))
        });
        let serving =
            crate::conn::serve(listener, router(state.clone()), limits, connections_stop_rx);
        tokio::pin!(serving, shutdown);
        let shutdown_timeout = config.server.shutdown_timeout;
        tokio::select! {
            () = &mut serving => {}
            () = &mut shutdown => {
                tracing::info!("shutdown requested: no new connections, finishing in-flight requests");
                let _ = connections_stop_tx.send(true);
                if tokio::time::timeout(shutdown_timeout, &mut serving).await.is_err() {
                    tracing::warn!(
                        timeout = %luminate_model::time::format_duration(shutdown_timeout),
                        "in-flight requests did not finish within server.shutdown_timeout; closing anyway"
                    );
                }
            }
        }

        // Exports in flight are answered (and stored) before the store closes below.
        #[cfg(feature = "grpc")]
        if let Some(task) = grpc_serving {
            match tokio::time::timeout(shutdown_timeout, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(error = %e, "OTLP gRPC server ended with an error")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "OTLP gRPC server ended abnormally"),
                Err(_) => tracing::warn!(
                    "OTLP gRPC connections did not close within server.shutdown_timeout; closing anyway"
                ),
            }
        }
        if let Some(task) = metrics_serving {
            // A scraper's request takes milliseconds; a connection kept open longer is not waited for.
            match tokio::time::timeout(shutdown_timeout, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "metrics listener ended abnormally"),
                Err(_) => {
                    tracing::warn!("metrics listener did not stop within server.shutdown_timeout")
                }
            }
        }
        // The receiver lives in the retention task; if it ended on its own there is nothing to stop.
        let _ = stop_tx.send(true);
        let _ = limiter_cleanup.await;
        if let Some(task) = collecting {
            let _ = task.await;
        }
        if let Err(e) = retention.await {
            tracing::warn!(error = %e, "retention task ended abnormally");
        }
        state.store.close().await.map_err(ServeError::Close)?;
        tracing::info!("storage closed; shutdown complete");
        Ok(())
    }
}

/// Opens, binds, logs the address, and serves until `shutdown`, with the server's metrics on a
/// registry of its own.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let server = Server::bind(config, Registry::default()).await?;
    if let Ok(addr) = server.local_addr() {
        tracing::info!(%addr, "listening");
    }
    if let Some(Ok(addr)) = server.metrics_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    server.run(shutdown).await
}
