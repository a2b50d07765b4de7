//! OTLP over gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` on a port of its own
//! (`otlp.grpc`, docs/ingest.md "OTLP over gRPC"). The same auth, tenancy, limits, mapping and storage as
//! OTLP/HTTP ([`crate::routes::otlp::store`]); only the transport and the status codes differ:
//!
//! - the bearer token comes from the `authorization` metadata: none or a bad one is `UNAUTHENTICATED`,
//!   no `write` scope `PERMISSION_DENIED`;
//! - a rate limit is `RESOURCE_EXHAUSTED` and an unavailable store `UNAVAILABLE`, both with a
//!   `google.rpc.RetryInfo` (in the status details, and in the `google.rpc.retryinfo-bin` trailer the
//!   Python exporter reads): OTLP senders retry `RESOURCE_EXHAUSTED` only when it carries one;
//! - rejected data points are an `OK` answer with `partial_success`, as over HTTP; a message over
//!   `batch_write.max_request_size_bytes` (before or after gzip) is `INVALID_ARGUMENT` (tonic says
//!   `OUT_OF_RANGE`, which OTLP senders would retry forever: see [`never_retry_oversized`]); a body that
//!   is not the message is tonic's `INTERNAL`, gRPC's code for a parse error, which senders do not retry.
//!
//! Connections: at most as many at once as the API's address allows (a permit is taken before each
//! accept, as in [`crate::conn`]), `otlp.grpc.max_concurrent_streams` requests per connection, each
//! within `server.read_timeout`; HTTP/2 keep-alive pings every `server.idle_timeout` drop dead peers. At
//! shutdown the listener closes, requests in flight are answered, then connections close.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use luminate_model::Tenant;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Code, Request, Response, Status};

use crate::app::AppState;
use crate::auth::{Principal, Scope};
use crate::error::ApiError;
use crate::limits::Bucket;
use crate::routes::otlp::{Refusal, store};
use crate::telemetry::WriteOutcome;

/// `google.rpc.Status`: the payload of the `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// A status a sender retries after `seconds`: RetryInfo in the details and in the trailer.
fn retry_after(code: Code, message: String, seconds: u64) -> Status {
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
            nanos: 0,
        }),
    }
    .encode_to_vec();
    let details = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: retry.clone(),
        }],
    }
    .encode_to_vec();
    let mut status = Status::with_details(code, message, details.into());
    status.metadata_mut().insert_bin(
        "google.rpc.retryinfo-bin",
        MetadataValue::from_bytes(&retry),
    );
    status
}

/// The gRPC status of an error the HTTP route would answer with `error.status()`.
fn status_of(error: ApiError) -> Status {
    let seconds = error.retry_after.unwrap_or(1);
    match error.status() {
        StatusCode::UNAUTHORIZED => Status::unauthenticated(error.message),
        StatusCode::FORBIDDEN => Status::permission_denied(error.message),
        StatusCode::TOO_MANY_REQUESTS => {
            retry_after(Code::ResourceExhausted, error.message, seconds)
        }
        StatusCode::SERVICE_UNAVAILABLE => retry_after(Code::Unavailable, error.message, seconds),
        s if s.is_server_error() => Status::internal(error.message),
        _ => Status::invalid_argument(error.message),
    }
}

fn refusal_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::RateLimited(limited) => retry_after(
            Code::ResourceExhausted,
            limited.error.message,
            limited.retry_after,
        ),
        Refusal::Store(e) => status_of(e),
    }
}

/// The `MetricsService` implementation.
struct Exporter {
    state: Arc<AppState>,
}

impl Exporter {
    /// Auth, scope and the tenant's request bucket, as the HTTP route guard does for writes.
    fn admit(&self, metadata: &MetadataMap) -> Result<Tenant, Status> {
        let principal = match &self.state.auth {
            None => Principal::anonymous(),
            Some(auth) => auth
                .authenticate(metadata.get("authorization").map(|v| v.as_bytes()))
                .map_err(status_of)?,
        };
        principal.require(Scope::Write).map_err(status_of)?;
        let tenant = principal.tenant;
        if let Err(limited) = self
            .state
            .rate_limiter
            .check_request(Bucket::WriteRequests, &tenant)
        {
            return Err(refusal_status(Refusal::RateLimited(limited)));
        }
        Ok(tenant)
    }

    async fn store(
        &self,
        tenant: &Tenant,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportMetricsServiceResponse, Status> {
        let state = &self.state;
        let rules = state.rules.clone();
        let max_batch = state.config.batch_write.max_batch_size;
        let promoted = state.config.otlp.promote_resource_attributes.clone();
        let export = tokio::task::spawn_blocking(move || {
            let now = luminate_model::time::now_ms();
            super::map(&request, now, &rules, max_batch, &promoted)
        })
        .await
        .map_err(|e| Status::internal(format!("OTLP mapping task failed: {e}")))?;
        let (rejected, message) = store(state, tenant, export).await.map_err(refusal_status)?;
        Ok(ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: message,
            }),
        })
    }
}

