//! The server under test when `luminate bench` runs without `--url`: `luminate serve` started from this
//! very executable on `127.0.0.1:0` over a data directory (or, with `--clickhouse`, over a ClickHouse
//! database), so that the benchmark can read its memory (`/proc/<pid>/status`), CPU time and bytes on
//! disk. Owns the child process and stops it (SIGTERM, then SIGKILL) on every path, `Drop` included.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::BenchError;
use super::clickhouse::ClickhouseTarget;

/// How long the server may take to listen (WAL replay of a reused data directory included).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a graceful stop may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of server output kept to explain a failure.
const KEPT_LINES: usize = 40;
const LISTEN_PREFIX: &str = "luminate listening on ";

/// A running `luminate serve`.
pub struct SpawnedServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where its data lives (measured for bytes on disk).
    pub data_dir: PathBuf,
    /// Keeps a temporary data directory alive until the server is gone.
    _temp: Option<tempfile::TempDir>,
    /// The last lines the server printed, for error messages.
    output: Arc<Mutex<VecDeque<String>>>,
}

impl SpawnedServer {
    /// Starts the server over `data_dir` (a fresh temporary directory when `None`) — or on the ClickHouse
    /// backend in `clickhouse`'s database — with a series limit that the dataset cannot reach and rate
    /// limits out of the way: the benchmark measures the storage, not the admission policy.
    pub fn start(
        data_dir: Option<&Path>,
        clickhouse: Option<&ClickhouseTarget>,
        max_series: u64,
    ) -> Result<Self, BenchError> {
        Self::start_with(data_dir, clickhouse, max_series, &[])
    }

    /// [`SpawnedServer::start`] with more `LUMINATE_*` settings in `env` (applied last).
    pub fn start_with(
        data_dir: Option<&Path>,
        clickhouse: Option<&ClickhouseTarget>,
        max_series: u64,
        env: &[(&str, &str)],
    ) -> Result<Self, BenchError> {
        let (temp, data_dir) = match data_dir {
            Some(dir) => (None, dir.to_owned()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("luminate-bench-")
                    .tempdir()
                    .map_err(|e| BenchError::io("create a temporary data directory", e))?;
                let path = temp.path().to_owned();
                (Some(temp), path)
            }
        };
        let exe = std::env::current_exe()
            .map_err(|e| BenchError::io("find the luminate executable", e))?;
        let mut command = Command::new(exe);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir);
        // The caller's LUMINATE_* settings (a config file, a port, limits) must not change what is measured.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LUMINATE") {
                command.env_remove(key);
            }
        }
        command
            .env(
                "LUMINATE__CARDINALITY_LIMITS__MAX_UNIQUE_SERIES_PER_METRIC",
                max_series.max(1).to_string(),
            )
            .env("LUMINATE__RATE_LIMITS__METRICS_PER_SECOND", "1000000000")
            .env(
                "LUMINATE__RATE_LIMITS__WRITE_REQUESTS_PER_SECOND",
                "1000000",
            )
            .env(
                "LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND",
                "1000000",
            )
            .env("LUMINATE__LOGGING__LEVEL", "warn")
            .envs(clickhouse.iter().flat_map(|ch| {
                [
                    ("LUMINATE__STORAGE__BACKEND", "clickhouse".to_owned()),
                    (
                        "LUMINATE__STORAGE__CLICKHOUSE__ADDRESSES",
                        ch.address.clone(),
                    ),
                    (
                        "LUMINATE__STORAGE__CLICKHOUSE__DATABASE",
                        ch.database.clone(),
                    ),
                    // The dataset's dimensions, each grouped or filtered by some query: what an
                    // operator of this data would give columns of their own.
                    (
                        "LUMINATE__STORAGE__CLICKHOUSE__DIMENSION_COLUMNS",
                        "customer_id,endpoint,region,status_code".to_owned(),
                    ),
                    // Queries ask for one customer's points: its points one range of the key.
                    (
                        "LUMINATE__STORAGE__CLICKHOUSE__SORT_DIMENSIONS",
                        "customer_id".to_owned(),
                    ),
                ]
            }))
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| BenchError::io("start luminate serve", e))?;

        let output = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        let streams: Vec<Box<dyn Read + Send>> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Drain both pipes for the server's whole life: a full pipe would block its logging.
        for stream in streams {
            let (output, tx) = (output.clone(), tx.clone());
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line.strip_prefix(LISTEN_PREFIX) {
                        let _ = tx.send(addr.trim().to_owned());
                    }
                    if let Ok(mut kept) = output.lock() {
                        if kept.len() == KEPT_LINES {
                            kept.pop_front();
                        }
                        kept.push_back(line);
                    }
                }
            });
        }
        let mut server = Self {
            child: Some(child),
            url: String::new(),
            data_dir,
            _temp: temp,
            output,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(url) => {
                    server.url = url;
                    return Ok(server);
                }
                Err(_) if Instant::now() > deadline => {
                    return Err(BenchError::Server(format!(
                        "luminate serve did not listen within {START_TIMEOUT:?}; output:\n{}",
                        server.output()
                    )));
                }
                Err(_) => {
                    let exited = server
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten());
                    if let Some(status) = exited {
                        thread::sleep(Duration::from_millis(50));
                        return Err(BenchError::Server(format!(
                            "luminate serve exited ({status}) before listening; output:\n{}",
                            server.output()
                        )));
                    }
                }
            }
        }
    }

    /// The process id, as `/proc` names it.
    pub fn pid(&self) -> Option<String> {
        self.child.as_ref().map(|c| c.id().to_string())
    }

    /// The last lines the server printed.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .map(|kept| kept.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Stops the server gracefully (SIGTERM: it syncs and exits), or kills it after [`STOP_TIMEOUT`].
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// [`SpawnedServer::stop`], answering how the server exited: `None` when it did not exit within
    /// [`STOP_TIMEOUT`] of SIGTERM and had to be killed.
    pub fn stop_with_status(mut self) -> Option<ExitStatus> {
        self.shutdown()
    }

    /// Kills the server with SIGKILL, a crash: no sync, no shutdown of any kind, and reaps it.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn shutdown(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // `kill` the command rather than a signal call: the workspace forbids `unsafe`, and std sends
        // only SIGKILL, which would skip the server's final sync.
        let terminated = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        if terminated {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(status);
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
