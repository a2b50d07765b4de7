//! Tenant isolation end to end, on every backend: two tenants write the same metric with the same
//! dimensions; every read route answers each with its own data only; an admin delete by one leaves
//! the other's intact; and no client can name a tenant in its points.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use common::{Backend, now_ms, point};
use serde_json::json;
use tenant_client::{Client, token, with_secret};

fn two_tenants_see_only_their_own_data(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(backend.launch(dir.path())).start();
    let client = Client::of(&server);
    let all = ["read", "write", "admin"];
    let (a, b) = (token("tenant_a", &all), token("tenant_b", &all));
    let now = now_ms();
    let dims = [("customer_id", "cust_1"), ("region", "eu")];
    let a_points: Vec<_> = (0..3)
        .map(|i| point("requests", now - 1000 * i, 1.0, &dims))
        .collect();
    let mut b_points: Vec<_> = (0..2)
        .map(|i| point("requests", now - 1000 * i, 100.0, &dims))
        .collect();
    b_points.push(point("only_b", now, 7.0, &[("b_key", "x")]));
    assert_eq!(client.write(&a, &a_points).body["accepted"], 3);
    assert_eq!(client.write(&b, &b_points).body["accepted"], 3);

    let sum = |t: &str| {
        let body = client.query(
            t,
            &json!({"queryType": "aggregate", "metricName": "requests", "aggregation": "sum",
                "groupBy": ["customer_id"], "timeRange": {"relative": "1h"}}),
        );
        (
            body["results"][0]["value"].as_f64().unwrap(),
            body["results"][0]["count"].as_u64().unwrap(),
            body["results"].as_array().unwrap().len(),
        )
    };
    assert_eq!(sum(&a), (3.0, 3, 1));
    assert_eq!(sum(&b), (200.0, 2, 1));
    let range = |t: &str| {
        client.query(
            t,
            &json!({"queryType": "range", "metricName": "requests", "timeRange": {"relative": "1h"}}),
        )["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(range(&a), vec![1.0, 1.0, 1.0]);
    assert_eq!(range(&b), vec![100.0, 100.0]);

    assert_eq!(
        client.get("/api/v1/metrics", &a).body,
        json!({"metrics": ["requests"]})
    );
    assert_eq!(
        client.get("/api/v1/metrics", &b).body,
        json!({"metrics": ["only_b", "requests"]})
    );
    let only_b = "/api/v1/metrics/only_b/dimensions";
    assert_eq!(client.get(only_b, &a).status, 404);
    assert_eq!(client.get(only_b, &b).status, 200);
    let values = "/api/v1/metrics/requests/dimensions/customer_id/values";
    let count_of = |t: &str| client.get(values, t).body["values"][0]["points"].clone();
    assert_eq!(count_of(&a), json!(3));
    assert_eq!(count_of(&b), json!(2));
    let cardinality = |t: &str| {
        client.get("/api/v1/cardinality", t).body["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["metric"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(cardinality(&a), vec!["requests"]);
    assert_eq!(cardinality(&b).len(), 2);

    // A deletes its points; B's are untouched.
    let delete = format!("/api/v1/admin/metrics/requests?before={}", now + 1);
    let reply = client.delete(&delete, &a);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(range(&a).is_empty());
    assert_eq!(range(&b), vec![100.0, 100.0]);
    assert_eq!(sum(&b), (200.0, 2, 1));

    // The tenant comes from the token only: a point naming one is refused.
    let reply = client.write(
        &a,
        &[point("requests", now, 1.0, &[("_tenant_id", "tenant_b")])],
    );
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.body["errors"][0]["code"], "INVALID_DIMENSION");
    assert_eq!(range(&b), vec![100.0, 100.0]);
}

on_each_backend!(two_tenants_see_only_their_own_data);
