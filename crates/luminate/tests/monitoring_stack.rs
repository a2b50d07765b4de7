//! The monitoring stack end to end, through `scripts/monitoring-stack.sh`: Prometheus (scraping and
//! evaluating every second), Alertmanager and node-exporter from Debian's packages, the Luminate that the
//! script starts (this build's binary, embedded engine) and a second Luminate on a real ClickHouse added
//! as an extra scrape target. After a workload — writes of several tenants, every query type, rejected
//! points, a rate-limited tenant, a tenant near its cardinality limit — Prometheus scrapes both
//! (`up == 1`) and **every expression of the Grafana dashboard** answers with data. Then ClickHouse
//! dies: `LuminateStorageUnavailable` fires in Prometheus and reaches Alertmanager.

#![cfg(feature = "clickhouse")] // the outage needs the ClickHouse backend
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod deploy_files;
mod tenant_client;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Launch, now_ms, point};
use deploy_files::{dashboard_queries, path, require, substitute};
use luminate_clickhouse::testing::ClickhouseServer;
use serde_json::{Value, json};
use tenant_client::{Client, SECRET, token};

/// Scrape and rule evaluation period of the test's Prometheus, and Luminate's `metrics.interval`.
const PERIOD: &str = "1s";
/// What `$__rate_interval` becomes: several scrapes, as Grafana's own choice would be.
const RATE_INTERVAL: &str = "30s";

/// The configuration of the Luminate the script starts: a tenant limited to one query a second, a
/// small series limit to get near, and a small head so that it flushes to parts.
const LUMINATE_CONFIG: &str = "\
rate_limits:
  tenants:
    throttled:
      query_requests_per_second: 1
cardinality_limits:
  max_unique_series_per_metric: 10
storage:
  embedded:
    head_max_points: 100
metrics:
  interval: 1s
";

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The stack, stopped by `Drop` whatever happens (its processes are detached from this one).
struct Stack {
    state: tempfile::TempDir,
    env: Vec<(String, String)>,
    prometheus: String,
    alertmanager: String,
    luminate: String,
}

