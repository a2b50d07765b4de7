//! The fixed query set of the benchmark: each query's HTTP request, how its answer reduces to an
//! [`Answer`], and the timed runs (client-side wall time of the whole exchange, `repeat` times; median
//! and minimum). Every query is timed over the dataset's exact hour, `[hour_start, hour_start + 1 h)`,
//! never a relative range, so the answers do not move while the benchmark runs.

use std::time::Instant;

use serde_json::{Value, json};

use super::BenchError;
use super::answers::{
    Answer, FILTER_REGION, Group, RANGE_LIMIT, RatePoint, Reference, TOP, TYPICAL_CUSTOMER_RANK,
    VALUES_LIMIT,
};
use super::dataset::{COUNTER_METRIC, LATENCY_METRIC};
use super::http;

/// How a query is asked.
#[derive(Debug, Clone)]
pub enum Request {
    /// `POST /api/v1/query` with this body.
    Query(Value),
    /// `GET` of this path.
    Get(String),
}

/// How its answer is read.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Range,
    Groups(&'static [&'static str]),
    Rates(&'static [&'static str]),
    Values,
    Cardinality,
}

/// One query of the set.
#[derive(Debug, Clone)]
pub struct Query {
    /// Stable name (report key, and the peer script's key).
    pub name: &'static str,
    /// What it asks, in words.
    pub description: String,
    /// The request.
    pub request: Request,
    shape: Shape,
}

/// The ten queries of the issue (the range query twice: the busiest and a typical customer), over the reference's hour and parameters.
pub fn query_set(reference: &Reference) -> Vec<Query> {
    let range = json!({"start": reference.start, "end": reference.end});
    let aggregate = |aggregation: &str, group_by: &[&str], limit: Option<usize>| {
        let mut body = json!({"queryType": "aggregate", "metricName": LATENCY_METRIC,
            "timeRange": range, "aggregation": aggregation, "groupBy": group_by});
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        body
    };
    let mut p99 = aggregate("p99", &["endpoint"], None);
    p99["filters"] = json!({"region": FILTER_REGION});
    let rate = |group_by: &[&str]| {
        json!({"queryType": "rate", "metricName": COUNTER_METRIC, "timeRange": range,
            "interval": "1m", "groupBy": group_by})
    };
    let query = |name, description: String, body: Value, shape| Query {
        name,
        description,
        request: Request::Query(body),
        shape,
    };
    let raw_points = |name, customer: &str, which: String| {
        query(
            name,
            format!("range: raw points of {customer} ({which})"),
            json!({"queryType": "range", "metricName": LATENCY_METRIC, "timeRange": range,
                "filters": {"customer_id": customer}}),
            Shape::Range,
        )
    };
    vec![
        raw_points(
            "range_top_customer",
            &reference.top_customer,
            format!("first {RANGE_LIMIT}"),
        ),
        raw_points(
            "range_typical_customer",
            &reference.typical_customer,
            format!("{TYPICAL_CUSTOMER_RANK}th by points"),
        ),
        query(
            "avg_by_customer_top10",
            format!("avg by customer_id, top {TOP}"),
            aggregate("avg", &["customer_id"], Some(TOP)),
            Shape::Groups(&["customer_id"]),
        ),
        query(
            "count_by_customer_top10",
            format!("count by customer_id, top {TOP}"),
            aggregate("count", &["customer_id"], Some(TOP)),
            Shape::Groups(&["customer_id"]),
        ),
        query(
            "p95_by_customer_top10",
            format!("p95 by customer_id, top {TOP}"),
            aggregate("p95", &["customer_id"], Some(TOP)),
            Shape::Groups(&["customer_id"]),
        ),
        query(
            "p99_by_endpoint_region",
            format!("p99 by endpoint where region = {FILTER_REGION}"),
            p99,
            Shape::Groups(&["endpoint"]),
        ),
        query(
            "sum_by_region_status",
            "sum by region, status_code".to_owned(),
            aggregate("sum", &["region", "status_code"], None),
            Shape::Groups(&["region", "status_code"]),
        ),
        query(
            "rate",
            format!("rate of {COUNTER_METRIC}, 1m buckets"),
            rate(&[]),
            Shape::Rates(&[]),
        ),
        query(
            "rate_by_region",
            format!("rate of {COUNTER_METRIC} by region, 1m buckets"),
            rate(&["region"]),
            Shape::Rates(&["region"]),
        ),
        Query {
            name: "top_values_customer",
            description: format!("top {VALUES_LIMIT} customer_id values"),
            request: Request::Get(format!(
                "/api/v1/metrics/{LATENCY_METRIC}/dimensions/customer_id/values?limit={VALUES_LIMIT}"
            )),
            shape: Shape::Values,
        },
        Query {
            name: "series_count",
            description: format!("series count of {LATENCY_METRIC}"),
            request: Request::Get(format!("/api/v1/cardinality?metric={LATENCY_METRIC}")),
            shape: Shape::Cardinality,
        },
    ]
}

