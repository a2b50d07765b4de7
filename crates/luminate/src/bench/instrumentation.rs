//! `luminate bench --instrumentation`: what Luminate's self-metrics cost. The same request mix is sent
//! to two spawned servers, one with `metrics.enabled: true` (the HTTP middleware, every counter and
//! histogram, the background collector, and a scraper: by default every 10 s and every 5 s, the
//! default `metrics.interval` and three times Prometheus' default scrape rate; both are options) and
//! one with `metrics.enabled: false` (no middleware, no collector, no
//! exposition; the handlers' counter increments stay, so the difference measured is a lower bound of
//! the whole cost only by those few atomic adds). Rounds alternate which server goes first, so that
//! drift of the machine falls on both.
//!
//! Measured per request: the server's CPU time (`/proc/<pid>/stat`, all threads, over the timed phase
//! divided by the requests sent) and the latency the client saw (mean and p99). The report gives the
//! median over rounds of each, and the differences: CPU as a share of the uninstrumented request's CPU,
//! and latency in microseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::MultiProgress;
use serde_json::json;

use super::report::median;
use super::server::SpawnedServer;
use super::{BenchError, http, load, log, procstat};

/// The request mix and its size.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Timed requests per server and round.
    pub requests: usize,
    /// Points per write.
    pub batch: usize,
    /// Client connections.
    pub connections: usize,
    /// Rounds (each measures both servers).
    pub rounds: usize,
    /// `metrics.interval` of the instrumented server.
    pub collector_interval: Duration,
    /// Time between scrapes of the instrumented server.
    pub scrape_every: Duration,
}

/// One server's figures in one round.
#[derive(Debug, Clone, Copy)]
struct Run {
    cpu_us_per_request: f64,
    mean_latency_us: f64,
    p99_latency_us: f64,
}

/// Every fifth request is a query (a count over the last minute of one customer); the others write
/// `batch` points of 1000 customers.
const QUERY_EVERY: usize = 5;

fn write_body(batch: usize, seq: usize) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let points: Vec<_> = (0..batch)
        .map(|i| {
            let n = seq * batch + i;
            let endpoint = ["/checkout", "/search", "/login", "/home"][n % 4];
            let region = ["eu", "us"][n % 2];
            json!({
                "name": "http_request_duration_ms",
                "timestamp": now - (i as i64 % 1000),
                "value": (n % 997) as f64 / 10.0,
                "dimensions": {
                    "customer_id": format!("c{}", n % 1000),
                    "endpoint": endpoint,
                    "region": region,
                },
            })
        })
        .collect();
    json!({ "metrics": points }).to_string().into_bytes()
}

fn query_body(seq: usize) -> Vec<u8> {
    json!({
        "queryType": "aggregate", "metricName": "http_request_duration_ms", "aggregation": "count",
        "filters": {"customer_id": format!("c{}", seq % 1000)}, "timeRange": {"relative": "1m"},
    })
    .to_string()
    .into_bytes()
}

