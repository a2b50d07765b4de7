//! Harness of the end-to-end tests: starts the real `luminate` binary on `127.0.0.1:0` over a data
//! directory, reads the bound address from its `luminate listening on` line, talks HTTP with `ureq`,
//! and stops it (SIGTERM, SIGKILL) or lets `Drop` kill it. The child's output is kept and printed when
//! a start fails, so a failing test shows the server's side.
//!
//! Scenarios that hold for every storage backend are written once, as `fn(Backend)`, and
//! [`on_each_backend!`] declares a `#[test]` per backend for them: `embedded::name` and
//! `clickhouse::name`. A ClickHouse-backed server gets a database of its own on the test binary's shared
//! `clickhouse-server` (started on first use, stopped when the test process exits).

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod prometheus;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// How long a start may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const LISTEN_PREFIX: &str = "luminate listening on ";
/// The start-up line of OTLP over gRPC.
const GRPC_PREFIX: &str = "luminate otlp grpc on ";

/// Now in Unix ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The storage backend a scenario's server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded engine, over the launch's data directory.
    Embedded,
    /// ClickHouse: the test binary's shared server, a database of the launch's own.
    Clickhouse,
}

impl Backend {
    /// The name health reports (`storage.backend`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Clickhouse => "clickhouse",
        }
    }

    /// A launch over `data_dir` on this backend. On ClickHouse every call gives a new database, so
    /// scenarios sharing the server never see each other's points.
    pub fn launch(self, data_dir: &Path) -> Launch {
        let launch = Launch::new(data_dir);
        match self {
            Self::Embedded => launch,
            Self::Clickhouse => {
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let database = format!("e2e_{}", NEXT.fetch_add(1, Ordering::Relaxed));
                launch.clickhouse(
                    &[&luminate_clickhouse::testing::shared().address()],
                    &database,
                )
            }
        }
    }
}

/// Declares, for each scenario `fn(Backend)` named, one `#[test]` per backend: `embedded::<name>` and
/// `clickhouse::<name>` (the latter in builds with the backend, which CI's `--all-features` is).
#[macro_export]
macro_rules! on_each_backend {
    ($($scenario:ident),+ $(,)?) => {
        mod embedded {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::common::Backend::Embedded)
            })+
        }
        #[cfg(feature = "clickhouse")]
        mod clickhouse {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::common::Backend::Clickhouse)
            })+
        }
    };
}

/// What Kubernetes puts in the environment of every pod of a namespace with a Service `luminate` whose
/// port 8080 is named `http` (unless the pod sets `enableServiceLinks: false`).
pub const KUBERNETES_SERVICE_LINKS: &[(&str, &str)] = &[
    ("LUMINATE_SERVICE_HOST", "10.0.0.7"),
    ("LUMINATE_SERVICE_PORT", "8080"),
    ("LUMINATE_SERVICE_PORT_HTTP", "8080"),
    ("LUMINATE_PORT", "tcp://10.0.0.7:8080"),
    ("LUMINATE_PORT_8080_TCP", "tcp://10.0.0.7:8080"),
    ("LUMINATE_PORT_8080_TCP_ADDR", "10.0.0.7"),
    ("LUMINATE_PORT_8080_TCP_PORT", "8080"),
    ("LUMINATE_PORT_8080_TCP_PROTO", "tcp"),
];

/// How to start the binary.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Leave out `--listen 127.0.0.1:0`, so that the configuration decides the address.
    pub no_listen_flag: bool,
    /// A program (with its arguments) that runs the binary, e.g. `prlimit --nofile=256:256`; it must
    /// exec it, so that the process id is the server's.
    pub runner: Vec<String>,
    /// Exactly these arguments, instead of `serve --data-dir DIR [--listen 127.0.0.1:0] [--config FILE]`
    /// (`data_dir`, `config` and `no_listen_flag` then play no part): a container's or a pod's command.
    pub args: Option<Vec<String>>,
    /// The working directory, when not the test's own.
    pub current_dir: Option<PathBuf>,
}