#[tonic::async_trait]
impl MetricsService for Exporter {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let tenant = self.admit(request.metadata())?;
        let started = Instant::now();
        let result = self.store(&tenant, request.into_inner()).await;
        let outcome = match &result {
            Ok(r) if r.partial_success.is_some() => WriteOutcome::Partial,
            Ok(_) => WriteOutcome::Accepted,
            Err(s) if s.code() == Code::ResourceExhausted => WriteOutcome::RateLimited,
            Err(s) if matches!(s.code(), Code::Unavailable | Code::Internal) => WriteOutcome::Error,
            Err(_) => WriteOutcome::Rejected,
        };
        self.state
            .telemetry
            .write_finished(&tenant, outcome, started.elapsed());
        result.map(Response::new)
    }
}

/// tonic answers a message over the size cap `OUT_OF_RANGE`, which OTLP lists as retryable: the sender
/// would resend a message that can never fit. Such an answer (a trailers-only response: the status is in
/// the headers) becomes `INVALID_ARGUMENT`. The service itself never answers `OUT_OF_RANGE`.
///
/// Over the cap after inflating gzip, tonic answers `RESOURCE_EXHAUSTED` without details; OTLP senders do
/// not retry that, but it is as much invalid data: it becomes `INVALID_ARGUMENT` too. The service's own
/// `RESOURCE_EXHAUSTED` (a rate limit) always carries details ([`retry_after`]).
fn never_retry_oversized<B>(mut response: axum::http::Response<B>) -> axum::http::Response<B> {
    let headers = response.headers_mut();
    let code = headers.get("grpc-status").map(HeaderValue::as_bytes);
    let oversized = code == Some(b"11")
        || (code == Some(b"8") && !headers.contains_key("grpc-status-details-bin"));
    if oversized {
        let invalid = HeaderValue::from(Code::InvalidArgument as i32);
        headers.insert("grpc-status", invalid);
    }
    response
}

/// A connection holding its permit of the connection cap until it closes.
struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connected for Permitted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Binds `server.host` and the gRPC port (`None` when `otlp.grpc.enabled` is false).
pub async fn bind(config: &crate::config::Config) -> std::io::Result<Option<TcpListener>> {
    if !config.otlp.grpc.enabled {
        return Ok(None);
    }
    let listener =
        TcpListener::bind((config.server.host.as_str(), config.otlp_grpc_port())).await?;
    Ok(Some(listener))
}

