//! The Prometheus query API under `/prometheus`, with Prometheus as the oracle: a real Prometheus
//! (Debian's 2.42) scrapes every second a deterministic target (counters with a reset, gauges, a
//! histogram) and the real binary's own exposition, and remote-writes every sample to the binary (auth
//! on, tenant `acme`). Then each expression below — every construct of the subset, and the shipped
//! Grafana dashboard's — goes through `promtool query instant` and `promtool query range` (`-o json`)
//! against Prometheus and against Luminate (Basic auth with the token as password, as promtool sends a
//! URL's user info); the answers must be equal within 1e-9 relative. Grafana's own request shapes are
//! compared as HTTP bodies; unsupported constructs, tenancy and auth are checked on the binary.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod deploy_files;
mod tenant_client;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Backend;
use common::prometheus::Prometheus;
use deploy_files::require;
use serde_json::Value;
use tenant_client::{token, with_secret};

const METRICS_TOKEN: &str = "scrape-token";

/// Scrape `n`'s exposition: everything a function of `n` alone.
fn exposition(n: u64) -> String {
    let n = n as f64;
    let mut text = String::from("# TYPE http_requests_total counter\n");
    text.push_str(&format!(
        "http_requests_total{{method=\"get\",code=\"200\",path=\"/a\"}} {}\n",
        10.0 * n
    ));
    text.push_str(&format!(
        "http_requests_total{{method=\"get\",code=\"500\",path=\"/a\"}} {n}\n"
    ));
    // Resets every 7 scrapes.
    text.push_str(&format!(
        "http_requests_total{{method=\"post\",code=\"200\",path=\"/b\"}} {}\n",
        3.0 * (n % 7.0) + 1.0
    ));
    text.push_str("# TYPE temperature gauge\n");
    text.push_str(&format!(
        "temperature{{room=\"kitchen\"}} {}\n",
        20.0 + n % 5.0
    ));
    text.push_str(&format!(
        "temperature{{room=\"hall\"}} {}\n",
        15.5 - n % 3.0
    ));
    text.push_str("# TYPE latency_seconds histogram\n");
    for (path, counts) in [("/a", [5.0, 8.0, 10.0]), ("/b", [1.0, 6.0, 7.0])] {
        for (le, c) in ["0.1", "0.5", "+Inf"].iter().zip(counts) {
            text.push_str(&format!(
                "latency_seconds_bucket{{path=\"{path}\",le=\"{le}\"}} {}\n",
                c * n
            ));
        }
        text.push_str(&format!(
            "latency_seconds_sum{{path=\"{path}\"}} {}\nlatency_seconds_count{{path=\"{path}\"}} {}\n",
            0.25 * n,
            counts[2] * n
        ));
    }
    text
}

/// Serves [`exposition`] of scrape `n` (counted from 1).
fn start_target() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let scrapes = Arc::new(AtomicU64::new(0));
    let count = scrapes.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = exposition(count.fetch_add(1, Ordering::SeqCst) + 1);
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    (address, scrapes)
}

/// Prometheus scraping `target` and Luminate's own `/metrics`, remote-writing to `luminate` with the
/// token `writer`.
fn start_prometheus(
    dir: &std::path::Path,
    target: &str,
    luminate: &str,
    writer: &str,
) -> Prometheus {
    let luminate_address = luminate.trim_start_matches("http://");
    let config = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['{target}']
  - job_name: luminate
    authorization:
      credentials: {METRICS_TOKEN}
    static_configs:
      - targets: ['{luminate_address}']
remote_write:
  - url: {luminate}/api/v1/write
    authorization:
      credentials: {writer}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"
    );
    Prometheus::start(dir, &config)
}

/// `promtool query instant|range -o json` against `server`: the parsed answer, or the error text.
fn promtool(server: &str, args: &[&str]) -> Result<Value, String> {
    let mut command = Command::new("promtool");
    command
        .args(["query", "-o", "json"])
        .args(&args[..1])
        .arg(server)
        .args(&args[1..]);
    let out = command.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Equal answers: same series (in label order), same timestamps, values within 1e-9 relative.
fn same(a: &Value, b: &Value) -> bool {
    fn number(v: &Value) -> Option<f64> {
        match v {
            Value::String(s) => match s.as_str() {
                "+Inf" => Some(f64::INFINITY),
                "-Inf" => Some(f64::NEG_INFINITY),
                s => s.parse().ok(),
            },
            v => v.as_f64(),
        }
    }
    fn close(x: f64, y: f64) -> bool {
        (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
    }
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Array(items) if items.iter().all(|i| i.get("metric").is_some()) => {
                let mut items = items.clone();
                items.sort_by_key(|i| i["metric"].to_string());
                Value::Array(items)
            }
            other => other.clone(),
        }
    }
    fn walk(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| walk(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| walk(v, w)))
            }
            (x, y) if x == y => true,
            (x, y) => match (number(x), number(y)) {
                (Some(x), Some(y)) => close(x, y),
                _ => false,
            },
        }
    }
    walk(&sorted(a), &sorted(b))
}

