//! Request input at its limits, end to end on every backend: durations and timestamps that cannot be
//! represented (or once wrapped to negative numbers) are refused naming the field, a rate over a rising
//! counter is never negative whatever the interval, and bodies in shapes the contract does not accept
//! (arrays in place of objects, repeated keys) are refused without storing anything.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

on_each_backend!(
    unrepresentable_query_times_are_invalid_query_naming_the_field,
    admin_delete_before_out_of_range_deletes_nothing,
    extreme_write_timestamps_are_rejected_per_point,
    rate_over_a_rising_counter_is_never_negative,
    array_bodies_are_refused_and_store_nothing,
    repeated_dimension_key_is_rejected_per_point,
    repeated_filter_key_and_array_query_bodies_are_invalid_query
);

use common::{Answer, Backend, Luminate, now_ms, point};
use serde_json::{Value, json};

/// `(status, code, message)` of an error answer.
fn error(answer: &Answer) -> (u16, &str, &str) {
    let (status, body) = answer;
    (
        *status,
        body["error"]["code"].as_str().unwrap_or("(none)"),
        body["error"]["message"].as_str().unwrap_or("(none)"),
    )
}

/// Asserts a `400 INVALID_QUERY` whose message starts with `field: ` and contains `why`.
fn assert_invalid_query(answer: &Answer, field: &str, why: &str) {
    let (status, code, message) = error(answer);
    assert_eq!((status, code), (400, "INVALID_QUERY"), "{}", answer.1);
    assert!(
        message.starts_with(&format!("{field}: ")) && message.contains(why),
        "expected {field}: …{why}…, got {message:?}"
    );
    assert_eq!(answer.1["error"]["details"], json!({}), "{}", answer.1);
}

fn post_text(server: &Luminate, path: &str, body: &str) -> Answer {
    server.post_raw(
        path,
        &[("content-type", "application/json")],
        body.as_bytes().to_vec(),
    )
}

/// Start of a minute at least 30 minutes ago: buckets are predictable and every point is writable.
fn minute_base() -> i64 {
    (now_ms() - 30 * 60_000) / 60_000 * 60_000
}

fn unrepresentable_query_times_are_invalid_query_naming_the_field(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t0 = minute_base();
    assert_eq!(server.write(&[point("counter", t0, 1.0, &[])]).0, 200);
    let rate = |field: &str, value: Value| {
        let mut query = json!({"queryType": "rate", "metricName": "counter",
            "timeRange": {"start": t0, "end": t0 + 60_000}, "interval": "1m"});
        query[field] = value;
        server.post_json("/api/v1/query", &query)
    };

    // u64::MAX - 59 999 ms: taken as i64 milliseconds this was an interval of -60 s.
    for interval in [
        "18446744073709491616ms",
        "18446744073709551615ms",
        "99999999999999999999d",
    ] {
        assert_invalid_query(
            &rate("interval", json!(interval)),
            "interval",
            "longer than the maximum of 36500d",
        );
    }
    for relative in ["99999999999999999999d", "18446744073709551615s"] {
        assert_invalid_query(
            &rate("timeRange", json!({"relative": relative})),
            "timeRange.relative",
            "longer than the maximum of 36500d",
        );
    }
    for timeout in ["18446744073709551615ms", "99999999999999999999s"] {
        assert_invalid_query(
            &rate("timeout", json!(timeout)),
            "timeout",
            "longer than the maximum of 36500d",
        );
    }
    for (start, end, field) in [
        (json!(i64::MIN), json!(t0), "timeRange.start"),
        (json!("-9223372036854775808"), json!(t0), "timeRange.start"),
        (json!("0000-01-01T00:00:00Z"), json!(t0), "timeRange.start"),
        (json!(t0), json!(i64::MAX), "timeRange.end"),
        (json!(t0), json!("9999-12-31T23:59:59Z"), "timeRange.end"),
        (json!(t0), json!("99999999999999999999"), "timeRange.end"),
    ] {
        assert_invalid_query(
            &rate("timeRange", json!({"start": start, "end": end})),
            field,
            "out of range",
        );
    }
    // Representable but past a limit keeps the limit's code.
    let over_limit = rate("timeout", json!("36500d"));
    let (status, code, _) = error(&over_limit);
    assert_eq!((status, code), (400, "QUERY_LIMIT_EXCEEDED"));
}

