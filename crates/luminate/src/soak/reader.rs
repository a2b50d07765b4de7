//! The soak's readers: every kind of question the API answers, asked in turn over the recent data while
//! the writers write and the server is killed — the JSON query language (each aggregation shape, raw
//! points, rate, dimension values), discovery, the Prometheus query API, the streaming export and health.
//! Each answer is sorted into ok, interrupted by a kill (the request met a server going down) or a
//! problem (anything else that is not a success: the server's fault), with its latency.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use luminate_model::testkit::Rng;
use serde_json::{Value, json};

use super::problems::Problems;
use super::target::Target;
use super::writer::{METRIC, REGIONS};
use crate::bench::http;

/// How a question is asked.
enum Request {
    /// POST of a JSON body to a path.
    Post(&'static str, Value),
    /// GET of a path with its query string.
    Get(String),
}

/// The kinds of question, by name, in the order the readers take them.
pub const KINDS: [&str; 17] = [
    "aggregate avg by customer_id, top 10 (5 min)",
    "aggregate p95 by customer_id, top 100 (1 min)",
    "aggregate count by region, 10 s buckets (5 min)",
    "aggregate sum by endpoint, region any-of (5 min)",
    "aggregate integral by region (1 min)",
    "range: one customer's raw points (1 min)",
    "rate by region, 10 s buckets (1 min)",
    "listDimensionValues customer_id by prefix",
    "discovery: metrics",
    "discovery: dimension values of customer_id",
    "discovery: cardinality",
    "PromQL instant: sum by (region) (count_over_time[1m])",
    "PromQL range: one customer's rate[1m] by endpoint",
    "Prometheus series of one customer",
    "Prometheus label values of region",
    "export: one customer (10 s)",
    "health",
];

/// Builds question `kind` (an index into [`KINDS`]).
fn request(kind: usize, number: u64) -> Request {
    let last = |span: &str| json!({"relative": span});
    let aggregate = |aggregation: &str, by: &[&str], span: &str| {
        json!({"queryType": "aggregate", "metricName": METRIC, "timeRange": last(span),
            "aggregation": aggregation, "groupBy": by})
    };
    let customer = format!("cust_{number}");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match kind {
        0 => {
            let mut q = aggregate("avg", &["customer_id"], "5m");
            q["limit"] = json!(10);
            Request::Post("/api/v1/query", q)
        }
        // p95 and rate hold every point of their range (an exact quantile, consecutive pairs): over 5
        // minutes of this metric (60 M points) they pass the query memory budget and answer 400.
        1 => Request::Post("/api/v1/query", aggregate("p95", &["customer_id"], "1m")),
        2 => {
            let mut q = aggregate("count", &["region"], "5m");
            q["interval"] = json!("10s");
            Request::Post("/api/v1/query", q)
        }
        3 => {
            let mut q = aggregate("sum", &["endpoint"], "5m");
            q["filters"] = json!({"region": [REGIONS[0], REGIONS[1]]});
            Request::Post("/api/v1/query", q)
        }
        4 => Request::Post("/api/v1/query", aggregate("integral", &["region"], "1m")),
        5 => Request::Post(
            "/api/v1/query",
            json!({"queryType": "range", "metricName": METRIC, "timeRange": last("1m"),
                "filters": {"customer_id": customer}}),
        ),
        6 => Request::Post(
            "/api/v1/query",
            json!({"queryType": "rate", "metricName": METRIC, "timeRange": last("1m"),
                "interval": "10s", "groupBy": ["region"]}),
        ),
        7 => Request::Post(
            "/api/v1/query",
            json!({"queryType": "listDimensionValues", "metricName": METRIC,
                "dimension": "customer_id", "limit": 20, "prefix": format!("cust_{}", number % 10)}),
        ),
        8 => Request::Get("/api/v1/metrics".into()),
        9 => Request::Get(format!(
            "/api/v1/metrics/{METRIC}/dimensions/customer_id/values?limit=100"
        )),
        10 => Request::Get(format!("/api/v1/cardinality?metric={METRIC}")),
        // Pushed down into the store's group-by (every point of the last minute counted).
        11 => Request::Get(format!(
            "/prometheus/api/v1/query?query=sum%20by%20(region)%20(count_over_time({METRIC}%5B1m%5D))\
             &time={now_s}"
        )),
        // Evaluated on raw samples: one customer's 15 series (an unfiltered selector over this dense
        // metric reads more than the 1 000 000 samples a PromQL query may, and answers 422).
        12 => Request::Get(format!(
            "/prometheus/api/v1/query_range?query=sum%20by%20(endpoint)%20(rate({METRIC}\
             %7Bcustomer_id%3D%22{customer}%22%7D%5B1m%5D))&start={}&end={now_s}&step=15",
            now_s.saturating_sub(300)
        )),
        13 => Request::Get(format!(
            "/prometheus/api/v1/series?match%5B%5D={METRIC}%7Bcustomer_id%3D%22{customer}%22%7D\
             &start={}&end={now_s}",
            now_s.saturating_sub(300)
        )),
        14 => Request::Get(format!(
            "/prometheus/api/v1/label/region/values?start={}&end={now_s}",
            now_s.saturating_sub(300)
        )),
        15 => Request::Post(
            "/api/v1/export",
            json!({"metricName": METRIC, "timeRange": last("10s"),
                "filters": {"customer_id": customer}}),
        ),
        _ => Request::Get("/api/v1/health".into()),
    }
}

/// What one kind of question met.
#[derive(Debug, Clone, Default)]
pub struct KindFigures {
    /// Successful answers.
    pub ok: u64,
    /// Requests that met a kill.
    pub interrupted: u64,
    /// Failures while the server was up.
    pub failed: u64,
    /// Latency of each successful answer, ms.
    pub latencies_ms: Vec<f64>,
}

/// The figures of every kind, shared by the readers.
#[derive(Debug)]
pub struct Readings {
    kinds: Mutex<Vec<KindFigures>>,
}

impl Default for Readings {
    fn default() -> Self {
        Self {
            kinds: Mutex::new(vec![KindFigures::default(); KINDS.len()]),
        }
    }
}

impl Readings {
    /// The figures of each kind, in [`KINDS`] order.
    pub fn snapshot(&self) -> Vec<KindFigures> {
        self.kinds.lock().map(|k| k.clone()).unwrap_or_default()
    }