/// The expressions compared; `T` is replaced by an evaluation time in seconds.
const EXPRESSIONS: &[&str] = &[
    "http_requests_total",
    r#"http_requests_total{code="200"}"#,
    r#"http_requests_total{code!="200"}"#,
    r#"http_requests_total{path=~"/a|/b", method!~"po.*"}"#,
    r#"{__name__=~"http_req.*", code="500"}"#,
    r#"{__name__=~"temp.*|latency_seconds_count"}"#,
    "http_requests_total offset 3s",
    "temperature @ T",
    "rate(http_requests_total[5s])",
    "irate(http_requests_total[5s])",
    "increase(http_requests_total[10s])",
    "delta(temperature[10s])",
    "idelta(temperature[5s])",
    "avg_over_time(temperature[10s])",
    "sum_over_time(temperature[10s])",
    "min_over_time(temperature[10s])",
    "max_over_time(temperature[10s])",
    "count_over_time(temperature[10s])",
    "last_over_time(temperature[10s])",
    "quantile_over_time(0.75, temperature[10s])",
    "rate(http_requests_total[5s] offset 2s)",
    "sum(http_requests_total)",
    "sum by (path) (count_over_time(http_requests_total[10s]))",
    "max by (room) (max_over_time(temperature[10s]))",
    r#"min(min_over_time(temperature{room!="hall"}[10s] offset 2s))"#,
    r#"sum by (route) (count_over_time(luminate_http_requests_total{route=~"/api/.*"}[10s]))"#,
    "sum by (code) (rate(http_requests_total[5s]))",
    "avg without (method) (http_requests_total)",
    "min by (path) (http_requests_total)",
    "max(temperature)",
    "count by (method) (http_requests_total)",
    "topk(2, http_requests_total)",
    "bottomk(1, temperature)",
    "quantile(0.5, http_requests_total)",
    r#"count_values("value", temperature)"#,
    "histogram_quantile(0.9, rate(latency_seconds_bucket[10s]))",
    "histogram_quantile(0.5, sum by (le) (rate(latency_seconds_bucket[10s])))",
    r#"http_requests_total{code="500"} / ignoring (code) http_requests_total{code="200"}"#,
    "http_requests_total / on (path) group_left sum by (path) (http_requests_total)",
    "sum by (path) (http_requests_total) * on (path) group_right http_requests_total",
    "http_requests_total > 50",
    "http_requests_total > bool 50",
    "40 < http_requests_total",
    "temperature == bool 20",
    "2 * temperature - 1",
    "temperature ^ 2 % 7",
    "abs(17 - temperature)",
    "ceil(temperature / 3)",
    "floor(temperature / 3)",
    "round(temperature / 3, 0.5)",
    "clamp_min(temperature, 18)",
    "clamp_max(temperature, 18)",
    r#"label_replace(temperature, "place", "in-$1", "room", "(.*)")"#,
    "vector(1)",
    "scalar(sum(temperature))",
    "time()",
    "timestamp(temperature)",
    r#"absent(nonexistent{job="x"})"#,
    "absent(temperature)",
    "1 + 1",
    "(-temperature)",
];

/// The shipped Grafana dashboard's expressions with its variables given values; those outside the
/// subset (`or`) are answered `bad_data`, checked below.
fn dashboard_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/luminate.json"),
    )
    .unwrap();
    let mut out = Vec::new();
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(expr)) = map.get("expr") {
                    out.push(
                        expr.replace("$instance", ".*")
                            .replace("$__rate_interval", "10s"),
                    );
                }
                map.values().for_each(|v| collect(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&serde_json::from_str(&text).unwrap(), &mut out);
    out
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Status and parsed body of a GET.
fn get(url: &str, auth: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, String)> = auth
        .map(|a| ("authorization", a.to_owned()))
        .into_iter()
        .collect();
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, body) = common::get_text(url, &refs);
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