fn admin_delete_before_out_of_range_deletes_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t0 = minute_base();
    let points = [point("kept", t0, 1.0, &[]), point("kept", t0 + 1, 2.0, &[])];
    assert_eq!(server.write(&points).0, 200);
    for before in [
        "-9223372036854775808",
        "9223372036854775807",
        "-1",
        "99999999999999999999",
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
    ] {
        let answer = server.delete(&format!("/api/v1/admin/metrics/kept?before={before}"));
        assert_invalid_query(&answer, "before", "out of range");
    }
    assert_invalid_query(
        &server.delete("/api/v1/admin/metrics/kept?before=yesterday"),
        "before",
        "invalid timestamp",
    );
    assert_eq!(server.count("kept"), 2);

    // retention_days: past the maximum, or not a u64 at all, is refused naming the field.
    for days in [json!(36_501), json!(u64::MAX), json!(-1), json!(1.5)] {
        let answer = server.post_json(
            "/api/v1/admin/retention",
            &json!({"metric_name": "kept", "retention_days": days}),
        );
        let (status, code, message) = error(&answer);
        assert_eq!((status, code), (400, "INVALID_REQUEST"), "{days}");
        assert!(message.contains("retention_days"), "{days}: {message}");
    }
    assert_eq!(server.count("kept"), 2);
}

fn extreme_write_timestamps_are_rejected_per_point(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let now = now_ms();
    let extremes = [
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(-1),
        json!(0),
        json!("-9223372036854775808"),
        json!("99999999999999999999"),
        json!("9999-12-31T23:59:59Z"),
        json!("0000-01-01T00:00:00Z"),
    ];
    let mut points: Vec<Value> = extremes
        .iter()
        .map(|ts| json!({"name": "edge", "timestamp": ts, "value": 1.0}))
        .collect();
    points.push(point("edge", now, 2.0, &[]));
    let (status, body) = server.write(&points);
    assert_eq!(status, 207, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(1), json!(9))
    );
    let errors = body["errors"].as_array().unwrap();
    for (i, e) in errors.iter().enumerate() {
        assert_eq!(
            (e["index"].clone(), e["code"].clone(), e["metric"].clone()),
            (json!(i), json!("INVALID_TIMESTAMP"), json!("edge")),
            "{e}"
        );
    }
    assert_eq!(server.count("edge"), 1);
}

fn rate_over_a_rising_counter_is_never_negative(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let t0 = minute_base();
    // +10 every 10 s for 5 minutes: 1/s throughout.
    let points: Vec<Value> = (0..=30)
        .map(|i| point("rising", t0 + i * 10_000, (i * 10) as f64, &[]))
        .collect();
    assert_eq!(server.write(&points).0, 200);
    let rate = |interval: &str| {
        server.post_json(
            "/api/v1/query",
            &json!({"queryType": "rate", "metricName": "rising", "interval": interval,
                "timeRange": {"start": t0, "end": t0 + 301_000}}),
        )
    };
    let rates = |answer: &Answer| -> Vec<(i64, f64)> {
        assert_eq!(answer.0, 200, "{}", answer.1);
        answer.1["results"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["timestamp"].as_i64().unwrap(),
                    p["rate"].as_f64().unwrap(),
                )
            })
            .collect()
    };

    // The first minute holds 5 increases (its first point has no predecessor), the last one 1.
    let m = 60_000;
    assert_eq!(
        rates(&rate("1m")),
        vec![
            (t0, 50.0 / 60.0),
            (t0 + m, 1.0),
            (t0 + 2 * m, 1.0),
            (t0 + 3 * m, 1.0),
            (t0 + 4 * m, 1.0),
            (t0 + 5 * m, 10.0 / 60.0),
        ]
    );
    // The longest interval is one bucket from the epoch: harmless, and still positive. The rate is
    // 300 over 36 500 days in seconds, up to the last bit (backends divide in different orders).
    let longest = rates(&rate("36500d"));
    let expected = 300.0 / 3_153_600_000.0;
    assert_eq!(longest.len(), 1, "{longest:?}");
    assert_eq!(longest[0].0, 0);
    assert!(
        (longest[0].1 - expected).abs() <= expected * 1e-15,
        "{longest:?}"
    );
    for interval in ["1s", "10s", "7s", "1h", "1w"] {
        let answer = rate(interval);
        let rates = rates(&answer);
        assert!(!rates.is_empty(), "{interval}: {}", answer.1);
        assert!(
            rates.iter().all(|(_, r)| *r > 0.0),
            "{interval}: {}",
            answer.1
        );
    }
    // The interval that wrapped to -60 s (a rate of -10/s) and the one that wrapped to -1 ms.
    for wrapped in ["18446744073709491616ms", "18446744073709551615ms"] {
        assert_invalid_query(&rate(wrapped), "interval", "longer than the maximum");
    }
}

