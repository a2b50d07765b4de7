//! A real `clickhouse-server` for tests (feature `test-server`): started as a child process with a
//! generated configuration in a temporary directory, on free loopback ports, and killed when dropped.
//!
//! The server runs under a small `sh` supervisor whose standard input is a pipe from this process.
//! Closing the pipe — by [`ClickhouseServer::stop`], by dropping the server, or by this process
//! exiting or being killed — makes the supervisor stop the server and wait for it, so no test leaves a
//! server behind, not even one shared through a `static` (which Rust never drops; its directory is
//! removed by the supervisor then). [`ClickhouseServer::stop`] and [`ClickhouseServer::start_again`]
//! keep the data directory and ports, for failure tests; two servers and a `remote_servers` cluster
//! give a two-shard `Distributed` setup ([`two_shard_cluster`]).
//!
//! When `clickhouse-server` is not installed, starting one panics with the command that installs it:
//! tests of this backend fail rather than skip.
//!
//! With `LUMINATE_CLICKHOUSE_SERVER=chdb` in the environment, every server started here is instead
//! `tests/chdb_server.py`: ClickHouse's HTTP interface in front of chDB, the ClickHouse 26.x engine
//! in-process, under the same supervisor and with the same data-directory life cycle. That is how the
//! backend's modern-server path (see `schema::Features`) is verified. The few tests that need what the
//! adapter cannot be (see [`skip_on_adapter`]) say so and return early on it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::settings::ClickhouseSettings;
use crate::sql::percent_encode;

/// Where Debian's package installs the server.
pub const SERVER_BINARY: &str = "/usr/sbin/clickhouse-server";
/// A user with a password, to test that credentials reach ClickHouse.
pub const PASSWORD_USER: (&str, &str) = ("luminate", "s3cr3t-pa55");
/// How long a server may take to answer `SELECT 1` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable choosing the server tests start: unset or `clickhouse-server` for the real
/// server, `chdb` for the chDB adapter.
pub const SERVER_ENV: &str = "LUMINATE_CLICKHOUSE_SERVER";
/// The adapter script, next to this crate's tests.
const ADAPTER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb_server.py");

/// What the tests of this process run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// Debian's `clickhouse-server` 18.16 at [`SERVER_BINARY`].
    Real,
    /// chDB (ClickHouse 26.x in-process) behind `tests/chdb_server.py`.
    ChdbAdapter,
}

impl ServerKind {
    /// The kind [`SERVER_ENV`] selects; any other value than the two known ones panics (a typo must
    /// not silently test the other server).
    pub fn selected() -> Self {
        match std::env::var(SERVER_ENV).as_deref() {
            Err(_) | Ok("" | "clickhouse-server") => Self::Real,
            Ok("chdb") => Self::ChdbAdapter,
            Ok(other) => {
                panic!(
                    "{SERVER_ENV}={other:?}: expected `clickhouse-server` (the default) or `chdb`"
                )
            }
        }
    }

    /// The `major.minor` the server reports.
    pub fn version_prefix(self) -> &'static str {
        match self {
            Self::Real => "18.16.",
            Self::ChdbAdapter => "26.",
        }
    }
}

/// Whether the calling test must not run here because the chDB adapter cannot stand in for a real
/// server in what it checks; prints the reason, so that the test's output says it was skipped and why.
/// Such tests still run on every real-server run.
pub fn skip_on_adapter(reason: &str) -> bool {
    let skip = ServerKind::selected() == ServerKind::ChdbAdapter;
    if skip {
        eprintln!("SKIPPED on the chDB adapter (runs on clickhouse-server 18.16): {reason}");
    }
    skip
}

/// The supervisor: starts the server, records its pid, stops it when its standard input says so or
/// closes (`kill` → SIGKILL; anything else → SIGTERM, SIGKILL after 30 s), waits for it, and removes
/// the directory when the input closed without a word (the test process is gone).
const SUPERVISOR: &str = r#"
dir=$1
shift
"$@" >>"$dir/server.log" 2>&1 &
pid=$!
echo "$pid" > "$dir/server.pid"
how=""
read -r how
if [ "$how" = kill ]; then
  kill -KILL "$pid" 2>/dev/null
else
  kill -TERM "$pid" 2>/dev/null
  ( sleep 30; kill -KILL "$pid" 2>/dev/null ) &
  watchdog=$!
