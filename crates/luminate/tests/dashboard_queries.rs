//! What dashboards send to `POST /api/v1/query`, end to end on every backend: "any of" filters (a
//! multi-value variable's selection) answer the union of the single-value answers, `""` among the
//! values included; an empty list and other misshapen lists are refused; and `listDimensionValues`
//! (a variable's options) answers with the discovery route's values, order, prefix and limit.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

on_each_backend!(
    any_of_filter_answers_the_union_of_its_values,
    empty_and_misshapen_filter_lists_are_refused,
    list_dimension_values_answers_as_the_discovery_route
);

use common::{Answer, Backend, Luminate, now_ms, point};
use serde_json::{Value, json};

/// Start of a minute at least 30 minutes ago: every point is writable.
fn minute_base() -> i64 {
    (now_ms() - 30 * 60_000) / 60_000 * 60_000
}

/// `(status, code, message)` of an answer.
fn error(answer: &Answer) -> (u16, &str, &str) {
    let (status, body) = answer;
    (
        *status,
        body["error"]["code"].as_str().unwrap_or("(none)"),
        body["error"]["message"].as_str().unwrap_or("(none)"),
    )
}

/// The `results` of a query with `filters`, over `base` (a query without filters).
fn results(server: &Luminate, base: &Value, filters: Value) -> Vec<Value> {
    let mut query = base.clone();
    query["filters"] = filters;
    let body = server.query(&query);
    assert_eq!(body["truncated"], json!(false), "{body}");
    body["results"].as_array().unwrap().clone()
}

fn any_of_filter_answers_the_union_of_its_values(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t0 = minute_base();
    let points = vec![
        point(
            "api_latency",
            t0,
            10.0,
            &[("customer_id", "c1"), ("region", "eu")],
        ),
        point(
            "api_latency",
            t0 + 1_000,
            20.0,
            &[("customer_id", "c1"), ("region", "eu")],
        ),
        point(
            "api_latency",
            t0 + 2_000,
            30.0,
            &[("customer_id", "c2"), ("region", "us")],
        ),
        point("api_latency", t0 + 3_000, 40.0, &[("customer_id", "c3")]),
        point(
            "api_latency",
            t0 + 4_000,
            50.0,
            &[("customer_id", "c4"), ("region", "eu")],
        ),
    ];
    assert_eq!(server.write(&points).0, 200);
    let range = json!({"start": t0, "end": t0 + 60_000});

    // Aggregates by customer: the groups of c1, c3 and of a customer nobody is, together.
    let sums = json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
        "aggregation": "sum", "groupBy": ["customer_id"]});
    let any_of = results(
        &server,
        &sums,
        json!({"customer_id": ["c3", "nobody", "c1", "c3"]}),
    );
    assert_eq!(
        any_of,
        vec![
            json!({"groupKey": {"customer_id": "c3"}, "value": 40.0, "count": 1}),
            json!({"groupKey": {"customer_id": "c1"}, "value": 30.0, "count": 2}),
        ]
    );
    let mut union: Vec<Value> = ["c1", "c3", "nobody"]
        .iter()
        .flat_map(|c| results(&server, &sums, json!({"customer_id": c})))
        .collect();
    union.sort_by(|a, b| {
        b["value"]
            .as_f64()
            .unwrap()
            .total_cmp(&a["value"].as_f64().unwrap())
    });
    assert_eq!(any_of, union);

    // Raw points of region "us" or without a region (`""`): c2's and c3's, in time order.
    let raw = json!({"queryType": "range", "metricName": "api_latency", "timeRange": range});
    let any_of = results(&server, &raw, json!({"region": ["us", ""]}));
    let timestamps: Vec<&Value> = any_of.iter().map(|p| &p["timestamp"]).collect();
    assert_eq!(timestamps, [&json!(t0 + 2_000), &json!(t0 + 3_000)]);
    let mut union = results(&server, &raw, json!({"region": "us"}));
    union.extend(results(&server, &raw, json!({"region": ""})));
    union.sort_by_key(|p| p["timestamp"].as_i64().unwrap());
    assert_eq!(any_of, union);

    // Filters still all hold: (c1 or c4 or c2) and region eu → 10 + 20 + 50.
    let total = json!({"queryType": "aggregate", "metricName": "api_latency", "timeRange": range,
        "aggregation": "sum"});
    assert_eq!(
        results(
            &server,
            &total,
            json!({"customer_id": ["c1", "c4", "c2"], "region": "eu"})
        ),
        vec![json!({"groupKey": {}, "value": 80.0, "count": 3})]
    );
    // A one-value list is the value; a list of values nobody has selects nothing.
    assert_eq!(
        results(&server, &total, json!({"customer_id": ["c2"]})),
        results(&server, &total, json!({"customer_id": "c2"}))
    );
    assert_eq!(
        results(&server, &total, json!({"customer_id": ["nobody", "none"]})),
        Vec::<Value>::new()
    );
    // Rates take the same filters: c3 (no region) has one point, so no increase; c1 gains 10 in eu.
    let rate = json!({"queryType": "rate", "metricName": "api_latency", "timeRange": range,
        "interval": "1m", "groupBy": ["region"]});
    assert_eq!(
        results(&server, &rate, json!({"region": ["", "eu", "nobody"]})),
        vec![
            json!({"groupKey": {"region": ""}, "points": []}),
            json!({"groupKey": {"region": "eu"}, "points": [{"timestamp": t0, "rate": 10.0 / 60.0}]}),
        ]
    );
}