fn array_bodies_are_refused_and_store_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let ts = now_ms();
    let object = format!(r#"{{"name":"shaped","timestamp":{ts},"value":1.5}}"#);
    for body in [
        format!(r#"[[["shaped",{ts},1.5,{{"a":"b"}}]]]"#),
        format!(r#"[{{"metrics":[{object}]}}]"#),
        format!(r#"{{"metrics":[["shaped",{ts},1]]}}"#),
        format!(r#"{{"metrics":[{object},["shaped",{ts},1]]}}"#),
        format!(r#"{{"metrics":[{object}],"metrics":[{object}]}}"#),
        format!(r#"{{"metrics":[{{"name":"shaped","timestamp":{ts},"value":1,"value":2}}]}}"#),
    ] {
        let answer = post_text(&server, "/api/v1/write", &body);
        let (status, code, message) = error(&answer);
        assert_eq!(
            (status, code),
            (400, "INVALID_REQUEST"),
            "{body}: {}",
            answer.1
        );
        assert!(message.contains("byte offset"), "{body}: {message}");
    }
    assert_eq!(server.count("shaped"), 0);
    let answer = post_text(&server, "/api/v1/admin/retention", r#"["shaped", 1]"#);
    let (status, code, _) = error(&answer);
    assert_eq!((status, code), (400, "INVALID_REQUEST"), "{}", answer.1);
    // The same point as an object is stored.
    let answer = post_text(
        &server,
        "/api/v1/write",
        &format!(r#"{{"metrics":[{object}]}}"#),
    );
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(server.count("shaped"), 1);
}

fn repeated_dimension_key_is_rejected_per_point(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let ts = now_ms();
    let repeated = format!(
        r#"{{"name":"dup","timestamp":{ts},"value":1,"dimensions":{{"a":"x","b":"z","a":"y"}}}}"#
    );
    let fine =
        format!(r#"{{"name":"dup","timestamp":{ts},"value":2,"dimensions":{{"a":"x","b":"z"}}}}"#);
    let rejection = |index: usize| {
        json!({"index": index, "metric": "dup", "code": "INVALID_DIMENSION",
            "error": "dimension key \"a\" is repeated"})
    };
    let (status, body) = post_text(
        &server,
        "/api/v1/write",
        &format!(r#"{{"metrics":[{fine},{repeated},{fine}]}}"#),
    );
    assert_eq!(
        (status, body),
        (
            207,
            json!({"accepted": 2, "rejected": 1, "errors": [rejection(1)]})
        )
    );
    let (status, body) = post_text(
        &server,
        "/api/v1/write",
        &format!(r#"{{"metrics":[{repeated}]}}"#),
    );
    assert_eq!(
        (status, body),
        (
            400,
            json!({"accepted": 0, "rejected": 1, "errors": [rejection(0)]})
        )
    );
    assert_eq!(server.count("dup"), 2);
    // Neither value of the repeated key was stored under it.
    let answer = server.query(&json!({"queryType": "aggregate", "metricName": "dup",
        "aggregation": "sum", "groupBy": ["a"], "timeRange": {"relative": "1h"}}));
    let groups: Vec<Value> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| json!([g["groupKey"], g["value"]]))
        .collect();
    assert_eq!(groups, vec![json!([{"a": "x"}, 4.0])]);
}

fn repeated_filter_key_and_array_query_bodies_are_invalid_query(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    assert_eq!(
        server.write(&[point("q", now_ms(), 1.0, &[("k", "a")])]).0,
        200
    );
    let query = |body: &str| post_text(&server, "/api/v1/query", body);

    let answer = query(
        r#"{"queryType":"range","metricName":"q","timeRange":{"relative":"1h"},
            "filters":{"k":"a","k":"b"}}"#,
    );
    let (status, code, message) = error(&answer);
    assert_eq!((status, code), (400, "INVALID_QUERY"));
    assert!(
        message.contains(r#"filters: key "k" is repeated"#),
        "{message}"
    );

    for (body, why) in [
        (
            r#"["range","q",{"relative":"1h"}]"#,
            "invalid type: sequence, expected a JSON object",
        ),
        (
            r#"{"queryType":"range","metricName":"q","timeRange":[null,null,"1h"]}"#,
            "invalid type: sequence, expected a JSON object",
        ),
        (
            r#"{"queryType":"range","metricName":"q","metricName":"q","timeRange":{"relative":"1h"}}"#,
            "duplicate field `metricName`",
        ),
        (
            r#"{"queryType":"range","metricName":"q","timeRange":{"relative":"1h","relative":"2h"}}"#,
            "duplicate field `relative`",
        ),
    ] {
        let answer = query(body);
        let (status, code, message) = error(&answer);
        assert_eq!((status, code), (400, "INVALID_QUERY"), "{body}");
        assert!(message.contains(why), "{body}: {message}");
    }
    // The same query, well formed, answers.
    let answer = query(
        r#"{"queryType":"range","metricName":"q","timeRange":{"relative":"1h"},"filters":{"k":"a"}}"#,
    );
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["results"].as_array().unwrap().len(), 1);
}