/// Timings and the last answer of one query.
#[derive(Debug, Clone)]
pub struct Timed {
    /// Client-side latencies of each run, in ms.
    pub runs_ms: Vec<f64>,
    /// The server's own `executionTimeMs` of each run (query routes only).
    pub server_ms: Vec<f64>,
    /// The answer of the last run.
    pub answer: Answer,
}

/// Runs `query` `repeat` times; every run must answer 200 with a readable body.
pub fn run(base_url: &str, query: &Query, repeat: usize) -> Result<Timed, BenchError> {
    let agent = http::agent();
    let mut runs_ms = Vec::with_capacity(repeat);
    let mut server_ms = Vec::new();
    let mut answer = None;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let (status, text) = match &query.request {
            Request::Query(body) => http::post(
                &agent,
                &format!("{base_url}/api/v1/query"),
                &[("content-type", "application/json")],
                body.to_string().as_bytes(),
            )?,
            Request::Get(path) => http::get(&agent, &format!("{base_url}{path}"))?,
        };
        runs_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let bad = |detail: String| BenchError::Status {
            request: query.name.to_owned(),
            status,
            body: detail,
        };
        if status != 200 {
            return Err(bad(text.chars().take(2_000).collect()));
        }
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("answer is not JSON ({e}): {:.200}", text)))?;
        if let Some(ms) = body.get("executionTimeMs").and_then(Value::as_f64) {
            server_ms.push(ms);
        }
        answer = Some(read_answer(query.shape, &body).map_err(bad)?);
    }
    let answer = answer.ok_or_else(|| BenchError::Server("no query run".into()))?;
    Ok(Timed {
        runs_ms,
        server_ms,
        answer,
    })
}

fn field<'a>(value: &'a Value, name: &str) -> Result<&'a Value, String> {
    value
        .get(name)
        .ok_or_else(|| format!("answer lacks {name:?}"))
}

fn array<'a>(value: &'a Value, name: &str) -> Result<&'a Vec<Value>, String> {
    field(value, name)?
        .as_array()
        .ok_or_else(|| format!("{name:?} is not an array"))
}

fn number(value: &Value, name: &str) -> Result<f64, String> {
    field(value, name)?
        .as_f64()
        .ok_or_else(|| format!("{name:?} is not a number"))
}

fn integer(value: &Value, name: &str) -> Result<i64, String> {
    field(value, name)?
        .as_i64()
        .ok_or_else(|| format!("{name:?} is not an integer"))
}

/// The groupBy values of a `groupKey`, in groupBy order.
fn key_of(result: &Value, group_by: &[&str]) -> Result<Vec<String>, String> {
    let key = field(result, "groupKey")?;
    group_by
        .iter()
        .map(|k| {
            key.get(*k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("groupKey lacks {k:?}: {key}"))
        })
        .collect()
}

/// Reduces a 200 answer to its [`Answer`].
fn read_answer(shape: Shape, body: &Value) -> Result<Answer, String> {
    match shape {
        Shape::Range => {
            let results = array(body, "results")?;
            let mut value_tenths = 0i64;
            for p in results {
                value_tenths += (number(p, "value")? * 10.0).round() as i64;
            }
            Ok(Answer::Range {
                points: results.len() as u64,
                truncated: field(body, "truncated")?.as_bool().unwrap_or(false),
                first_ts: results.first().map_or(Ok(0), |p| integer(p, "timestamp"))?,
                last_ts: results.last().map_or(Ok(0), |p| integer(p, "timestamp"))?,
                value_tenths,
            })
        }
        Shape::Groups(group_by) => array(body, "results")?
            .iter()
            .map(|g| {
                Ok(Group {
                    key: key_of(g, group_by)?,
                    value: number(g, "value")?,
                    count: integer(g, "count")? as u64,
                })
            })
            .collect::<Result<_, String>>()
            .map(Answer::Groups),
        Shape::Rates(group_by) => {
            let mut points = Vec::new();
            for g in array(body, "results")? {
                let key = key_of(g, group_by)?;
                for p in array(g, "points")? {
                    points.push(RatePoint {
                        key: key.clone(),
                        timestamp: integer(p, "timestamp")?,
                        rate: number(p, "rate")?,
                    });
                }
            }
            Ok(Answer::Rates(points))
        }
        Shape::Values => array(body, "values")?
            .iter()
            .map(|v| {
                let value = field(v, "value")?
                    .as_str()
                    .ok_or("value is not a string")?
                    .to_owned();
                Ok((value, integer(v, "points")? as u64))
            })
            .collect::<Result<_, String>>()
            .map(Answer::Values),
        Shape::Cardinality => {
            let metric = array(body, "metrics")?
                .first()
                .ok_or("no metric in the cardinality answer")?;
            let mut distinct = array(metric, "dimensions")?
                .iter()
                .map(|d| {
                    let key = field(d, "key")?
                        .as_str()
                        .ok_or("key is not a string")?
                        .to_owned();
                    Ok((key, integer(d, "distinct_values")? as u64))
                })
                .collect::<Result<Vec<_>, String>>()?;
            distinct.sort();
            Ok(Answer::Cardinality {
                series: integer(metric, "series")? as u64,
                distinct,
            })
        }
    }
}
