//! Prometheus remote write end to end, on every backend: a real Prometheus (Debian's 2.42) scrapes a target served by the
//! test every second — 1 000 customer-labelled series, a counter, a histogram, a recording-rule style
//! name with `:`, and a series that disappears after a few scrapes — and remote-writes to the real
//! binary with a bearer token (auth on). Once the target goes away, every series' sample count in
//! Luminate equals what Prometheus holds (asked through its HTTP API), the counter's samples sum to the
//! same total, the stale markers were counted as dropped, not stored, and Prometheus logged no
//! non-recoverable error.
//!
//! The second scenario makes Prometheus resend (docs/ingest.md, "Retries and resends"): a proxy loses
//! the answers to requests Luminate served, then Luminate is killed (`SIGKILL`) for 30 s mid-run and
//! restarted over the same data. Prometheus retries all along; afterwards every series' sample count
//! still equals Prometheus' own — no gap, no duplicate. About 50 s per backend.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod deploy_files;
mod tenant_client;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::prometheus::Prometheus;
use common::{Backend, Luminate};
use deploy_files::require;
use serde_json::json;
use tenant_client::{Client, token, with_secret};

const CUSTOMERS: usize = 1_000;
/// Scrapes that still show the vanishing series.
const VANISHING_SCRAPES: u64 = 3;
/// How long Prometheus scrapes before the target goes away.
const RUN: Duration = Duration::from_secs(8);
const METRICS_TOKEN: &str = "scrape-token";
/// The histogram's finite bucket bounds.
const BUCKETS: [&str; 3] = ["0.1", "0.5", "1"];
/// How long Luminate is down in the restart scenario (the 30 s).
const OUTAGE: Duration = Duration::from_secs(30);

/// The scrape target: the exposition of scrape `n` (counted from 1), or `503` once stopped.
struct Target {
    address: String,
    stopped: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
}

impl Target {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stopped = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (stop, count) = (stopped.clone(), scrapes.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let response = if stop.load(Ordering::SeqCst) {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_owned()
                } else {
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    let body = exposition(n);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Self {
            address,
            stopped,
            scrapes,
        }
    }
}

/// Scrape `n`'s text exposition.
fn exposition(n: u64) -> String {
    let mut text = String::from("# TYPE customer_requests_total counter\n");
    for c in 0..CUSTOMERS {
        text.push_str(&format!(
            "customer_requests_total{{customer_id=\"cust_{c}\"}} {}\n",
            n * (c as u64 + 1)
        ));
    }
    text.push_str(&format!(
        "# TYPE scrapes_total counter\nscrapes_total {n}\n# TYPE demo:ratio gauge\ndemo:ratio 0.5\n"
    ));
    // Scrape n observed n requests so far, the k-th taking k/4 s: buckets are cumulative counts.
    text.push_str("# TYPE request_duration_seconds histogram\n");
    for le in BUCKETS.iter().chain(&["+Inf"]) {
        let bound: f64 = le.parse().unwrap_or(f64::INFINITY);
        let below = (1..=n).filter(|k| *k as f64 / 4.0 <= bound).count();
        text.push_str(&format!(
            "request_duration_seconds_bucket{{le=\"{le}\"}} {below}\n"
        ));
    }
    let sum: u64 = (1..=n).sum();
    text.push_str(&format!(
        "request_duration_seconds_sum {}\nrequest_duration_seconds_count {n}\n",
        sum as f64 / 4.0
    ));
    if n <= VANISHING_SCRAPES {
        text.push_str("# TYPE vanishing gauge\nvanishing 1\n");
    }
    text
}

/// Prometheus scraping `target` and remote-writing to `luminate` with the token `bearer`.
fn start_prometheus(
    dir: &std::path::Path,
    target: &str,
    luminate: &str,
    bearer: &str,
) -> Prometheus {
    let config = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: customers
    static_configs:
      - targets: ['{target}']
remote_write:
  - url: {luminate}/api/v1/write
    authorization:
      credentials: {bearer}
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 5000
      min_backoff: 100ms
      max_backoff: 1s
      retry_on_http_429: true
    metadata_config:
      send_interval: 2s
"
    );
    Prometheus::start(dir, &config)
}