on_each_backend!(promtool_answers_equal_prometheus_answers);

fn promtool_answers_equal_prometheus_answers(backend: Backend) {
    require("prometheus", "prometheus");
    require("promtool", "prometheus");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(backend.launch(&dir.path().join("luminate")))
        .without_rate_limits()
        .env("LUMINATE__METRICS__BEARER_TOKEN", METRICS_TOKEN)
        .start();
    let writer = token("acme", &["write"]);
    let reader = token("acme", &["read"]);
    let (target, scrapes) = start_target();
    let prometheus = start_prometheus(dir.path(), &target, &server.base, &writer);
    let luminate = format!(
        "http://acme:{reader}@{}/prometheus",
        server.base.trim_start_matches("http://")
    );
    let bearer = format!("Bearer {reader}");

    // 15 s of samples, then an evaluation time both hold every sample up to.
    let first = Instant::now() + Duration::from_secs(20);
    while scrapes.load(Ordering::SeqCst) == 0 && Instant::now() < first {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(15));
    let t_ms = common::now_ms() - 3_000;
    let t = format!("{}.{:03}", t_ms / 1000, t_ms % 1000);
    // Remote write sends a scrape's samples together: counting two metrics of each job tells when
    // Luminate has everything up to `t`.
    let complete = "sum(count_over_time(http_requests_total[1m])) + sum(count_over_time(up[1m])) \
                    + sum(count_over_time(luminate_http_requests_total[1m]))";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = promtool(
            &prometheus.base,
            &["instant", complete, &format!("--time={t}")],
        );
        let got = promtool(&luminate, &["instant", complete, &format!("--time={t}")]);
        if want.is_ok() && want == got {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Luminate never caught up: {want:?} vs {got:?}\n{}",
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let mut compared = 0;
    let mut unsupported = Vec::new();
    let mut empty = Vec::new();
    let dashboard = dashboard_expressions();
    assert!(
        dashboard.len() > 20,
        "the dashboard's expressions were found"
    );
    for expr in EXPRESSIONS
        .iter()
        .map(|e| e.replace('T', &t))
        .chain(dashboard)
    {
        let instant = ["instant", expr.as_str(), &format!("--time={t}")];
        let start = format!("--start={}", t_ms / 1000 - 10);
        let range = [
            "range",
            expr.as_str(),
            &start,
            &format!("--end={t}"),
            "--step=1.5s",
        ];
        for args in [&instant[..], &range[..]] {
            let want = promtool(&prometheus.base, args)
                .unwrap_or_else(|e| panic!("Prometheus refused {expr}: {e}"));
            if want == Value::Array(Vec::new())
                && EXPRESSIONS.iter().any(|e| e.replace('T', &t) == expr)
            {
                empty.push(expr.clone());
            }
            match promtool(&luminate, args) {
                Ok(got) => {
                    assert!(
                        same(&want, &got),
                        "{args:?}\nPrometheus: {want}\nLuminate:   {got}"
                    );
                    compared += 1;
                }
                Err(e)
                    if expr.contains(" or ")
                        && e.contains("unsupported PromQL: binary operator or") =>
                {
                    unsupported.push(expr.clone());
                }
                Err(e) => panic!("Luminate refused {args:?}: {e}"),
            }
        }
    }
    assert!(
        compared >= 2 * EXPRESSIONS.len(),
        "{compared} answers compared"
    );
    // The embedded engine answered instant selectors and range functions from folded windows
    // (`series_windows`), aggregations of them grouped in the engine (`grouped_windows`), and those
    // answers were Prometheus'; ClickHouse reads points.
    let (_, _, exposition) = common::get_text(
        &format!("{}/metrics", server.base),
        &[("authorization", &format!("Bearer {METRICS_TOKEN}"))],
    );
    let calls = |operation: &str| -> u64 {
        exposition
            .lines()
            .filter(|l| {
                l.starts_with("luminate_storage_operations_total{")
                    && l.contains(&format!("operation=\"{operation}\""))
                    && l.contains("outcome=\"ok\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    if backend == Backend::Embedded {
        let (folds, grouped) = (calls("series_windows"), calls("grouped_windows"));
        assert!(
            folds > 50 && grouped > 10,
            "{folds} folded reads, {grouped} grouped"
        );
    }
    // Every expression of the subset answers something, but `absent` of a present series.
    assert_eq!(empty, ["absent(temperature)", "absent(temperature)"]);
    assert!(!unsupported.is_empty());

    // Grafana's requests, answered as Prometheus answers them.
    let lum = format!("{}/prometheus", server.base);
    let both = |path: &str| {
        let (ps, prom) = get(&format!("{}{path}", prometheus.base), None);
        let (ls, lumi) = get(&format!("{lum}{path}"), Some(&bearer));
        assert_eq!((ls, ps), (200, 200), "{path}: {lumi}");
        (prom, lumi)
    };
    let (prom, lumi) = both("/api/v1/query?query=1%2B1&time=4");
    assert_eq!(lumi, prom);
    assert_eq!(lumi["data"]["result"], serde_json::json!([4, "2"]));
    let (prom, lumi) =
        both("/api/v1/label/path/values?match[]=%7B__name__%3D%22http_requests_total%22%7D");
    assert_eq!(lumi, prom);
    let (prom, lumi) =
        both("/api/v1/label/__name__/values?match[]=%7B__name__%3D~%22http_.*%7Ctemperature%22%7D");
    assert_eq!(lumi, prom);
    let (prom, lumi) = both("/api/v1/labels?match[]=%7B__name__%3D%22http_requests_total%22%7D");
    assert_eq!(lumi, prom);
    let series = format!(
        "/api/v1/series?match[]=temperature&match[]=http_requests_total%7Bcode%3D%22500%22%7D&start={}&end={t}",
        t_ms / 1000 - 10
    );
    let (prom, lumi) = both(&series);
    assert!(same(&prom["data"], &lumi["data"]), "{prom}\n{lumi}");
    assert_eq!(lumi["data"].as_array().unwrap().len(), 3);
    let (prom, lumi) = both("/api/v1/metadata?limit=1");
    assert_eq!(
        (
            prom["data"].as_object().unwrap().len(),
            lumi["data"].as_object().unwrap().len()
        ),
        (1, 1)
    );
    let (_, lumi) = both("/api/v1/status/buildinfo");
    assert_eq!(lumi["data"]["version"], "2.42.0");
    let (prom, lumi) = both("/api/v1/query_exemplars?query=temperature");
    assert_eq!(
        (prom["data"].clone(), lumi["data"].clone()),
        (serde_json::json!([]), serde_json::json!([]))
    );

    // A form POST of query_range answers as its GET.
    let form = format!(
        "query=sum(temperature)&start={}&end={t}&step=2",
        t_ms / 1000 - 10
    );
    let mut response = agent()
        .post(&format!("{lum}/api/v1/query_range"))
        .header("authorization", &bearer)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(form.as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let posted: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    let (_, got) = get(&format!("{lum}/api/v1/query_range?{form}"), Some(&bearer));
    assert_eq!(posted, got);
    assert_eq!(
        posted["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    // Outside the subset: bad_data naming the construct.
    let (status, body) = get(
        &format!("{lum}/api/v1/query?query=stddev(temperature)"),
        Some(&bearer),
    );
    assert_eq!(status, 400);
    assert_eq!(body["errorType"], "bad_data");
    assert_eq!(body["error"], "unsupported PromQL: aggregation stddev");
    let (status, body) = get(
        &format!("{lum}/api/v1/query_range?query=up&start=0&end=100000&step=1"),
        Some(&bearer),
    );
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data")),
        "{body}"
    );

    // Tenancy and auth: another tenant sees nothing; no token, a bad one, or no read scope are refused.
    let other = format!("Bearer {}", token("other", &["read"]));
    let (status, body) = get(
        &format!("{lum}/api/v1/query?query=temperature"),
        Some(&other),
    );
    assert_eq!(
        (status, body["data"]["result"].clone()),
        (200, serde_json::json!([]))
    );
    let (_, body) = get(&format!("{lum}/api/v1/label/__name__/values"), Some(&other));
    assert_eq!(body["data"], serde_json::json!([]));
    assert_eq!(get(&format!("{lum}/api/v1/query?query=1"), None).0, 401);
    assert_eq!(
        get(
            &format!("{lum}/api/v1/query?query=1"),
            Some("Bearer nonsense")
        )
        .0,
        401
    );
    assert_eq!(
        get(
            &format!("{lum}/api/v1/query?query=1"),
            Some(&format!("Bearer {writer}"))
        )
        .0,
        403
    );
    assert!(started.elapsed() < Duration::from_secs(150));
}