impl Stack {
    /// `scripts/monitoring-stack.sh start` with free ports, 1 s intervals, this build's binary and
    /// `extra` as an extra Luminate target.
    fn start(extra: &str, luminate_config: &Path) -> Self {
        let state = tempfile::Builder::new()
            .prefix("luminate-stack-")
            .tempdir()
            .unwrap();
        let (prometheus, alertmanager, node, luminate) =
            (free_port(), free_port(), free_port(), free_port());
        let env: Vec<(String, String)> = [
            ("MONITORING_STACK_DIR", state.path().to_str().unwrap()),
            ("MONITORING_STACK_PROMETHEUS_PORT", &prometheus.to_string()),
            (
                "MONITORING_STACK_ALERTMANAGER_PORT",
                &alertmanager.to_string(),
            ),
            ("MONITORING_STACK_NODE_EXPORTER_PORT", &node.to_string()),
            ("MONITORING_STACK_LUMINATE_PORT", &luminate.to_string()),
            ("MONITORING_STACK_SCRAPE_INTERVAL", PERIOD),
            ("MONITORING_STACK_EVALUATION_INTERVAL", PERIOD),
            (
                "MONITORING_STACK_LUMINATE_BIN",
                env!("CARGO_BIN_EXE_luminate"),
            ),
            ("MONITORING_STACK_EXTRA_TARGETS", extra),
            // If this test dies without its clean-up, the stack stops itself.
            (
                "MONITORING_STACK_WATCH_PID",
                &std::process::id().to_string(),
            ),
            ("LUMINATE_CONFIG", luminate_config.to_str().unwrap()),
            ("LUMINATE_AUTH_ENABLED", "true"),
            ("LUMINATE_AUTH_JWT_SECRET", SECRET),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let stack = Self {
            state,
            env,
            prometheus: format!("http://127.0.0.1:{prometheus}"),
            alertmanager: format!("http://127.0.0.1:{alertmanager}"),
            luminate: format!("http://127.0.0.1:{luminate}"),
        };
        let output = stack.script("start");
        assert!(
            output.status.success(),
            "monitoring-stack.sh start failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        stack
    }

    fn script(&self, action: &str) -> std::process::Output {
        let mut cmd = Command::new("bash");
        cmd.arg(path("scripts/monitoring-stack.sh")).arg(action);
        // Only what the test sets: a developer's own settings must not reach the stack's Luminate.
        for (key, _) in std::env::vars() {
            if key.starts_with("LUMINATE") || key.starts_with("MONITORING_STACK") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("RUST_LOG");
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.output().expect("run scripts/monitoring-stack.sh")
    }

    /// The last lines of a component's log.
    fn log_tail(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.state.path().join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in ["luminate", "prometheus", "alertmanager", "node-exporter"] {
                eprintln!("--- {name}.log (tail) ---\n{}", self.log_tail(name));
            }
        }
        let output = self.script("stop");
        if !output.status.success() {
            eprintln!(
                "monitoring-stack.sh stop failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// GET a JSON document.
fn get_json(url: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let text = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"))
}

/// An instant query through Prometheus' HTTP API: its result vector.
fn prometheus_query(prometheus: &str, expr: &str) -> Vec<Value> {
    let body = get_json(&url_with_query(
        &format!("{prometheus}/api/v1/query"),
        &[("query", expr)],
    ));
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn url_with_query(base: &str, params: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!("{base}?{}", encoded.join("&"))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `check` every 500 ms until it returns `Some` or `limit` passes.
fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Writes, queries of every type, discovery, rejected points, a rate-limited tenant and a tenant near
/// its series limit, on the stack's Luminate (authenticated, embedded).
fn embedded_workload(luminate: &Client) {
    let all = ["read", "write", "admin"];
    let now = now_ms();
    for tenant in ["acme", "globex"] {
        let t = token(tenant, &all);
        for batch in 0..3 {
            let points: Vec<Value> = (0..50)
                .map(|i| {
                    let customer = format!("c{}", i % 5);
                    let at = now - 1000 * (batch * 50 + i) as i64;
                    if i % 2 == 0 {
                        point(
                            "api_latency",
                            at,
                            100.0 + i as f64,
                            &[("customer_id", &customer)],
                        )
                    } else {
                        point(
                            "requests_total",
                            at,
                            (batch * 50 + i) as f64,
                            &[("customer_id", &customer)],
                        )
                    }
                })
                .collect();
            let reply = luminate.write(&t, &points);
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }
        for query in [
            json!({"queryType": "range", "metricName": "api_latency", "timeRange": {"relative": "1h"},
                   "filters": {"customer_id": "c1"}}),
            json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
                   "groupBy": ["customer_id"], "timeRange": {"relative": "1h"}}),
            json!({"queryType": "rate", "metricName": "requests_total", "interval": "1m",
                   "groupBy": ["customer_id"], "timeRange": {"relative": "1h"}}),
        ] {
            luminate.query(&t, &query);
        }
        assert_eq!(luminate.get("/api/v1/metrics", &t).status, 200);
        assert_eq!(
            luminate
                .get("/api/v1/cardinality?metric=api_latency", &t)
                .status,
            200
        );
    }

    let acme = token("acme", &all);
    // Rejected points: an invalid metric name beside a valid point.
    let reply = luminate.write(
        &acme,
        &[
            point("api_latency", now, 1.0, &[("customer_id", "c1")]),
            point("9bad", now, 1.0, &[]),
        ],
    );
    assert_eq!(reply.status, 207, "{:?}", reply.body);
    // A query over a longer range than query_limits.max_query_time_range.
    let reply = luminate.post(
        "/api/v1/query",
        &acme,
        &json!({"queryType": "range", "metricName": "api_latency",
                "timeRange": {"start": now - 100 * 86_400_000, "end": now}}),
    );
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    // Near the series limit (9 of 10), then past it: 1 more series stored, 2 refused.
    let wide = |from: usize, to: usize| -> Vec<Value> {
        (from..to)
            .map(|i| point("wide", now, 1.0, &[("host", &format!("h{i}"))]))
            .collect()
    };
    assert_eq!(luminate.write(&acme, &wide(0, 9)).status, 200);
    let reply = luminate.write(&acme, &wide(9, 12));
    assert_eq!(reply.status, 207, "{:?}", reply.body);
    assert_eq!(reply.body["rejected"], 2, "{:?}", reply.body);

    // One query a second for `throttled`: three back to back meet a 429.
    let throttled = token("throttled", &["read"]);
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            luminate
                .post(
                    "/api/v1/query",
                    &throttled,
                    &json!({"queryType": "range", "metricName": "api_latency",
                            "timeRange": {"relative": "1h"}}),
                )
                .status
        })
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// Writes and every query type on the ClickHouse-backed Luminate (no auth: tenant `default`).
fn clickhouse_workload(server: &common::Luminate) {
    let now = now_ms();
    let points: Vec<Value> = (0..40)
        .map(|i| {
            point(
                "cpu",
                now - i * 1000,
                i as f64,
                &[("host", &format!("h{}", i % 4))],
            )
        })
        .collect();
    assert_eq!(server.write(&points).0, 200);
    for query in [
        json!({"queryType": "range", "metricName": "cpu", "timeRange": {"relative": "1h"}}),
        json!({"queryType": "aggregate", "metricName": "cpu", "aggregation": "avg",
               "groupBy": ["host"], "timeRange": {"relative": "1h"}}),
        json!({"queryType": "rate", "metricName": "cpu", "interval": "1m",
               "timeRange": {"relative": "1h"}}),
    ] {
        server.query(&query);
    }
}

/// The alert `name` firing in Prometheus for `instance`, if it is.
fn firing(prometheus: &str, name: &str, instance: &str) -> Option<Value> {
    let body = get_json(&format!("{prometheus}/api/v1/alerts"));
    body["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == name
                && a["labels"]["instance"] == instance
                && a["state"] == "firing"
        })
        .cloned()
}

#[test]
fn stack_scrapes_luminate_answers_every_dashboard_query_and_alerts_on_a_storage_outage() {
    for (program, package) in [
        ("prometheus", "prometheus"),
        ("promtool", "prometheus"),
        ("prometheus-alertmanager", "prometheus-alertmanager"),
        ("prometheus-node-exporter", "prometheus-node-exporter"),
    ] {
        require(program, package);
    }
    let started = Instant::now();

    // The second Luminate, on its own ClickHouse (which the test kills later).
    let mut clickhouse = ClickhouseServer::start();
    let ch_dir = tempfile::tempdir().unwrap();
    let ch_luminate = Launch::new(ch_dir.path())
        .clickhouse(&[&clickhouse.address()], "stack")
        .env("LUMINATE__METRICS__INTERVAL", PERIOD)
        .start();
    let ch_target = ch_luminate.base.trim_start_matches("http://").to_owned();

    let config_dir = tempfile::tempdir().unwrap();
    let config: PathBuf = config_dir.path().join("luminate.yaml");
    std::fs::write(&config, LUMINATE_CONFIG).unwrap();
    let stack = Stack::start(&ch_target, &config);
    let luminate_target = stack.luminate.trim_start_matches("http://").to_owned();

    embedded_workload(&Client::at(&stack.luminate));
    clickhouse_workload(&ch_luminate);

    // Both Luminates are scraped.
    let up = wait_for(Duration::from_secs(30), || {
        let result = prometheus_query(&stack.prometheus, r#"up{job="luminate"} == 1"#);
        let mut instances: Vec<String> = result
            .iter()
            .map(|s| s["metric"]["instance"].as_str().unwrap().to_owned())
            .collect();
        instances.sort();
        let mut wanted = vec![luminate_target.clone(), ch_target.clone()];
        wanted.sort();
        (instances == wanted).then_some(())
    });
    assert!(
        up.is_some(),
        "up{{job=\"luminate\"}}: {:?}",
        prometheus_query(&stack.prometheus, r#"up{job="luminate"}"#)
    );

    // Every dashboard query answers with data (gauges refresh every metrics.interval, recording rules
    // every evaluation: wait for them, then name every query that is still empty).
    let queries: Vec<(String, String)> = dashboard_queries()
        .into_iter()
        .map(|(title, expr)| (title, substitute(&expr, RATE_INTERVAL)))
        .collect();
    let empty = |queries: &[(String, String)]| -> Vec<(String, String)> {
        queries
            .iter()
            .filter(|(_, expr)| prometheus_query(&stack.prometheus, expr).is_empty())
            .cloned()
            .collect()
    };
    let mut missing = queries.clone();
    let answered = wait_for(Duration::from_secs(45), || {
        missing = empty(&missing);
        missing.is_empty().then_some(())
    });
    assert!(
        answered.is_some(),
        "{} of {} dashboard queries return no data:\n{}",
        missing.len(),
        queries.len(),
        missing
            .iter()
            .map(|(title, expr)| format!("  [{title}] {expr}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        firing(&stack.prometheus, "LuminateStorageUnavailable", &ch_target).is_none(),
        "storage reported unavailable before the outage"
    );

    // ClickHouse dies: within metrics.interval the second Luminate reports its storage down, and after
    // the alert's `for: 1m` Prometheus fires it and Alertmanager has it.
    let outage = Instant::now();
    clickhouse.kill();
    for _ in 0..3 {
        assert_eq!(
            ch_luminate.write(&[point("cpu", now_ms(), 1.0, &[])]).0,
            503
        );
    }
    let alert = wait_for(Duration::from_secs(150), || {
        firing(&stack.prometheus, "LuminateStorageUnavailable", &ch_target)
    })
    .unwrap_or_else(|| {
        panic!(
            "LuminateStorageUnavailable did not fire within 150 s; luminate_storage_health: {:?}; alerts: {}",
            prometheus_query(&stack.prometheus, "luminate_storage_health"),
            get_json(&format!("{}/api/v1/alerts", stack.prometheus))
        )
    });
    assert_eq!(alert["labels"]["severity"], "page", "{alert}");
    assert_eq!(alert["labels"]["backend"], "clickhouse", "{alert}");
    let received = wait_for(Duration::from_secs(30), || {
        let url = url_with_query(
            &format!("{}/api/v2/alerts", stack.alertmanager),
            &[("filter", "alertname=\"LuminateStorageUnavailable\"")],
        );
        get_json(&url)
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["instance"] == ch_target.as_str())
            .cloned()
    })
    .expect("Alertmanager never received LuminateStorageUnavailable");
    assert_eq!(received["status"]["state"], "active", "{received}");
    assert!(
        received["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("/docs/runbooks/LuminateStorageUnavailable.md"),
        "{received}"
    );
    // The embedded Luminate's storage is fine throughout.
    assert!(
        firing(
            &stack.prometheus,
            "LuminateStorageUnavailable",
            &luminate_target
        )
        .is_none()
    );
    eprintln!(
        "alert reached Alertmanager {:?} after the outage; whole test {:?}",
        outage.elapsed(),
        started.elapsed()
    );
}