/// `{label value: sample value}` of an instant vector.
fn by_label(prometheus: &Prometheus, expr: &str, label: &str) -> BTreeMap<String, u64> {
    prometheus
        .query(expr)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["metric"][label].as_str().unwrap_or("").to_owned(),
                s["value"][1].as_str().unwrap().parse::<f64>().unwrap() as u64,
            )
        })
        .collect()
}

/// Stored points per `customer_id` of `customer_requests_total` in Luminate.
fn luminate_counts(client: &Client, token: &str) -> BTreeMap<String, u64> {
    // `404` until the first point arrives: nothing stored yet.
    let body = client
        .post(
            "/api/v1/query",
            token,
            &json!({"queryType": "listDimensionValues", "metricName": "customer_requests_total",
            "dimension": "customer_id", "limit": 1000}),
        )
        .body;
    body["results"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .map(|v| {
                    (
                        v["value"].as_str().unwrap().to_owned(),
                        v["points"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sum and count of `metric`'s stored points.
fn luminate_sum_count(client: &Client, token: &str, metric: &str) -> (f64, u64) {
    let body = client
        .post(
            "/api/v1/query",
            token,
            &json!({"queryType": "aggregate", "metricName": metric, "aggregation": "sum",
                "timeRange": {"relative": "1h"}}),
        )
        .body;
    let results = body["results"].as_array().cloned().unwrap_or_default();
    (
        results.iter().filter_map(|r| r["value"].as_f64()).sum(),
        results.iter().filter_map(|r| r["count"].as_u64()).sum(),
    )
}

fn write_errors(server: &Luminate, code: &str) -> u64 {
    let (status, _, text) = common::get_text(
        &server.url("/metrics"),
        &[("authorization", &format!("Bearer {METRICS_TOKEN}"))],
    );
    assert_eq!(status, 200, "{text}");
    let prefix = format!("luminate_write_errors_total{{tenant=\"acme\",code=\"{code}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse::<f64>().unwrap() as u64)
}

/// Stored points of `metric` in Luminate per value of `label` (a count grouped by it).
fn luminate_counts_by(
    client: &Client,
    token: &str,
    metric: &str,
    label: &str,
) -> BTreeMap<String, u64> {
    let body = client
        .post(
            "/api/v1/query",
            token,
            &json!({"queryType": "aggregate", "metricName": metric, "aggregation": "count",
                "groupBy": [label], "timeRange": {"relative": "1h"}, "limit": 1000}),
        )
        .body;
    body["results"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|g| {
                    (
                        g["groupKey"][label].as_str().unwrap().to_owned(),
                        g["count"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every series the target exposes, as (metric, the label telling its series apart).
const SERIES: [(&str, &str); 6] = [
    ("customer_requests_total", "customer_id"),
    ("request_duration_seconds_bucket", "le"),
    ("request_duration_seconds_sum", "job"),
    ("request_duration_seconds_count", "job"),
    ("scrapes_total", "job"),
    ("demo:ratio", "job"),
];

/// A metric whose per-series counts differ: its name, Prometheus' counts, Luminate's.
type Differing = (String, BTreeMap<String, u64>, BTreeMap<String, u64>);

/// Waits until every series' sample count in Luminate equals Prometheus' (`count_over_time`), at most
/// 30 s; returns the last (Prometheus, Luminate) counts of each metric that differ.
fn wait_for_equal_counts(prometheus: &Prometheus, client: &Client, token: &str) -> Vec<Differing> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let differ: Vec<_> = SERIES
            .iter()
            .map(|(metric, label)| {
                let want = by_label(
                    prometheus,
                    &format!("count_over_time({metric}[10m])"),
                    label,
                );
                let stored = luminate_counts_by(client, token, &metric.replace(':', "_"), label);
                (metric.to_string(), want, stored)
            })
            .filter(|(_, want, stored)| want.is_empty() || want != stored)
            .collect();
        if differ.is_empty() || Instant::now() > deadline {
            return differ;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A TCP proxy between Prometheus and Luminate that can lose answers: while `lose_answers` is set, a
/// request reaches Luminate and is served, but the connection is closed before the answer reaches
/// Prometheus — which then sends the same samples again. A connection it cannot pass on (Luminate
/// down) is closed at once.
struct Proxy {
    address: String,
    /// Luminate's `HOST:PORT`; a restarted Luminate listens on another port.
    upstream: Arc<Mutex<String>>,
    lose_answers: Arc<AtomicBool>,
    /// Answers lost so far.
    lost: Arc<AtomicU64>,
}

impl Proxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let upstream = Arc::new(Mutex::new(upstream.to_owned()));
        let lose_answers = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicU64::new(0));
        let (to, lose, count) = (upstream.clone(), lose_answers.clone(), lost.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let to = to.lock().unwrap().clone();
                let Ok(server) = TcpStream::connect(&to) else {
                    continue;
                };
                let (lose, count) = (lose.clone(), count.clone());
                std::thread::spawn(move || pass_on(client, server, &lose, &count));
            }
        });
        Self {
            address,
            upstream,
            lose_answers,
            lost,
        }
    }
}

/// Copies requests to `server` and answers back to `client`, losing answers while `lose` is set.
fn pass_on(client: TcpStream, server: TcpStream, lose: &AtomicBool, lost: &AtomicU64) {
    let (mut from_client, mut to_server) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut client, mut server) = (client, server);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) if lose.load(Ordering::SeqCst) => {
                lost.fetch_add(1, Ordering::SeqCst);
                break;
            }
            Ok(n) => {
                if client.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

on_each_backend!(
    prometheus_remote_writes_every_scraped_sample_exactly_once,
    resends_after_lost_answers_and_a_30_s_restart_store_every_sample_once
);

fn prometheus_remote_writes_every_scraped_sample_exactly_once(backend: Backend) {
    require("prometheus", "prometheus");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(backend.launch(&dir.path().join("luminate")))
        .without_rate_limits()
        .env("LUMINATE__METRICS__BEARER_TOKEN", METRICS_TOKEN)
        .start();
    let client = Client::of(&server);
    let writer = token("acme", &["write"]);
    let reader = token("acme", &["read"]);
    let target = Target::start();
    let prometheus = start_prometheus(dir.path(), &target.address, &server.base, &writer);

    let first = Instant::now() + Duration::from_secs(20);
    while target.scrapes.load(Ordering::SeqCst) == 0 && Instant::now() < first {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(RUN);
    target.stopped.store(true, Ordering::SeqCst);
    let scrapes = target.scrapes.load(Ordering::SeqCst);
    assert!(
        scrapes > VANISHING_SCRAPES + 1,
        "{scrapes} scrapes: {}",
        prometheus.log()
    );

    // Prometheus holds no new samples of the target now; wait until Luminate has all of them.
    let expected = |p: &Prometheus| {
        by_label(
            p,
            "count_over_time(customer_requests_total[10m])",
            "customer_id",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut want, mut got) = (BTreeMap::new(), BTreeMap::new());
    while Instant::now() < deadline {
        want = expected(&prometheus);
        got = luminate_counts(&client, &reader);
        if want.len() == CUSTOMERS && want == got {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(want.len(), CUSTOMERS, "{}", prometheus.log());
    assert_eq!(got, want, "per-series sample counts differ");
    let differ = wait_for_equal_counts(&prometheus, &client, &reader);
    assert!(
        differ.is_empty(),
        "per-series sample counts differ: {differ:?}"
    );

    // The counter's samples and the `:` name, value for value.
    let scalar = |expr: &str| {
        prometheus.query(expr).unwrap()[0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let wait_equal = |metric: &str, prom_sum: f64, prom_count: f64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = luminate_sum_count(&client, &reader, metric);
            if got == (prom_sum, prom_count as u64) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let (sum, count) = (
        scalar("sum_over_time(scrapes_total[10m])"),
        scalar("count_over_time(scrapes_total[10m])"),
    );
    assert_eq!(wait_equal("scrapes_total", sum, count), (sum, count as u64));
    let count = scalar("count_over_time(demo:ratio[10m])");
    assert_eq!(
        wait_equal("demo_ratio", count * 0.5, count),
        (count * 0.5, count as u64)
    );
    // The vanished series: its samples stored, its stale marker counted and not stored.
    let count = scalar("count_over_time(vanishing[10m])");
    assert_eq!(count, VANISHING_SCRAPES as f64);
    assert_eq!(
        wait_equal("vanishing", count, count),
        (count, VANISHING_SCRAPES)
    );
    let stale_deadline = Instant::now() + Duration::from_secs(15);
    while write_errors(&server, "STALE_MARKER") <= CUSTOMERS as u64
        && Instant::now() < stale_deadline
    {
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        write_errors(&server, "STALE_MARKER") > CUSTOMERS as u64,
        "the vanished series and the stopped target's series end with stale markers"
    );

    let log = prometheus.log();
    for bad in ["non-recoverable", "level=error"] {
        assert!(!log.contains(bad), "Prometheus logged {bad:?}:\n{log}");
    }
    assert!(started.elapsed() < Duration::from_secs(90));
}

fn resends_after_lost_answers_and_a_30_s_restart_store_every_sample_once(backend: Backend) {
    require("prometheus", "prometheus");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let launch = with_secret(backend.launch(&dir.path().join("luminate")))
        .without_rate_limits()
        .env("LUMINATE__METRICS__BEARER_TOKEN", METRICS_TOKEN);
    let server = launch.start();
    let proxy = Proxy::start(server.base.trim_start_matches("http://"));
    let writer = token("acme", &["write"]);
    let reader = token("acme", &["read"]);
    let target = Target::start();
    let prometheus = start_prometheus(
        dir.path(),
        &target.address,
        &format!("http://{}", proxy.address),
        &writer,
    );
    let first = Instant::now() + Duration::from_secs(20);
    while target.scrapes.load(Ordering::SeqCst) == 0 && Instant::now() < first {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(4));

    // Answers lost: Prometheus resends samples Luminate already stored.
    proxy.lose_answers.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(3));
    proxy.lose_answers.store(false, Ordering::SeqCst);
    assert!(
        proxy.lost.load(Ordering::SeqCst) > 0,
        "{}",
        prometheus.log()
    );
    assert!(
        common::eventually(Duration::from_secs(15), || {
            write_errors(&server, "DUPLICATE_SAMPLE") + write_errors(&server, "OUT_OF_ORDER_SAMPLE")
                > 0
        }),
        "the resent samples were found stored: {}",
        server.output()
    );

    // Killed mid-run, down for 30 s while Prometheus keeps scraping and retrying, then restarted.
    std::thread::sleep(Duration::from_millis(1_500));
    server.kill9();
    std::thread::sleep(OUTAGE);
    let server = launch.start();
    *proxy.upstream.lock().unwrap() = server.base.trim_start_matches("http://").to_owned();
    let client = Client::of(&server);
    std::thread::sleep(Duration::from_secs(4));
    target.stopped.store(true, Ordering::SeqCst);

    let differ = wait_for_equal_counts(&prometheus, &client, &reader);
    assert!(
        differ.is_empty(),
        "per-series sample counts differ (metric, Prometheus, Luminate): {differ:?}\n{}",
        prometheus.log()
    );
    let log = prometheus.log();
    for bad in ["non-recoverable", "level=error"] {
        assert!(!log.contains(bad), "Prometheus logged {bad:?}:\n{log}");
    }
    eprintln!("restart scenario took {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(120));
}