impl Launch {
    /// Defaults over `data_dir`, except the disk-space floors of health, which are off: whether a
    /// test's server is `healthy` must not depend on the free space of the machine running it (a test
    /// that wants a floor sets it; a later `env` of the same variable wins).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            ..Self::default()
        }
        .env("LUMINATE_HEALTH_MIN_FREE_DISK_BYTES", "0")
        .env("LUMINATE_HEALTH_MIN_FREE_DISK_RATIO", "0")
    }

    /// With a configuration file.
    pub fn config(mut self, path: &Path) -> Self {
        self.config = Some(path.to_owned());
        self
    }

    /// With an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// With [`KUBERNETES_SERVICE_LINKS`] in the environment.
    pub fn with_service_links(mut self) -> Self {
        for (key, value) in KUBERNETES_SERVICE_LINKS {
            self = self.env(key, value);
        }
        self
    }

    /// With the per-tenant rate limits out of the way (a billion points and a million requests per
    /// second), for authenticated scenarios that ingest as fast as they can to test something else
    /// (with auth disabled no rate limit applies unless one is set).
    pub fn without_rate_limits(self) -> Self {
        self.env("LUMINATE__RATE_LIMITS__METRICS_PER_SECOND", "1000000000")
            .env(
                "LUMINATE__RATE_LIMITS__WRITE_REQUESTS_PER_SECOND",
                "1000000",
            )
            .env(
                "LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND",
                "1000000",
            )
    }

    /// On the ClickHouse backend at `addresses` (HTTP `host:port`), in `database`, with a breaker that
    /// opens after 3 outages and probes every 500 ms (tests wait for recovery, not for defaults).
    pub fn clickhouse(self, addresses: &[&str], database: &str) -> Self {
        self.env("LUMINATE_STORAGE_BACKEND", "clickhouse")
            .env("LUMINATE_CLICKHOUSE_ADDRESSES", &addresses.join(","))
            .env("LUMINATE_CLICKHOUSE_DATABASE", database)
            .env("LUMINATE_CLICKHOUSE_BREAKER_FAILURE_THRESHOLD", "3")
            .env("LUMINATE_CLICKHOUSE_BREAKER_COOL_DOWN", "500ms")
    }

    /// Run under `program args…` (see [`Launch::runner`]).
    pub fn runner(mut self, program_and_args: &[&str]) -> Self {
        self.runner = program_and_args.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    fn command(&self) -> Command {
        let binary = env!("CARGO_BIN_EXE_luminate");
        let mut cmd = match self.runner.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(binary);
                cmd
            }
            None => Command::new(binary),
        };
        if let Some(args) = &self.args {
            cmd.args(args);
        } else {
            cmd.arg("serve").arg("--data-dir").arg(&self.data_dir);
            if !self.no_listen_flag {
                cmd.args(["--listen", "127.0.0.1:0"]);
            }
            if let Some(config) = &self.config {
                cmd.arg("--config").arg(config);
            }
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        // Only what the test sets: a developer's own LUMINATE_* variables must not change answers.
        for (key, _) in std::env::vars() {
            if key.starts_with("LUMINATE") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("RUST_LOG");
        // Test servers run side by side: OTLP/gRPC on an OS-chosen port (see `Luminate::grpc_url`)
        // unless the test sets one; servers on a fixed API port would otherwise all take 4317.
        cmd.env("LUMINATE_OTLP_GRPC_PORT", "0");
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the binary expecting it to stop by itself (a refused start); returns its status and output.
    pub fn run_to_exit(&self) -> (ExitStatus, String) {
        let mut child = self.command().spawn().expect("spawn luminate");
        let output = collect_output(&mut child, None);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait luminate") {
                thread::sleep(Duration::from_millis(50));
                return (status, output.lock().expect("output lock").join("\n"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "luminate did not exit; output:\n{}",
                    output.lock().expect("output lock").join("\n")
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server and waits until it listens.
    pub fn start(&self) -> Luminate {
        let mut child = self.command().spawn().expect("spawn luminate");
        let (tx, rx) = mpsc::channel();
        let output = collect_output(&mut child, Some(tx));
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "luminate did not start; output:\n{}",
                    output.lock().expect("output lock").join("\n")
                );
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Luminate {
            child: Some(child),
            base: addr,
            agent,
            output,
            launch: self.clone(),
        }
    }
}

/// Reads stdout and stderr into a shared buffer; sends the listen address when it appears.
fn collect_output(
    child: &mut Child,
    listening: Option<mpsc::Sender<String>>,
) -> Arc<Mutex<Vec<String>>> {
    let output = Arc::new(Mutex::new(Vec::new()));
    let streams: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().expect("piped stdout")),
        Box::new(child.stderr.take().expect("piped stderr")),
    ];
    for stream in streams {
        let (output, listening) = (output.clone(), listening.clone());
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let (Some(tx), Some(addr)) = (&listening, line.strip_prefix(LISTEN_PREFIX)) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                output.lock().expect("output lock").push(line);
            }
        });
    }
    output
}

/// A running server.
pub struct Luminate {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    agent: ureq::Agent,
    output: Arc<Mutex<Vec<String>>>,
    launch: Launch,
}

/// A response: status and JSON body (`Null` when empty).
pub type Answer = (u16, Value);

