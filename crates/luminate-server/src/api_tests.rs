//! Route scenarios over the in-memory store: the contract's answers for writes, queries, discovery,
//! admin and errors, checked through the real router without a socket. The end-to-end suite in the
//! `luminate` crate repeats the important ones against the real binary and engine.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use luminate_model::time::now_ms;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::config::Config;
use crate::testing::MemoryStore;

fn app(store: Arc<MemoryStore>) -> Router {
    app_with(store, Config::default())
}

fn app_with(store: Arc<MemoryStore>, config: Config) -> Router {
    crate::testing::router_over(store, config)
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, body)
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn point(name: Value, ts: i64, value: Value, dims: Value) -> Value {
    json!({"name": name, "timestamp": ts, "value": value, "dimensions": dims})
}

#[tokio::test]
async fn partial_success_reports_errors_at_batch_indexes() {
    let store = Arc::new(MemoryStore::refusing("limited"));
    let app = app(store);
    let now = now_ms();
    let batch = json!({"metrics": [
        point(json!("ok_a"), now, json!(1.0), json!({"k": "v"})),
        point(json!("9bad"), now, json!(1.0), json!({})),
        point(json!("limited_x"), now, json!(1.0), json!({})),
        point(json!(7), now, json!(1.0), json!({})),
        point(json!("ok_b"), now, json!("abc"), json!({})),
        point(json!("ok_c"), now - 8 * 86_400_000, json!(1.0), json!({})),
        point(json!("ok_d"), now, json!(2), json!({"_tenant_id": "x"})),
        point(json!("ok_e"), now, json!(3), json!({})),
    ]});
    let (status, body) = call(&app, post("/api/v1/write", batch.to_string())).await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 6);
    let got: Vec<(u64, Value, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["metric"].clone(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, json!("9bad"), "INVALID_METRIC_NAME".to_owned()),
            (2, json!("limited_x"), "CARDINALITY_EXCEEDED".to_owned()),
            (3, Value::Null, "INVALID_METRIC_NAME".to_owned()),
            (4, json!("ok_b"), "INVALID_VALUE".to_owned()),
            (5, json!("ok_c"), "INVALID_TIMESTAMP".to_owned()),
            (6, json!("ok_d"), "INVALID_DIMENSION".to_owned()),
        ]
    );
    assert!(
        body["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("9bad")
    );
}