fi
wait "$pid"
[ -n "${watchdog:-}" ] && kill "$watchdog" 2>/dev/null
[ -z "$how" ] && rm -rf "$dir"
exit 0
"#;

/// Ports of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// HTTP interface (what the backend uses).
    pub http: u16,
    /// Native protocol (used by `Distributed` tables between servers).
    pub tcp: u16,
    /// Interserver HTTP.
    pub interserver: u16,
}

/// A running (or stopped) `clickhouse-server`.
#[derive(Debug)]
pub struct ClickhouseServer {
    kind: ServerKind,
    dir: tempfile::TempDir,
    ports: Ports,
    supervisor: Option<(Child, ChildStdin)>,
}

impl ClickhouseServer {
    /// Starts a server on free loopback ports and waits until it answers.
    pub fn start() -> Self {
        Self::start_with_cluster(None)
    }

    fn start_with_cluster(cluster: Option<(&str, &[Ports])>) -> Self {
        let kind = ServerKind::selected();
        require_binary(kind);
        let mut last_error = String::new();
        // Free ports are found by binding port 0 and releasing it; another process may take one in
        // between, so a server that cannot start is retried on new ports.
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("luminate-clickhouse-")
                .tempdir()
                .unwrap_or_else(|e| panic!("cannot create a directory for clickhouse-server: {e}"));
            let ports = free_ports();
            write_config(dir.path(), ports, cluster);
            let mut server = Self {
                kind,
                dir,
                ports,
                supervisor: None,
            };
            match server.launch() {
                Ok(()) => return server,
                Err(e) => {
                    server.stop();
                    last_error = e;
                }
            }
        }
        panic!("clickhouse-server did not start: {last_error}");
    }

    /// What runs behind the address.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The server's HTTP address, `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.ports.http)
    }

    /// The server's ports.
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// Settings of a store on this server using `database`, with short timeouts for tests.
    pub fn settings(&self, database: &str) -> ClickhouseSettings {
        ClickhouseSettings {
            addresses: vec![self.address()],
            database: database.to_owned(),
            request_timeout: Duration::from_secs(30),
            breaker_cool_down: Duration::from_millis(500),
            breaker_failure_threshold: 3,
            ..ClickhouseSettings::default()
        }
    }

    /// The server's process id while it runs (for memory and CPU figures).
    pub fn pid(&self) -> Option<u32> {
        server_pid(self.dir.path()).filter(|&pid| pid_alive(pid))
    }

    /// Whether the supervised server process is alive.
    pub fn is_running(&self) -> bool {
        self.supervisor.is_some() && server_pid(self.dir.path()).is_some_and(pid_alive)
    }

    fn launch(&mut self) -> Result<(), String> {
        let _ = std::fs::remove_file(self.dir.path().join("server.pid"));
        let dir = self.dir.path();
        let server: Vec<String> = match self.kind {
            ServerKind::Real => vec![
                SERVER_BINARY.into(),
                format!("--config-file={}", dir.join("config.xml").display()),
            ],
            ServerKind::ChdbAdapter => {
                let (user, password) = PASSWORD_USER;
                vec![
                    "python3".into(),
                    ADAPTER_SCRIPT.into(),
                    format!("--port={}", self.ports.http),
                    format!("--data={}", dir.join("data").display()),
                    format!("--user={user}:{password}"),
                ]
            }
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("luminate-clickhouse-supervisor")
            .arg(dir)
            .args(&server)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| "no stdin pipe to the supervisor".to_owned())?;
        self.supervisor = Some((child, stdin));
        let started = Instant::now();
        loop {
            if let Ok(body) = self.sql("SELECT 1")
                && body.trim() == "1"
            {
                return Ok(());
            }
            let pid = server_pid(self.dir.path());
            if pid.is_some_and(|p| !pid_alive(p)) {
                return Err(format!("it exited; its log:\n{}", self.log_tail()));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "no answer within {START_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops the server gracefully (SIGTERM) and waits for it; the data directory stays.
    pub fn stop(&mut self) {
        self.halt("term");
    }

    /// Kills the server (SIGKILL) and waits for it: a crash; the data directory stays.
    pub fn kill(&mut self) {
        self.halt("kill");
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but nothing answers — a
    /// hung server.
    /// Returns once every thread of the server is stopped: `kill` only queues the signal, and a thread
    /// busy on a loaded machine could otherwise still answer the request sent next.
    pub fn pause(&self) {
        assert!(
            self.signal("STOP"),
            "cannot send SIGSTOP to clickhouse-server"
        );
        let pid = server_pid(self.dir.path()).expect("the server's pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all_threads_stopped(pid) {
            assert!(
                Instant::now() < deadline,
                "clickhouse-server's threads did not all stop within 10 s of SIGSTOP"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        assert!(
            self.signal("CONT"),
            "cannot send SIGCONT to clickhouse-server"
        );
    }

    fn signal(&self, name: &str) -> bool {
        server_pid(self.dir.path()).is_some_and(|pid| {
            Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    fn halt(&mut self, how: &str) {
        if self.supervisor.is_some() {
            // A paused server would not act on SIGTERM (and a dead one needs nothing).
            self.signal("CONT");
        }
        if let Some((mut child, mut stdin)) = self.supervisor.take() {
            let _ = writeln!(stdin, "{how}");
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same ports and data directory.
    pub fn start_again(&mut self) {
        assert!(self.supervisor.is_none(), "the server is running");
        if let Err(e) = self.launch() {
            panic!("clickhouse-server did not start again: {e}");
        }
    }

    /// Runs one SQL statement over HTTP (a blocking client, for test set-up and checks) and returns
    /// the answer's body; `Err` carries the status line and body of a non-200 answer.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        http_post(self.ports.http, sql)
    }
}

impl Drop for ClickhouseServer {
    /// Kills the server: its directory is removed right after, so a graceful shutdown (which takes
    /// 18.16 seconds) would buy nothing.
    fn drop(&mut self) {
        self.kill();
    }
}

/// One server shared by every test of the calling test binary (started on first use). It is never
/// dropped; the supervisor stops it and removes its directory when the test process exits.
pub fn shared() -> &'static ClickhouseServer {
    static SERVER: OnceLock<ClickhouseServer> = OnceLock::new();
    SERVER.get_or_init(ClickhouseServer::start)
}

/// Two servers forming the cluster `cluster_name` of two shards (one replica each); each knows the
/// cluster, so a `Distributed` table can be created on either.
pub fn two_shard_cluster(cluster_name: &str) -> (ClickhouseServer, ClickhouseServer) {
    assert!(
        ServerKind::selected() == ServerKind::Real,
        "the chDB adapter cannot form a cluster (no native protocol, no remote_servers); tests of \
         Distributed tables must skip on it (testing::skip_on_adapter)"
    );
    require_binary(ServerKind::Real);
    let mut last_error = String::new();
    // As for one server: ports found free may be taken before a shard binds them (tests start
    // servers in parallel), so a pair that cannot start is retried on new ports.
    for _ in 0..3 {
        // The cluster names both servers' ports before either starts.
        let (a, b) = (free_ports(), free_ports());
        let shards = [a, b];
        let start = |ports: Ports| -> Result<ClickhouseServer, String> {
            let dir = tempfile::Builder::new()
                .prefix("luminate-clickhouse-shard-")
                .tempdir()
                .unwrap_or_else(|e| panic!("cannot create a directory for clickhouse-server: {e}"));
            write_config(dir.path(), ports, Some((cluster_name, &shards)));
            let mut server = ClickhouseServer {
                kind: ServerKind::Real,
                dir,
                ports,
                supervisor: None,
            };
            match server.launch() {
                Ok(()) => Ok(server),
                Err(e) => {
                    server.stop();
                    Err(e)
                }
            }
        };
        match start(a).and_then(|first| Ok((first, start(b)?))) {
            Ok(pair) => return pair,
            // A first shard that started is stopped when dropped.
            Err(e) => last_error = e,
        }
    }
    panic!("a shard of the cluster did not start: {last_error}");
}

fn require_binary(kind: ServerKind) {
    if kind == ServerKind::ChdbAdapter {
        // The adapter exits at once with a message naming the package when chdb is not importable,
        // which `launch` reports with its log: the run fails rather than skips.
        assert!(
            Path::new(ADAPTER_SCRIPT).exists(),
            "{ADAPTER_SCRIPT} is missing"
        );
        return;
    }
    assert!(
        Path::new(SERVER_BINARY).exists(),
        "{SERVER_BINARY} is missing: the ClickHouse backend's tests need a real server. Install it with \
         `apt-get update && apt-get install -y clickhouse-server` (Debian's package, 18.16)."
    );
}

fn free_ports() -> Ports {
    let bind = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
    };
    let (a, b, c) = (bind(), bind(), bind());
    let port = |l: &TcpListener| l.local_addr().map(|a| a.port()).unwrap_or(0);
    Ports {
        http: port(&a),
        tcp: port(&b),
        interserver: port(&c),
    }
}

fn write_config(dir: &Path, ports: Ports, cluster: Option<(&str, &[Ports])>) {
    let path = |name: &str| -> PathBuf {
        let p = dir.join(name);
        let _ = std::fs::create_dir_all(&p);
        p
    };
    let (data, tmp, user_files, schemas) = (
        path("data"),
        path("tmp"),
        path("user_files"),
        path("format_schemas"),
    );
    let remote_servers = cluster.map_or_else(String::new, |(name, shards)| {
        let shards: String = shards
            .iter()
            .map(|p| {
                format!(
                    "<shard><replica><host>127.0.0.1</host><port>{}</port></replica></shard>",
                    p.tcp
                )
            })
            .collect();
        format!("<remote_servers><{name}>{shards}</{name}></remote_servers>")
    });
    let (user, password) = PASSWORD_USER;
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <interserver_http_port>{interserver}</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <listen_host>127.0.0.1</listen_host>
    <path>{data}/</path>
    <tmp_path>{tmp}/</tmp_path>
    <user_files_path>{user_files}/</user_files_path>
    <format_schema_path>{schemas}/</format_schema_path>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>64</max_concurrent_queries>
    <timezone>UTC</timezone>
    {remote_servers}
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <{user}>
            <password>{password}</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{user}>
    </users>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <quotas><default></default></quotas>
</yandex>
"#,
        http = ports.http,
        tcp = ports.tcp,
        interserver = ports.interserver,
        data = data.display(),
        tmp = tmp.display(),
        user_files = user_files.display(),
        schemas = schemas.display(),
    );
    std::fs::write(dir.join("config.xml"), config)
        .unwrap_or_else(|e| panic!("cannot write clickhouse-server's config: {e}"));
}

fn server_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("server.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The state letter of a `/proc/.../stat` file (`R`, `S`, `T`, `Z`, ...), read after the command name's
/// closing parenthesis (the name may contain spaces); `None` when the file is gone or unreadable.
fn process_state(stat: &Path) -> Option<char> {
    let stat = std::fs::read_to_string(stat).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Whether every thread of `pid` is in the stopped state (`T` in `/proc/<pid>/task/<tid>/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    // A thread that exited meanwhile is no obstacle.
    tasks
        .flatten()
        .all(|task| process_state(&task.path().join("stat")).is_none_or(|state| state == 'T'))
}

/// Alive and not a zombie (the supervisor reaps the server only once told to stop).
fn pid_alive(pid: u32) -> bool {
    process_state(Path::new(&format!("/proc/{pid}/stat")))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// A minimal HTTP/1.0 POST (the server closes the connection after the answer).
fn http_post(port: u16, sql: &str) -> Result<String, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST /?wait_end_of_query=1&query={} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
        percent_encode(sql)
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed answer: {text}"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(body.to_owned())
    } else {
        Err(format!("{status}: {body}"))
    }
}

/// A service over `database` on the shared test server, its schema ensured, for the crate's unit tests.
/// It takes 18.16's schema path whatever the server (the adapter runs the modern path through the
/// store's own version check in the other tests).
#[cfg(test)]
pub(crate) async fn service(database: &str) -> crate::service::Service {
    let settings = shared().settings(database);
    let observer: std::sync::Arc<dyn crate::observe::ClickhouseObserver> =
        std::sync::Arc::new(crate::observe::Unobserved);
    let transport = crate::transport::Transport::new(&settings, observer.clone()).unwrap();
    let service = crate::service::Service::new(
        transport,
        &settings,
        crate::schema::ServerVersion::parse("18.16.1").unwrap(),
        observer,
    );
    crate::schema::ensure(&service).await.unwrap();
    service
}