fn empty_and_misshapen_filter_lists_are_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t0 = minute_base();
    assert_eq!(
        server
            .write(&[point("m", t0, 1.0, &[("customer_id", "c1")])])
            .0,
        200
    );
    let query = |filters: Value| {
        server.post_json(
            "/api/v1/query",
            &json!({"queryType": "range", "metricName": "m",
                "timeRange": {"start": t0, "end": t0 + 60_000}, "filters": filters}),
        )
    };
    let too_many: Vec<String> = (0..1_001).map(|i| format!("c{i}")).collect();
    for (filters, status, code, message) in [
        (
            json!({"customer_id": []}),
            400,
            "INVALID_QUERY",
            r#"filters: "customer_id" has an empty list of values; give at least one"#,
        ),
        (
            json!({"customer_id": too_many}),
            400,
            "QUERY_LIMIT_EXCEEDED",
            r#"filters: "customer_id" has 1001 values, more than the maximum of 1000"#,
        ),
        (
            json!({"customer_id": ["c1", "x".repeat(257)]}),
            400,
            "INVALID_QUERY",
            r#"filters: value of "customer_id" is longer than the longest dimension value (256 characters)"#,
        ),
        (
            json!({"customer_id": ["c1", "a\u{0}b"]}),
            400,
            "INVALID_QUERY",
            r#"filters: value of "customer_id" contains a control character"#,
        ),
    ] {
        let answer = query(filters.clone());
        assert_eq!(error(&answer), (status, code, message), "{filters}");
    }
    for (filters, why) in [
        (
            json!({"customer_id": ["c1", 2]}),
            "invalid type: integer `2`, expected a string",
        ),
        (
            json!({"customer_id": [["c1"]]}),
            "invalid type: sequence, expected a string",
        ),
        (
            json!({"customer_id": null}),
            "expected a string or an array of strings",
        ),
    ] {
        let answer = query(filters.clone());
        let (status, code, message) = error(&answer);
        assert_eq!(
            (status, code),
            (400, "INVALID_QUERY"),
            "{filters}: {}",
            answer.1
        );
        assert!(message.contains(why), "{filters}: {message}");
    }
    // 1000 values, `""` and repeats among them, are one valid filter.
    let mut most: Vec<String> = (0..999).map(|i| format!("c{i}")).collect();
    most.push(String::new());
    most[5] = "c1".into();
    let (status, body) = query(json!({"customer_id": most}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 1, "{body}");
}

/// A `listDimensionValues` query's answer.
fn list(server: &Luminate, fields: Value) -> Value {
    let mut query = json!({"queryType": "listDimensionValues", "metricName": "api_requests",
        "dimension": "customer_id"});
    for (k, v) in fields.as_object().unwrap() {
        query[k] = v.clone();
    }
    let mut body = server.query(&query);
    assert!(body["executionTimeMs"].is_u64(), "{body}");
    body.as_object_mut().unwrap().remove("executionTimeMs");
    body
}