#[tokio::test]
async fn all_invalid_is_400_with_the_same_body_and_empty_batch_is_200() {
    let app = app(Arc::new(MemoryStore::default()));
    let batch = json!({"metrics": [point(json!("a"), 0, json!(1), json!({}))]});
    let (status, body) = call(&app, post("/api/v1/write", batch.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(body["errors"][0]["code"], "INVALID_TIMESTAMP");
    let (status, body) = call(&app, post("/api/v1/write", r#"{"metrics": []}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"accepted": 0, "rejected": 0, "errors": []}));
}

#[tokio::test]
async fn batch_size_limit_has_details() {
    let mut config = Config::default();
    config.batch_write.max_batch_size = 3;
    let app = app_with(Arc::new(MemoryStore::default()), config);
    let now = now_ms();
    let batch = json!({"metrics": (0..4).map(|i| point(json!("m"), now, json!(i), json!({}))).collect::<Vec<_>>()});
    let (status, body) = call(&app, post("/api/v1/write", batch.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "BATCH_TOO_LARGE");
    assert_eq!(
        body["error"]["details"],
        json!({"max_batch_size": 3, "received": 4})
    );
}

#[tokio::test]
async fn body_limits_count_decompressed_bytes() {
    use std::io::Write;
    let mut config = Config::default();
    config.batch_write.max_request_size_bytes = 4096;
    let app = app_with(Arc::new(MemoryStore::default()), config);
    let raw = format!(r#"{{"metrics": [], "pad": "{}"}}"#, " ".repeat(5000));
    let (status, body) = call(&app, post("/api/v1/write", raw.clone())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("PAYLOAD_TOO_LARGE"))
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(raw.as_bytes()).unwrap();
    let compressed = gz.finish().unwrap();
    assert!(compressed.len() < 4096);
    let request = Request::post("/api/v1/write")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(compressed))
        .unwrap();
    let (status, _) = call(&app, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn idempotent_retry_writes_once() {
    let store = Arc::new(MemoryStore::default());
    let app = app(store.clone());
    let batch = json!({"metrics": [point(json!("m"), now_ms(), json!(1), json!({}))]}).to_string();
    let keyed = || {
        Request::post("/api/v1/write")
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "retry-1")
            .body(Body::from(batch.clone()))
            .unwrap()
    };
    let first = call(&app, keyed()).await;
    let second = call(&app, keyed()).await;
    assert_eq!(first, second);
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(store.writes.load(Ordering::SeqCst), 1);
    let long_key = Request::post("/api/v1/write")
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", "k".repeat(257))
        .body(Body::from(batch.clone()))
        .unwrap();
    assert_eq!(call(&app, long_key).await.0, StatusCode::BAD_REQUEST);
}

/// A keyed write whose client goes away mid-write (the request's future dropped, as hyper drops it
/// when the connection closes) still completes and remembers its key: the retry is replayed, and the
/// points are stored once.
#[tokio::test]
async fn a_keyed_write_abandoned_mid_write_completes_and_its_retry_is_replayed() {
    let store = Arc::new(MemoryStore::slow_writes(Duration::from_millis(200)));
    let app = app(store.clone());
    let batch = json!({"metrics": [point(json!("m"), now_ms(), json!(1), json!({}))]}).to_string();
    let keyed = || {
        Request::post("/api/v1/write")
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "abandoned-1")
            .body(Body::from(batch.clone()))
            .unwrap()
    };
    let abandoned = tokio::time::timeout(Duration::from_millis(50), call(&app, keyed())).await;
    assert!(
        abandoned.is_err(),
        "the write answered before it was abandoned"
    );
    let mut waited = 0;
    while store.writes.load(Ordering::SeqCst) == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    let (status, _, headers) = call_with_headers(&app, keyed()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(store.writes.load(Ordering::SeqCst), 1);
}

/// The route's timeout mapping, at unit level: a store whose query outlives the deadline must yield
/// `504 QUERY_TIMEOUT` at the deadline and see its context cancelled (the store keeps checking it).
#[tokio::test]
async fn query_past_its_timeout_is_504_and_cancelled() {
    let store = Arc::new(MemoryStore::slow(Duration::from_secs(5)));
    let app = app(store.clone());
    let q = json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}, "timeout": "100ms"});
    let started = std::time::Instant::now();
    let (status, body) = call(&app, post("/api/v1/query", q.to_string())).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["error"]["code"], "QUERY_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        store.saw_cancel.load(Ordering::SeqCst),
        "the store saw the cancellation"
    );
}

#[tokio::test]
async fn query_errors_name_their_field() {
    let app = app(Arc::new(MemoryStore::default()));
    let (status, body) = call(
        &app,
        post(
            "/api/v1/query",
            r#"{"queryType":"range","metricName":"m","timeRange":{"relative":"1h"},"bogus":1}"#,
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_QUERY"))
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("bogus"));
    let (status, body) = call(
        &app,
        post(
            "/api/v1/query",
            r#"{"queryType":"range","metricName":"m","timeRange":{"relative":"91d"}}"#,
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("QUERY_LIMIT_EXCEEDED"))
    );
    let (status, body) = call(
        &app,
        post(
            "/api/v1/query",
            r#"{"queryType":"range","metricName":"unknown","timeRange":{"relative":"1h"}}"#,
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an unknown metric is an empty result"
    );
    assert_eq!(body["results"], json!([]));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let app = app(Arc::new(MemoryStore::default()));
    let (status, body) = call(&app, get("/api/v1/nope")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (status, body) = call(&app, get("/api/v1/write")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("METHOD_NOT_ALLOWED"))
    );
    let (status, body) = call(&app, get("/api/v1/metrics/9bad/dimensions")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_METRIC_NAME"))
    );
    let (status, body) = call(&app, get("/api/v1/metrics/m/dimensions/_tenant_id/values")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_DIMENSION"))
    );
    let (status, body) = call(&app, get("/api/v1/cardinality?metric=absent")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn retention_sweep_applies_override_then_policy_then_default() {
    let store = Arc::new(MemoryStore::default());
    let app = app(store.clone());
    let now = now_ms();
    let hour = 3_600_000;
    let batch = json!({"metrics": [
        point(json!("debug_x"), now - 2 * hour, json!(1), json!({})),
        point(json!("debug_x"), now, json!(1), json!({})),
        point(json!("api_y"), now - 2 * hour, json!(1), json!({})),
        point(json!("kept"), now - 2 * hour, json!(1), json!({})),
    ]});
    assert_eq!(
        call(&app, post("/api/v1/write", batch.to_string())).await.0,
        StatusCode::OK
    );
    let (status, body) = call(
        &app,
        post(
            "/api/v1/admin/retention",
            r#"{"metric_name":"api_y","retention_days":1}"#,
        ),
    )
    .await;
    assert_eq!(
        (status, body["retention_days"].clone()),
        (StatusCode::OK, json!(1))
    );
    let config: Config = Config::load_from(
        Some(("t.yaml", "retention:\n  policies:\n    - metric_pattern: \"debug_*\"\n      retention: 1h\n    - metric_pattern: \"api_*\"\n      retention: 1h\n")),
        &[],
    )
    .unwrap();
    let report = crate::retention::sweep(store.as_ref(), &config, now)
        .await
        .unwrap();
    // debug_x loses its old point (policy 1h); api_y keeps it (override 1 day beats the 1h policy).
    assert_eq!(report.deleted, 1);
    let (_, body) = call(&app, get("/api/v1/cardinality")).await;
    assert_eq!(body["metrics"].as_array().unwrap().len(), 3);
}

/// On the ClickHouse backend with a table TTL, an override longer than the TTL would be cut short by
/// ClickHouse: it is refused, naming the TTL; one within it is taken.
#[tokio::test]
async fn a_retention_longer_than_the_clickhouse_ttl_is_refused() {
    let config = Config::load_from(
        Some((
            "t.yaml",
            "storage:\n  backend: clickhouse\n  clickhouse: {ttl: 90d}\n",
        )),
        &[],
    )
    .unwrap();
    let app = app_with(Arc::new(MemoryStore::default()), config);
    let set = |days: u64| {
        post(
            "/api/v1/admin/retention",
            format!(r#"{{"metric_name":"archive","retention_days":{days}}}"#),
        )
    };
    let (status, body) = call(&app, set(91)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_REQUEST");
    assert_eq!(
        body["error"]["message"],
        "retention_days: 91 days is longer than storage.clickhouse.ttl (90d), after which \
         ClickHouse deletes every point; raise the TTL first"
    );
    let (status, body) = call(&app, set(90)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A `(status, body, headers)` answer.
async fn call_with_headers(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), headers)
}

#[tokio::test]
async fn concurrent_queries_are_capped_per_tenant() {
    let mut config = Config::default();
    config.auth.enabled = true;
    config.auth.jwt_secret = Some("secret".into());
    config.rate_limits.concurrent_queries = Some(2);
    let scopes = [crate::auth::Scope::Read];
    let token = |tenant: &str| {
        crate::auth::mint(&config.auth, tenant, &scopes, Duration::from_secs(60)).unwrap()
    };
    let (a, b) = (token("a"), token("b"));
    let app = app_with(
        Arc::new(MemoryStore::slow(Duration::from_millis(800))),
        config.clone(),
    );
    let query = |t: &str| {
        Request::post("/api/v1/query")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::from(
                json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}})
                    .to_string(),
            ))
            .unwrap()
    };
    // Two slow queries of tenant a hold both of its slots.
    let running: Vec<_> = (0..2)
        .map(|_| {
            let (app, request) = (app.clone(), query(&a));
            tokio::spawn(async move { call_with_headers(&app, request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body, headers) = call_with_headers(&app, query(&a)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["error"]["details"]["limit"], "concurrent_queries");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-ratelimit-limit"], "50");
    // Tenant b has slots of its own.
    let (status, _, _) = call_with_headers(&app, query(&b)).await;
    assert_eq!(status, StatusCode::OK);
    for r in running {
        assert_eq!(r.await.unwrap().0, StatusCode::OK);
    }
    // Finished queries free their slots.
    let (status, _, _) = call_with_headers(&app, query(&a)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn without_auth_every_request_is_tenant_default_with_every_scope() {
    let app = app(Arc::new(MemoryStore::default()));
    let (status, _, headers) = call_with_headers(&app, get("/api/v1/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    // One implicit tenant: no quota applies unless the configuration sets one.
    assert!(!headers.contains_key("x-ratelimit-limit"));
    let (status, _, headers) = call_with_headers(&app, get("/api/v1/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("x-ratelimit-limit"));
    let (status, _) = call(
        &app,
        Request::delete(format!("/api/v1/admin/metrics/m?before={}", now_ms()))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    // The admin route is reached (no 401/403): tenant default holds every scope.
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn health_lists_every_check_and_only_a_failure_answers_503() {
    use luminate_model::store::CheckOutcome;

    let store = MemoryStore::with_checks(vec![
        ("quiet", CheckOutcome::pass(), Duration::ZERO),
        (
            "spare",
            CheckOutcome::warn("running low".into()),
            Duration::ZERO,
        ),
    ]);
    let (status, mut body) = call(&app(Arc::new(store)), get("/api/v1/health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for check in ["storage", "quiet", "spare"] {
        assert!(body["checks"][check]["duration_ms"].is_u64(), "{body}");
        body["checks"][check]["duration_ms"] = json!(0);
    }
    body["uptime_seconds"] = json!(0);
    assert_eq!(
        body,
        json!({
            "status": "degraded",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": 0,
            "storage": {"backend": "memory", "status": "healthy", "disk_used_bytes": 0},
            "checks": {
                "storage": {"status": "pass", "duration_ms": 0},
                "quiet": {"status": "pass", "duration_ms": 0},
                "spare": {"status": "warn", "duration_ms": 0, "message": "running low"},
            },
        })
    );
    // Key order is part of the answer: storage first, then the backend's checks in its order.
    let order: Vec<&String> = body["checks"].as_object().unwrap().keys().collect();
    assert_eq!(order, ["storage", "quiet", "spare"]);

    let store = MemoryStore::with_checks(vec![(
        "broken",
        CheckOutcome::fail("gone".into()),
        Duration::ZERO,
    )]);
    let (status, body) = call(&app(Arc::new(store)), get("/api/v1/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["storage"]["status"], "healthy");
    assert_eq!(
        body["checks"]["broken"],
        json!({"status": "fail", "duration_ms": body["checks"]["broken"]["duration_ms"], "message": "gone"})
    );
}

#[tokio::test]
async fn an_export_the_store_cannot_start_is_answered_in_the_error_format_and_frees_its_slot() {
    let app = app(Arc::new(MemoryStore::default()));
    let request = || post("/api/v1/export", r#"{"timeRange": {"relative": "1h"}}"#);
    // More times than a tenant has export slots: a refused start gives its slot back.
    for _ in 0..=crate::routes::export::MAX_EXPORTS_PER_TENANT {
        let (status, body) = call(&app, request()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "STORAGE_UNAVAILABLE");
        assert_eq!(
            body["error"]["message"],
            "storage unavailable: the memory backend cannot export"
        );
    }
    let (status, body) = call(&app, post("/api/v1/export", r#"{"timeRange": 5}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_QUERY");
}

#[tokio::test]
async fn a_backfill_takes_points_back_to_each_metrics_retention_for_admins_only() {
    let mut config: Config = Config::load_from(
        Some((
            "t.yaml",
            "retention:\n  default_retention: 30d\n  policies:\n    - metric_pattern: \"debug_*\"\n      retention: 2d\n",
        )),
        &[],
    )
    .unwrap();
    config.auth.enabled = true;
    config.auth.jwt_secret = Some("secret".into());
    let token = |scopes: &[crate::auth::Scope]| {
        crate::auth::mint(&config.auth, "acme", scopes, Duration::from_secs(60)).unwrap()
    };
    use crate::auth::Scope::{Admin, Write};
    let (writer, admin) = (token(&[Write]), token(&[Write, Admin]));
    let store = Arc::new(MemoryStore::default());
    let app = app_with(store.clone(), config.clone());
    let write = |uri: &str, token: &str, points: Vec<Value>| {
        Request::post(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({ "metrics": points }).to_string()))
            .unwrap()
    };
    let (status, _) = call(
        &app,
        Request::post("/api/v1/admin/retention")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .body(Body::from(
                r#"{"metric_name":"archive","retention_days":90}"#,
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let day = 86_400_000;
    let now = now_ms();
    let at =
        |name: &str, days_ago: i64| point(json!(name), now - days_ago * day, json!(1), json!({}));

    // Without the parameter, the 7-day window.
    let (status, body) = call(&app, write("/api/v1/write", &admin, vec![at("api", 20)])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], "INVALID_TIMESTAMP", "{body}");

    // A token without `admin` may not ask for it.
    let (status, body) = call(
        &app,
        write("/api/v1/write?backfill=true", &writer, vec![at("api", 20)]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    assert_eq!(body["error"]["details"]["required_scope"], "admin");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backfill=true requires"),
        "{body}"
    );

    // An admin's backfill: each metric back to its retention (override 90 d, policy 2 d, default
    // 30 d), each point past it rejected at its index, naming the retention.
    let (status, body) = call(
        &app,
        write(
            "/api/v1/write?backfill=true",
            &admin,
            vec![
                at("api", 20),
                at("api", 31),
                at("archive", 60),
                at("debug_x", 1),
                at("debug_x", 3),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    assert_eq!(body["accepted"], 3, "{body}");
    let rejected: Vec<(u64, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "INVALID_TIMESTAMP".to_owned()),
            (4, "INVALID_TIMESTAMP".to_owned())
        ]
    );
    let message = body["errors"][0]["error"].as_str().unwrap();
    assert!(
        message.contains("older than the retention of metric \"api\" (2592000s"),
        "{message}"
    );
    assert_eq!(store.points_of("acme", "api"), 1);
    assert_eq!(store.points_of("acme", "archive"), 1);
    assert_eq!(store.points_of("acme", "debug_x"), 1);

    // Any other value of the parameter is a 400; `false` is a plain write.
    let (status, body) = call(
        &app,
        write("/api/v1/write?backfill=yes", &admin, vec![at("api", 1)]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_REQUEST");
    let (status, body) = call(
        &app,
        write("/api/v1/write?backfill=false", &admin, vec![at("api", 20)]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn liveness_fails_only_when_a_restart_is_needed_and_needs_no_token() {
    let mut config = Config::default();
    config.auth.enabled = true;
    config.auth.jwt_secret = Some("secret".into());
    // Health fails on a failed check; liveness does not.
    let store = Arc::new(MemoryStore::with_checks(vec![(
        "disk_space",
        luminate_model::store::CheckOutcome::fail("0 bytes free".into()),
        Duration::ZERO,
    )]));
    let app = app_with(store.clone(), config);
    let (status, _) = call(&app, get("/api/v1/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = call(&app, get("/api/v1/health/live")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "alive"})));
    *store.restart_reason.lock().unwrap() = Some("engine is poisoned: fsync failed".into());
    let (status, body) = call(&app, get("/api/v1/health/live")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "restart_needed", "reason": "engine is poisoned: fsync failed"})
        )
    );
}