    fn record(&self, kind: usize, update: impl FnOnce(&mut KindFigures)) {
        if let Ok(mut kinds) = self.kinds.lock() {
            update(&mut kinds[kind]);
        }
    }
}

/// Runs reader `id` of `readers` until `stop`, pausing `pause` between questions; `customers` bounds
/// the customers asked about.
#[allow(
    clippy::too_many_arguments,
    reason = "the run's shared state, passed by reference"
)]
pub fn run(
    id: usize,
    readers: usize,
    pause: Duration,
    customers: u32,
    target: &Target,
    readings: &Readings,
    stop: &AtomicBool,
    problems: &Problems,
) {
    let agent = http::agent();
    let mut rng = Rng::new(0x736F_616B ^ id as u64);
    let mut turn = id;
    while !stop.load(Ordering::SeqCst) {
        let kind = turn % KINDS.len();
        turn += readers.max(1);
        let (generation, url) = target.current();
        if generation % 2 == 1 {
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        let started = Instant::now();
        let answer = match request(kind, rng.below(u64::from(customers.max(1)))) {
            Request::Post(path, body) => http::post(
                &agent,
                &format!("{url}{path}"),
                &[("content-type", "application/json")],
                body.to_string().as_bytes(),
            ),
            Request::Get(path) => http::get(&agent, &format!("{url}{path}")),
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match answer {
            Ok((200, _)) => readings.record(kind, |k| {
                k.ok += 1;
                k.latencies_ms.push(ms);
            }),
            _ if target.disturbed(generation) => readings.record(kind, |k| k.interrupted += 1),
            Ok((status, body)) => {
                readings.record(kind, |k| k.failed += 1);
                let body: String = body.chars().take(300).collect();
                problems.push(format!("{} answered {status}: {body}", KINDS[kind]));
            }
            Err(e) => {
                readings.record(kind, |k| k.failed += 1);
                problems.push(format!("{}: {e}", KINDS[kind]));
            }
        }
        thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_request() {
        let described: Vec<String> = (0..KINDS.len())
            .map(|kind| match request(kind, 7) {
                Request::Post(path, body) => format!("POST {path} {body}"),
                Request::Get(path) => {
                    // The time parameters move with the clock; the rest must differ.
                    path.split("&start=")
                        .next()
                        .unwrap_or_default()
                        .split("&time=")
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                }
            })
            .collect();
        let mut distinct = described.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), KINDS.len(), "{described:#?}");
        assert!(matches!(request(KINDS.len() - 1, 0), Request::Get(p) if p == "/api/v1/health"));
    }
}