fn list_dimension_values_answers_as_the_discovery_route(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t0 = minute_base();
    // Points per customer: cust_2 3, cust_10 2, cust_1 2, cust_3 1; one point without the key.
    let mut points = Vec::new();
    for (i, customer) in [
        "cust_2", "cust_10", "cust_2", "cust_1", "cust_3", "cust_2", "cust_10", "cust_1",
    ]
    .iter()
    .enumerate()
    {
        points.push(point(
            "api_requests",
            t0 + i as i64 * 1_000,
            1.0,
            &[("customer_id", customer)],
        ));
    }
    points.push(point("api_requests", t0, 1.0, &[("region", "eu")]));
    assert_eq!(server.write(&points).0, 200);

    let route = |query: &str| {
        let (status, body) = server.get(&format!(
            "/api/v1/metrics/api_requests/dimensions/customer_id/values{query}"
        ));
        assert_eq!(status, 200, "{body}");
        body["values"].clone()
    };
    let all = json!([
        {"value": "cust_2", "points": 3},
        {"value": "cust_1", "points": 2},
        {"value": "cust_10", "points": 2},
        {"value": "cust_3", "points": 1},
    ]);
    assert_eq!(route(""), all);
    for (fields, query, truncated) in [
        (json!({}), "", false),
        (json!({"limit": 4}), "?limit=4", false),
        (json!({"limit": 2}), "?limit=2", true),
        (json!({"prefix": "cust_1"}), "?prefix=cust_1", false),
        (
            json!({"prefix": "cust_1", "limit": 1}),
            "?prefix=cust_1&limit=1",
            true,
        ),
        (
            json!({"prefix": "cust_3", "limit": 1}),
            "?prefix=cust_3&limit=1",
            false,
        ),
        (json!({"prefix": "nobody"}), "?prefix=nobody", false),
        (json!({"timeout": "5s"}), "", false),
    ] {
        assert_eq!(
            list(&server, fields.clone()),
            json!({"queryType": "listDimensionValues", "results": route(query), "truncated": truncated}),
            "{fields}"
        );
    }
    assert_eq!(
        list(&server, json!({"limit": 2}))["results"],
        json!([all[0], all[1]])
    );
    assert_eq!(
        list(&server, json!({"dimension": "absent_key"})),
        json!({"queryType": "listDimensionValues", "results": [], "truncated": false})
    );
    // An unknown metric has no values, as any query of it has no points (the route says 404).
    assert_eq!(
        list(&server, json!({"metricName": "ghost"})),
        json!({"queryType": "listDimensionValues", "results": [], "truncated": false})
    );
    assert_eq!(
        server
            .get("/api/v1/metrics/ghost/dimensions/customer_id/values")
            .0,
        404
    );

    let refused = |fields: Value| {
        let mut query = json!({"queryType": "listDimensionValues", "metricName": "api_requests",
            "dimension": "customer_id"});
        for (k, v) in fields.as_object().unwrap() {
            query[k] = v.clone();
        }
        server.post_json("/api/v1/query", &query)
    };
    for (fields, status, code, starts) in [
        (
            json!({"timeRange": {"relative": "1h"}}),
            400,
            "INVALID_QUERY",
            "timeRange: listDimensionValues counts every stored point",
        ),
        (
            json!({"filters": {"region": "eu"}}),
            400,
            "INVALID_QUERY",
            "listDimensionValues takes metricName, dimension, limit, prefix and timeout",
        ),
        (
            json!({"limit": 0}),
            400,
            "INVALID_QUERY",
            "limit must be at least 1",
        ),
        (
            json!({"limit": 1001}),
            400,
            "QUERY_LIMIT_EXCEEDED",
            "limit 1001 exceeds the maximum of 1000 values",
        ),
        (
            json!({"dimension": null}),
            400,
            "INVALID_QUERY",
            "dimension is required",
        ),
        (
            json!({"dimension": "not-a-key"}),
            400,
            "INVALID_QUERY",
            r#"dimension: "not-a-key" is not a valid dimension key"#,
        ),
    ] {
        let answer = refused(fields.clone());
        let (s, c, message) = error(&answer);
        assert_eq!((s, c), (status, code), "{fields}: {}", answer.1);
        assert!(message.starts_with(starts), "{fields}: {message}");
    }
}