/// Sends `count` requests of the mix from `plan.connections` threads; the latency of each, µs.
fn send(url: &str, plan: &Plan, count: usize, offset: usize) -> Result<Vec<f64>, BenchError> {
    let connections = plan.connections.max(1);
    let handles: Vec<_> = (0..connections)
        .map(|c| {
            let url = url.to_owned();
            let plan = *plan;
            thread::spawn(move || -> Result<Vec<f64>, BenchError> {
                let agent = http::agent();
                let mut latencies = Vec::new();
                for seq in (c..count).step_by(connections) {
                    let seq = seq + offset;
                    let (path, body) = if seq.is_multiple_of(QUERY_EVERY) {
                        ("/api/v1/query", query_body(seq))
                    } else {
                        ("/api/v1/write", write_body(plan.batch, seq))
                    };
                    let target = format!("{url}{path}");
                    let started = Instant::now();
                    let (status, text) = http::post(
                        &agent,
                        &target,
                        &[("content-type", "application/json")],
                        &body,
                    )?;
                    latencies.push(started.elapsed().as_secs_f64() * 1e6);
                    if status != 200 {
                        return Err(BenchError::Status {
                            request: target,
                            status,
                            body: text,
                        });
                    }
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(count);
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| BenchError::Server("a client thread panicked".into()))??,
        );
    }
    Ok(all)
}

/// One server: start, warm up, then the timed phase (with a scraper when metrics are on).
fn measure(plan: &Plan, metrics_on: bool, multi: &MultiProgress) -> Result<Run, BenchError> {
    let enabled = if metrics_on { "true" } else { "false" };
    let interval = format!("{}ms", plan.collector_interval.as_millis().max(1));
    let server = SpawnedServer::start_with(
        None,
        None,
        10_000_000,
        &[
            ("LUMINATE__METRICS__ENABLED", enabled),
            ("LUMINATE__METRICS__INTERVAL", &interval),
        ],
    )?;
    let pid = server
        .pid()
        .ok_or_else(|| BenchError::Server("the spawned server has no pid".into()))?;
    send(&server.url, plan, plan.requests / 10, 0)?;
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = metrics_on.then(|| {
        let (url, stop) = (format!("{}/metrics", server.url), stop.clone());
        let every = plan.scrape_every;
        thread::spawn(move || {
            let agent = http::agent();
            let mut last = Instant::now() - every;
            while !stop.load(Ordering::Relaxed) {
                if last.elapsed() >= every {
                    last = Instant::now();
                    let _ = http::get(&agent, &url);
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    });
    let bar = load::bar(
        multi,
        plan.requests as u64,
        if metrics_on {
            "metrics on "
        } else {
            "metrics off"
        },
    );
    let cpu_before = procstat::cpu_seconds(&pid);
    let mut latencies = send(&server.url, plan, plan.requests, plan.requests)?;
    let cpu_after = procstat::cpu_seconds(&pid);
    bar.finish_and_clear();
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = scraper {
        let _ = s.join();
    }
    server.stop();
    let cpu = cpu_before
        .zip(cpu_after)
        .map(|(a, b)| b - a)
        .ok_or_else(|| BenchError::Server("cannot read the server's CPU time from /proc".into()))?;
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Ok(Run {
        cpu_us_per_request: cpu * 1e6 / plan.requests as f64,
        mean_latency_us: latencies.iter().sum::<f64>() / latencies.len() as f64,
        p99_latency_us: p99,
    })
}

/// Runs every round and prints the report (JSON with `json`).
pub fn run(plan: &Plan, json_out: bool, multi: &MultiProgress) -> Result<(), BenchError> {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..plan.rounds.max(1) {
        let order = if round.is_multiple_of(2) {
            [true, false]
        } else {
            [false, true]
        };
        for metrics_on in order {
            let r = measure(plan, metrics_on, multi)?;
            log(
                multi,
                &format!(
                    "round {} metrics {:<3}: {:>8.1} µs CPU/request, latency mean {:>8.1} µs, p99 {:>8.1} µs",
                    round + 1,
                    if metrics_on { "on" } else { "off" },
                    r.cpu_us_per_request,
                    r.mean_latency_us,
                    r.p99_latency_us
                ),
            );
            if metrics_on { on.push(r) } else { off.push(r) }
        }
    }
    let med = |runs: &[Run], f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let (cpu_on, cpu_off) = (
        med(&on, |r| r.cpu_us_per_request),
        med(&off, |r| r.cpu_us_per_request),
    );
    let (lat_on, lat_off) = (
        med(&on, |r| r.mean_latency_us),
        med(&off, |r| r.mean_latency_us),
    );
    let (p99_on, p99_off) = (
        med(&on, |r| r.p99_latency_us),
        med(&off, |r| r.p99_latency_us),
    );
    let cpu_share = (cpu_on - cpu_off) / cpu_off * 100.0;
    if json_out {
        let report = json!({
            "requests_per_round": plan.requests, "batch": plan.batch, "connections": plan.connections,
            "rounds": plan.rounds, "query_every": QUERY_EVERY,
            "collector_interval_seconds": plan.collector_interval.as_secs_f64(),
            "scrape_every_seconds": plan.scrape_every.as_secs_f64(),
            "cpu_us_per_request": {"on": cpu_on, "off": cpu_off, "overhead_percent": cpu_share},
            "mean_latency_us": {"on": lat_on, "off": lat_off, "difference": lat_on - lat_off},
            "p99_latency_us": {"on": p99_on, "off": p99_off, "difference": p99_on - p99_off},
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "instrumentation cost: {} requests per server and round ({} points per write, a query every {}), {} connections, median of {} rounds",
            plan.requests, plan.batch, QUERY_EVERY, plan.connections, plan.rounds
        );
        println!(
            "instrumented server: collector every {:.1} s, scraped every {:.1} s",
            plan.collector_interval.as_secs_f64(),
            plan.scrape_every.as_secs_f64()
        );
        println!(
            "{:<28} {:>12} {:>12} {:>12}",
            "", "metrics on", "metrics off", "difference"
        );
        println!(
            "{:<28} {:>12.1} {:>12.1} {:>+11.2}%",
            "server CPU per request, µs", cpu_on, cpu_off, cpu_share
        );
        println!(
            "{:<28} {:>12.1} {:>12.1} {:>+12.1}",
            "mean latency, µs",
            lat_on,
            lat_off,
            lat_on - lat_off
        );
        println!(
            "{:<28} {:>12.1} {:>12.1} {:>+12.1}",
            "p99 latency, µs",
            p99_on,
            p99_off,
            p99_on - p99_off
        );
    }
    Ok(())
}