fn read_answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("HTTP exchange");
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("read body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

impl Luminate {
    /// Starts with defaults over `data_dir`.
    pub fn start(data_dir: &Path) -> Self {
        Launch::new(data_dir).start()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the server printed so far.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").join("\n")
    }

    /// How it was started (to restart it the same way).
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `http://127.0.0.1:PORT` of OTLP over gRPC, from its start-up line (printed before the API's).
    pub fn grpc_url(&self) -> String {
        let output = self.output.lock().expect("output lock");
        output
            .iter()
            .find_map(|line| line.strip_prefix(GRPC_PREFIX))
            .map(|url| url.trim().to_owned())
            .unwrap_or_else(|| panic!("no `{GRPC_PREFIX}` line in:\n{}", output.join("\n")))
    }

    /// GET.
    pub fn get(&self, path: &str) -> Answer {
        read_answer(self.agent.get(self.url(path)).call())
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Answer {
        read_answer(self.agent.delete(self.url(path)).call())
    }

    /// POST a JSON value.
    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(
            path,
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
    }

    /// POST bytes with the given headers.
    pub fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        let mut request = self.agent.post(self.url(path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        read_answer(request.send(&body[..]))
    }

    /// POST a JSON value; `None` when the exchange failed (the server died mid-request).
    pub fn try_post_json(&self, path: &str, body: &Value) -> Option<Answer> {
        let mut response = self
            .agent
            .post(self.url(path))
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes())
            .ok()?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().ok()?;
        Some((status, serde_json::from_str(&text).ok()?))
    }

    /// POST `{"metrics": points}` to the write route.
    pub fn write(&self, points: &[Value]) -> Answer {
        self.post_json("/api/v1/write", &json!({ "metrics": points }))
    }

    /// POST a query; panics unless it answers 200.
    pub fn query(&self, query: &Value) -> Value {
        let (status, body) = self.post_json("/api/v1/query", query);
        assert_eq!(status, 200, "query {query} answered {body}");
        body
    }

    /// Points of `metric` in the last `window` (7 days by default: everything writable).
    pub fn count(&self, metric: &str) -> u64 {
        let body = self.query(&json!({
            "queryType": "aggregate", "metricName": metric, "aggregation": "count",
            "timeRange": {"start": now_ms() - 8 * 86_400_000, "end": now_ms() + 7_200_000},
        }));
        body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|g| g["count"].as_u64().expect("count"))
            .sum()
    }

    /// Sends SIGTERM and waits for the exit (at most 30 s).
    pub fn terminate(self) -> ExitStatus {
        self.signal("TERM");
        self.wait()
    }

    /// Sends a signal (`TERM`, `KILL`) without waiting.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit by itself (at most 30 s).
    pub fn wait(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_exit(&mut child, Duration::from_secs(30)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("luminate did not exit; output:\n{}", self.output())
        })
    }

    /// SIGKILL: the process dies at once, as in a crash (it may already be dead).
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait luminate") {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for Luminate {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A point as JSON.
pub fn point(name: &str, timestamp: i64, value: f64, dims: &[(&str, &str)]) -> Value {
    let dims: serde_json::Map<String, Value> = dims
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({"name": name, "timestamp": timestamp, "value": value, "dimensions": dims})
}

/// Polls `check` every 100 ms until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// One crash round's writers: the writer's name, points acknowledged (200) and points sent.
pub type WriterTally = (String, u64, u64);

/// Runs `writers` threads that post `batch`-point writes of `metric` (dimensions `round` and `writer`,
/// every point distinct) for `run_for`, then SIGKILLs the server while they are mid-stream and returns
/// what each writer sent and had acknowledged. A write cut off by the kill counts as sent, not acked.
pub fn write_until_killed(
    server: &Luminate,
    metric: &str,
    round: usize,
    writers: usize,
    batch: u64,
    run_for: Duration,
) -> Vec<WriterTally> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let round = format!("r{round}");
    thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (stop, round) = (&stop, &round);
                scope.spawn(move || {
                    let writer = format!("w{w}");
                    let (mut acked, mut sent) = (0u64, 0u64);
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let now = now_ms();
                        let points: Vec<Value> = (0..batch)
                            .map(|i| {
                                let dims = [("round", round.as_str()), ("writer", writer.as_str())];
                                point(metric, now - i as i64, (sent + i) as f64, &dims)
                            })
                            .collect();
                        sent += batch;
                        match server.try_post_json("/api/v1/write", &json!({ "metrics": points })) {
                            Some((200, _)) => acked += batch,
                            Some((status, body)) => panic!("write answered {status}: {body}"),
                            None => break,
                        }
                    }
                    (writer, acked, sent)
                })
            })
            .collect();
        thread::sleep(run_for);
        server.signal("KILL");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect()
    })
}

/// Stored points of `metric` per (round, writer), as written by [`write_until_killed`].
pub fn counts_by_round_and_writer(
    server: &Luminate,
    metric: &str,
) -> std::collections::HashMap<(String, String), u64> {
    let body = server.query(&json!({
        "queryType": "aggregate", "metricName": metric, "aggregation": "count", "groupBy": ["round", "writer"],
        "timeRange": {"relative": "1h"}, "limit": 1000,
    }));
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|g| {
            let key = (
                g["groupKey"]["round"].as_str().expect("round").to_owned(),
                g["groupKey"]["writer"].as_str().expect("writer").to_owned(),
            );
            (key, g["count"].as_u64().expect("count"))
        })
        .collect()
}

/// A GET that keeps the body as text: status, `Content-Type`, body.
pub fn get_text(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.call().expect("HTTP exchange");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.body_mut().read_to_string().expect("read body");
    (status, content_type, body)
}

/// A gzip stream inflated.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out)
        .expect("a gzip stream");
    out
}

/// The distinct values of `label` among the samples of `metric`.
pub fn label_values(text: &str, metric: &str, label: &str) -> HashSet<String> {
    let key = format!("{label}=\"");
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .filter_map(|line| {
            let start = line.find(&key)? + key.len();
            let end = line[start..].find('"')? + start;
            Some(line[start..end].to_owned())
        })
        .collect()
}
