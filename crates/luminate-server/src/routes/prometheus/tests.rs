//! The Prometheus routes over the in-memory store: the envelope of errors Prometheus clients tell
//! apart (`bad_data`, `timeout`) and the fixed answers. Answers over data are the end-to-end suite's
//! (`crates/luminate/tests/promql.rs`, Prometheus as the oracle).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::config::Config;
use crate::testing::MemoryStore;

async fn get(store: Arc<MemoryStore>, uri: &str) -> (StatusCode, Value) {
    let app = crate::testing::router_over(store, Config::default());
    let response = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_query_past_its_timeout_is_cancelled_and_answered_as_prometheus_times_out() {
    let store = Arc::new(MemoryStore::slow(Duration::from_secs(5)));
    let (status, body) = get(
        store.clone(),
        "/prometheus/api/v1/query?query=slow_metric&time=100&timeout=100ms",
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "timeout");
    assert_eq!(
        body["error"],
        "query timed out in query execution (timeout 100ms)"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !store.saw_cancel.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        store.saw_cancel.load(Ordering::SeqCst),
        "the store's work was cancelled"
    );
}

#[tokio::test]
async fn bad_parameters_are_bad_data() {
    let store = Arc::new(MemoryStore::default());
    for (uri, error) in [
        (
            "/prometheus/api/v1/query?query=sum(&time=1",
            "invalid parameter \"query\": ",
        ),
        (
            "/prometheus/api/v1/query?query=stddev_over_time(x[5m])",
            "unsupported PromQL: function stddev_over_time()",
        ),
        (
            "/prometheus/api/v1/query_range?query=1&start=0&end=100&step=0",
            "invalid parameter \"step\": zero or negative",
        ),
        (
            "/prometheus/api/v1/query_range?query=1&end=100&step=1",
            "invalid parameter \"start\": missing",
        ),
        (
            "/prometheus/api/v1/query_range?query=x[5m]&start=0&end=100&step=1",
            "invalid expression type \"range vector\" for range query",
        ),
        (
            "/prometheus/api/v1/query?query=1&time=yesterday",
            "invalid parameter \"time\": cannot parse \"yesterday\"",
        ),
        ("/prometheus/api/v1/series", "no match[] parameter provided"),
        // promql-parser panics on this offset (found by the promql fuzz target): still bad data.
        (
            "/prometheus/api/v1/query?query=x%20offset%20444444444444444444444444-441m&time=1",
            "invalid parameter \"query\": the expression could not be parsed",
        ),
    ] {
        let (status, body) = get(store.clone(), uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["errorType"], "bad_data", "{uri}");
        assert!(
            body["error"].as_str().unwrap().starts_with(error),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn grafana_save_and_test_and_the_fixed_answers() {
    let store = Arc::new(MemoryStore::default());
    let (status, body) = get(store.clone(), "/prometheus/api/v1/query?query=1%2B1&time=4").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "scalar", "result": [4, "2"]}})
    );
    let (_, body) = get(store.clone(), "/prometheus/api/v1/query_exemplars?query=x").await;
    assert_eq!(body, json!({"status": "success", "data": []}));
    let (_, body) = get(store.clone(), "/prometheus/api/v1/metadata?limit=5").await;
    assert_eq!(body, json!({"status": "success", "data": {}}));
    let (_, body) = get(store, "/prometheus/api/v1/labels").await;
    assert_eq!(body, json!({"status": "success", "data": []}));
}

/// The store noticing the deadline first and the route's own timer firing first are a race: both
/// answer in the same words.
#[test]
fn a_store_timeout_is_answered_like_the_routes_own_deadline() {
    let from_store = super::PromError::from(luminate_model::StoreError::Timeout {
        timeout: Duration::from_millis(100),
    });
    match from_store {
        super::PromError::Timeout(message) => {
            assert_eq!(
                message,
                "query timed out in query execution (timeout 100ms)"
            );
        }
        other => panic!("not a timeout: {other:?}"),
    }
}