/// Serves `MetricsService` on `listener` until `stop` turns true, then stops accepting, answers the
/// requests in flight and returns once every connection closed. At most `max_connections` at once.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    max_connections: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let config = state.config.clone();
    let cap = config.batch_write.max_request_size_bytes;
    let service = MetricsServiceServer::new(Exporter { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(cap);
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let incoming =
        futures_util::stream::unfold((listener, permits), |(listener, permits)| async move {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return None;
            };
            let accepted = match listener.accept().await {
                Ok((stream, _)) => Ok(Permitted {
                    stream,
                    _permit: permit,
                }),
                Err(e) => {
                    // Out of descriptors, most likely: wait for some to close rather than spin.
                    tracing::warn!(error = %e, "OTLP gRPC accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(e)
                }
            };
            Some((accepted, (listener, permits)))
        });
    let stopped = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    tonic::transport::Server::builder()
        .max_concurrent_streams(config.otlp.grpc.max_concurrent_streams)
        .concurrency_limit_per_connection(config.otlp.grpc.max_concurrent_streams as usize)
        .timeout(config.server.read_timeout)
        .http2_keepalive_interval(Some(config.server.idle_timeout))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .http2_max_header_list_size(64 * 1024)
        .layer(tower::util::MapResponseLayer::new(never_retry_oversized))
        // One service, no router: the generated server answers other paths `UNIMPLEMENTED`.
        .serve_with_incoming_shutdown(service, incoming, stopped)
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use luminate_model::time::now_ms;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
        number_data_point::Value,
    };
    use std::net::SocketAddr;

    use tokio::sync::watch;
    use tonic::transport::Channel;

    use super::*;
    use crate::config::Config;
    use crate::testing::MemoryStore;

    /// A server over `store` on a loopback port, and a gzip client of it; the sender stops it.
    async fn start(
        store: Arc<MemoryStore>,
        config: Config,
    ) -> (MetricsServiceClient<Channel>, watch::Sender<bool>) {
        let (addr, stop) = serving(store, config).await;
        (connect(addr, true).await, stop)
    }

    async fn serving(store: Arc<MemoryStore>, config: Config) -> (SocketAddr, watch::Sender<bool>) {
        let state = Arc::new(
            AppState::new(
                Arc::new(config),
                store,
                prometheus_client::registry::Registry::default(),
            )
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, state, 4, stopped));
        (addr, stop)
    }

    async fn connect(addr: SocketAddr, gzip: bool) -> MetricsServiceClient<Channel> {
        let client = MetricsServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        if gzip {
            client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip)
        } else {
            client
        }
    }

    fn gauge(name: &str, values: &[f64]) -> ExportMetricsServiceRequest {
        let now = now_ms() as u64 * 1_000_000;
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: name.into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: values
                                .iter()
                                .map(|v| NumberDataPoint {
                                    time_unix_nano: now,
                                    value: Some(Value::AsDouble(*v)),
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// The retry delay a status carries, in its details and in the trailer the Python exporter reads.
    fn retry_delays(status: &Status) -> (Option<i64>, Option<i64>) {
        let details = RpcStatus::decode(status.details()).ok().and_then(|s| {
            let any = s.details.first()?.clone();
            assert_eq!(any.type_url, "type.googleapis.com/google.rpc.RetryInfo");
            Some(
                RetryInfo::decode(any.value.as_slice())
                    .ok()?
                    .retry_delay?
                    .seconds,
            )
        });
        let trailer = status
            .metadata()
            .get_bin("google.rpc.retryinfo-bin")
            .and_then(|v| v.to_bytes().ok())
            .and_then(|b| Some(RetryInfo::decode(b).ok()?.retry_delay?.seconds));
        (details, trailer)
    }

    #[tokio::test]
    async fn gzip_export_stores_valid_points_and_reports_the_rest_as_partial_success() {
        let store = Arc::new(MemoryStore::default());
        let (mut client, stop) = start(store.clone(), Config::default()).await;
        let reply = client
            .export(gauge("temp.c", &[21.5, f64::NAN]))
            .await
            .unwrap()
            .into_inner();
        let partial = reply.partial_success.unwrap();
        assert_eq!(partial.rejected_data_points, 1);
        assert!(
            partial.error_message.contains("NON_FINITE_VALUE"),
            "{}",
            partial.error_message
        );
        assert_eq!(store.writes.load(Ordering::SeqCst), 1);
        let reply = client.export(gauge("temp.c", &[1.0])).await.unwrap();
        assert_eq!(reply.into_inner().partial_success, None);
        let _ = stop.send(true);
    }

    #[tokio::test]
    async fn transient_refusals_carry_retry_info_and_oversized_messages_are_invalid() {
        // The store down: UNAVAILABLE, retry in 1 s.
        let store = Arc::new(MemoryStore::default());
        store.unavailable.store(true, Ordering::SeqCst);
        let (mut client, _stop) = start(store, Config::default()).await;
        let status = client.export(gauge("m", &[1.0])).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(retry_delays(&status), (Some(1), Some(1)));

        // The points rate: RESOURCE_EXHAUSTED with RetryInfo, nothing stored.
        let store = Arc::new(MemoryStore::default());
        let mut config = Config::default();
        config.rate_limits.metrics_per_second = Some(2);
        config.batch_write.max_batch_size = 3;
        let (mut client, _stop) = start(store.clone(), config).await;
        client.export(gauge("m", &[1.0, 2.0, 3.0])).await.unwrap();
        let status = client
            .export(gauge("m", &[1.0, 2.0, 3.0]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let (details, trailer) = retry_delays(&status);
        assert!(
            details.is_some_and(|s| s >= 1) && trailer == details,
            "{status:?}"
        );
        assert_eq!(store.writes.load(Ordering::SeqCst), 1);

        // Over the size cap, compressed (after inflating) or not: INVALID_ARGUMENT, never retried.
        let mut config = Config::default();
        config.batch_write.max_request_size_bytes = 2_000;
        let (addr, _stop) = serving(Arc::new(MemoryStore::default()), config).await;
        let big = gauge("m", &[1.0; 200]);
        for gzip in [true, false] {
            let mut client = connect(addr, gzip).await;
            let status = client.export(big.clone()).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        }
    }

    #[tokio::test]
    async fn stopping_closes_the_listener_and_open_connections_then_returns() {
        let state = Arc::new(
            AppState::new(
                Arc::new(Config::default()),
                Arc::new(MemoryStore::default()),
                prometheus_client::registry::Registry::default(),
            )
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let serving = tokio::spawn(serve(listener, state, 4, stopped));
        // A connection that stays open after its export, as exporters keep theirs.
        let mut client = connect(addr, true).await;
        client.export(gauge("m", &[1.0])).await.unwrap();
        stop.send(true).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), serving).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }

    #[tokio::test]
    async fn tokens_are_read_from_the_authorization_metadata() {
        let mut config = Config::default();
        config.auth.enabled = true;
        config.auth.jwt_secret = Some("secret".into());
        let read = crate::auth::mint(
            &config.auth,
            "acme",
            &[Scope::Read],
            Duration::from_secs(60),
        )
        .unwrap();
        let write = crate::auth::mint(
            &config.auth,
            "acme",
            &[Scope::Write],
            Duration::from_secs(60),
        )
        .unwrap();
        let (mut client, _stop) = start(Arc::new(MemoryStore::default()), config).await;
        let with = |token: Option<&str>| {
            let mut request = Request::new(gauge("m", &[1.0]));
            if let Some(token) = token {
                let value = format!("Bearer {token}").parse().unwrap();
                request.metadata_mut().insert("authorization", value);
            }
            request
        };
        let status = client.export(with(None)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        let status = client.export(with(Some("not-a-jwt"))).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        let status = client.export(with(Some(&read))).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        client.export(with(Some(&write))).await.unwrap();
    }
}
