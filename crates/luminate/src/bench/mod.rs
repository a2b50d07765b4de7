//! `luminate bench`: an end-to-end benchmark over HTTP. It generates a seeded high-cardinality dataset,
//! starts a server from this executable (or uses `--url`), times the bulk ingest, measures what the
//! server costs (bytes on disk, peak RSS, CPU), times a fixed query set and checks every answer against
//! the exact reference computed from the dataset. With `--dataset-out` it only writes the dataset as
//! files for `bench/peers.sh`, which loads the same points into VictoriaMetrics and ClickHouse. With
//! `--clickhouse ADDR` the spawned server runs on the ClickHouse backend instead of the embedded engine
//! (`bench/backends.sh` runs both and prints them side by side).
//!
//! The phases live one per module: [`dataset`] (what the points are), [`answers`] (the exact answers),
//! [`formats`] (bytes of each wire format), [`load`] (encoding and the timed ingest), [`queries`] (the
//! query set and its timing), [`server`] (the spawned server), [`clickhouse`] (the ClickHouse side of
//! a `--clickhouse` run), [`procstat`] (memory, CPU, disk), [`export`] (dataset files), [`report`]
//! (table and JSON), [`instrumentation`] (`--instrumentation`: the self-metrics' cost, metrics on vs
//! off). Progress goes to stderr, the report to stdout.

pub mod answers;
pub mod clickhouse;
pub mod dataset;
pub mod export;
pub mod formats;
pub mod http;
pub mod instrumentation;
pub mod load;
pub mod procstat;
pub mod queries;
pub mod report;
pub mod server;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressDrawTarget};

use answers::Reference;
use clickhouse::ClickhouseTarget;
use dataset::{Dataset, HOUR_MS, Spec};
use load::Protocol;
use report::{ClickhouseFigures, DatasetFigures, QueryFigures, Report, median};
use server::SpawnedServer;

/// Why a benchmark run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or process operation failed.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP exchange itself failed (connection refused, reset, timeout).
    #[error("{url}: {detail}")]
    Http {
        /// The request URL.
        url: String,
        /// The client's error.
        detail: String,
    },
    /// The server answered, but not with what the benchmark needs.
    #[error("{request} answered {status}: {body}")]
    Status {
        /// Which request.
        request: String,
        /// HTTP status.
        status: u16,
        /// The body, or what was wrong with it.
        body: String,
    },
    /// The server could not be started or misbehaved.
    #[error("{0}")]
    Server(String),
}

impl BenchError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// `luminate bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Benchmark a running server instead of spawning one (then memory and disk are not measured;
    /// the server should hold no other data of these metrics, or the answer checks fail).
    #[arg(long)]
    pub url: Option<String>,
    /// `api_latency` points to write.
    #[arg(long, default_value_t = 10_000_000)]
    pub points: u64,
    /// Distinct customers (Zipf-distributed, s = 1.1).
    #[arg(long, default_value_t = 100_000)]
    pub customers: u32,
    /// Distinct `api_latency` series to aim for (sets how many endpoint × region × status
    /// combinations each customer uses; the report gives the exact count generated).
    #[arg(long, default_value_t = 2_000_000)]
    pub series_target: u64,
    /// `requests_total` counter points (spread over up to 400 series).
    #[arg(long, default_value_t = 1_440_000)]
    pub counter_points: u64,
    /// First millisecond of the hour the data covers (Unix ms); default: the hour that ended at the
    /// last whole minute, so that every timestamp is in the past.
    #[arg(long)]
    pub hour_start: Option<i64>,
    /// Length of the time the data covers, in ms (default: an hour). A shorter span makes a small
    /// dataset as dense as a large one: several points per millisecond, as 10 M points an hour have.
    #[arg(long, default_value_t = HOUR_MS)]
    pub span_ms: i64,
    /// Points per write request.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Concurrent writer connections.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Seed of the dataset.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Send gzip-compressed write bodies (JSON and OTLP; remote write is always snappy).
    #[arg(long)]
    pub gzip: bool,
    /// How the points are sent: Luminate's JSON, Prometheus remote write 1.0 (protobuf + snappy) at
    /// `/api/v1/write`, or OTLP/HTTP protobuf at `/v1/metrics`. The answer checks are the same.
    #[arg(long, value_enum, default_value_t = Protocol::Json)]
    pub protocol: Protocol,
    /// Only time the load: no queries, no answer checks; print the ingest figures. With `--url` this
    /// times another system's write path (VictoriaMetrics' `/api/v1/write` with `--protocol
    /// remote-write`, as `bench/peers.sh` does).
    #[arg(long, conflicts_with_all = ["dataset_out", "instrumentation"])]
    pub load_only: bool,
    /// Query the spawned server's data as the ingest left it. By default it is settled first (`POST
    /// /api/v1/admin/flush`: the head flushed to parts, each partition merged), the form data takes once
    /// writes pause and the one bench/peers.sh measures DuckDB and chDB in.
    #[arg(long)]
    pub no_settle: bool,
    /// Data directory of the spawned server (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Runs of each query (the report gives the median and the minimum).
    #[arg(long, default_value_t = 5)]
    pub queries_repeat: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the dataset as files for `bench/peers.sh` into this directory and exit.
    #[arg(long)]
    pub dataset_out: Option<PathBuf>,
    /// Run the spawned server on the ClickHouse backend at this HTTP address (`host:port`) instead of
    /// the embedded engine; bytes on disk then come from ClickHouse's `system.parts`.
    #[arg(long, value_name = "ADDR", conflicts_with = "url")]
    pub clickhouse: Option<String>,
    /// The ClickHouse database of the run. It is DROPPED before the run (the answer checks need it
    /// empty) and after it: name one that holds nothing else.
    #[arg(long, default_value = "luminate_bench", requires = "clickhouse")]
    pub clickhouse_database: String,
    /// ClickHouse's process id, when it runs on this machine: its peak memory and CPU time are then
    /// added to Luminate's (otherwise they are reported as unknown).
    #[arg(long, value_name = "PID", requires = "clickhouse")]
    pub clickhouse_pid: Option<u32>,
    /// Measure what the self-metrics cost instead: the same request mix against a server with
    /// `metrics.enabled` true (scraped every second) and one with it false (see docs/benchmarks.md).
    #[arg(long, conflicts_with_all = ["url", "clickhouse", "dataset_out"])]
    pub instrumentation: bool,
    /// With `--instrumentation`: timed requests per server and round.
    #[arg(long, default_value_t = 20_000, requires = "instrumentation")]
    pub instrumentation_requests: usize,
    /// With `--instrumentation`: points per write request.
    #[arg(long, default_value_t = 100, requires = "instrumentation")]
    pub instrumentation_batch: usize,
    /// With `--instrumentation`: rounds (each measures both servers; the report gives medians).
    #[arg(long, default_value_t = 3, requires = "instrumentation")]
    pub instrumentation_rounds: usize,
    /// With `--instrumentation`: `metrics.interval` of the instrumented server (the collector's period).
    #[arg(long, default_value = "10s", value_parser = parse_duration, requires = "instrumentation")]
    pub instrumentation_interval: std::time::Duration,
    /// With `--instrumentation`: time between scrapes of the instrumented server.
    #[arg(long, default_value = "5s", value_parser = parse_duration, requires = "instrumentation")]
    pub instrumentation_scrape_every: std::time::Duration,
}

/// A duration as the configuration writes them (`500ms`, `10s`, `1m`).
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    luminate_model::time::parse_duration(text).map_err(|e| e.to_string())
}

/// Runs the benchmark; exit code 1 when a step fails or an answer differs from the reference.
pub fn run(args: BenchArgs) -> ExitCode {
    match execute(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "luminate bench: some answers differ from the exact reference (see the report)"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("luminate bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a progress line to stderr above any running bar.
fn log(multi: &MultiProgress, message: &str) {
    if multi.is_hidden() {
        eprintln!("{message}");
    } else {
        multi
            .println(message)
            .unwrap_or_else(|_| eprintln!("{message}"));
    }
}

/// The hour that ended at the last whole minute.
fn default_hour_start() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    now.div_euclid(60_000) * 60_000 - HOUR_MS
}

fn execute(args: &BenchArgs) -> Result<bool, BenchError> {
    // Bars only on a terminal: in a log file they would be thousands of redraws.
    let multi = if std::io::stderr().is_terminal() {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    };
    if args.instrumentation {
        let plan = instrumentation::Plan {
            requests: args.instrumentation_requests.max(10),
            batch: args.instrumentation_batch.max(1),
            connections: args.connections.max(1),
            rounds: args.instrumentation_rounds.max(1),
            collector_interval: args.instrumentation_interval,
            scrape_every: args.instrumentation_scrape_every,
        };
        instrumentation::run(&plan, args.json, &multi)?;
        return Ok(true);
    }
    let spec = Spec {
        points: args.points,
        customers: args.customers.max(1),
        series_target: args.series_target,
        counter_points: args.counter_points,
        hour_start: args.hour_start.unwrap_or_else(default_hour_start),
        span_ms: args.span_ms,
        seed: args.seed,
    };
    spec.check().map_err(BenchError::Server)?;
    let dataset = Dataset::new(spec);
    log(
        &multi,
        &format!(
            "dataset: {} api_latency points over {} customers ({} combinations each), {} requests_total points; \
             computing the exact answers",
            report::thousands(dataset.spec.points),
            report::thousands(dataset.spec.customers as u64),
            dataset.combos_per_customer,
            report::thousands(dataset.spec.counter_points),
        ),
    );
    let reference = Reference::compute(&dataset);
    log(
        &multi,
        &format!(
            "dataset: {} distinct api_latency series",
            report::thousands(reference.latency_series)
        ),
    );

    if let Some(dir) = &args.dataset_out {
        let meta = export::write_dataset(dir, &dataset, &reference, &multi)?;
        log(&multi, &format!("dataset written to {}", dir.display()));
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&meta).unwrap_or_default()
            );
        }
        return Ok(true);
    }

    if args.gzip && args.protocol == Protocol::RemoteWrite {
        return Err(BenchError::Server(
            "--gzip does not apply to --protocol remote-write (its bodies are snappy)".into(),
        ));
    }
    let encoded = load::encode(
        &dataset,
        args.batch,
        args.protocol,
        args.gzip,
        args.connections,
        &multi,
    );
    log(
        &multi,
        &format!(
            "encoded {} {} write bodies ({} bytes before compression, {} sent) in {:.2} s",
            report::thousands(encoded.bodies().count() as u64),
            args.protocol.as_str(),
            report::thousands(encoded.body_bytes),
            report::thousands(encoded.bodies().map(|b| b.bytes.len() as u64).sum()),
            encoded.elapsed.as_secs_f64()
        ),
    );

    let clickhouse = args
        .clickhouse
        .as_deref()
        .map(|address| {
            ClickhouseTarget::new(address, &args.clickhouse_database, args.clickhouse_pid)
        })
        .transpose()?;
    if let Some(ch) = &clickhouse {
        ch.drop_database()?;
        log(
            &multi,
            &format!(
                "storage: ClickHouse at {}, database {} (emptied)",
                ch.address, ch.database
            ),
        );
    }
    let server = match &args.url {
        Some(_) => None,
        None => Some(SpawnedServer::start(
            args.data_dir.as_deref(),
            clickhouse.as_ref(),
            dataset.spec.points + 1,
        )?),
    };
    let base_url = match (&args.url, &server) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(server)) => server.url.clone(),
        (None, None) => return Err(BenchError::Server("no server to benchmark".into())),
    };
    let pid = server.as_ref().and_then(SpawnedServer::pid);
    let server_cpu = || pid.as_deref().and_then(procstat::cpu_seconds);
    let memory = || pid.as_deref().and_then(procstat::memory);
    let disk = || match (&clickhouse, &server) {
        (Some(ch), _) => ch.disk_bytes().ok(),
        (None, Some(s)) => procstat::dir_bytes(&s.data_dir).ok(),
        (None, None) => None,
    };
    let clickhouse_cpu = || clickhouse.as_ref().and_then(ClickhouseTarget::cpu_seconds);
    log(&multi, &format!("ingest into {base_url}"));

    let cpu_before = server_cpu();
    let clickhouse_cpu_before = clickhouse_cpu();
    let ingest = load::ingest(
        &base_url,
        &encoded.queues,
        args.connections,
        args.protocol,
        args.gzip,
        &multi,
    )
    .map_err(|e| with_server_output(e, server.as_ref()))?;
    let server_cpu_ingest = cpu_before.zip(server_cpu()).map(|(a, b)| b - a);
    // A spawned server is Luminate with its `/metrics` open: a sample it dropped as out of order or
    // duplicate stops the run here. With `--url` (maybe another system, maybe `/metrics` closed) the
    // answer checks are what notices a dropped point (every count query counts every point).
    if server.is_some() {
        load::check_no_newest_sample_drops(&base_url)
            .map_err(|e| with_server_output(e, server.as_ref()))?;
    }
    let clickhouse_cpu_ingest = clickhouse_cpu_before
        .zip(clickhouse_cpu())
        .map(|(a, b)| b - a);
    let (encode_seconds, body_bytes) = (encoded.elapsed.as_secs_f64(), encoded.body_bytes);
    // The bodies are as large as the dataset's JSON: give the memory back before the queries.
    drop(encoded);
    let disk_bytes_after_ingest = disk();
    let rss_after_ingest = memory().map(|m| m.rss);
    let settle_seconds = if server.is_some() && !args.no_settle {
        log(
            &multi,
            "settling the stored data (POST /api/v1/admin/flush)",
        );
        Some(settle(&base_url).map_err(|e| with_server_output(e, server.as_ref()))?)
    } else {
        None
    };
    let disk_bytes_settled = settle_seconds.and_then(|_| disk());
    let clickhouse_rss_after_ingest = clickhouse
        .as_ref()
        .and_then(ClickhouseTarget::memory)
        .map(|m| m.rss);
    log(
        &multi,
        &format!(
            "ingested {} points in {:.2} s: {} points/s",
            report::thousands(ingest.accepted),
            ingest.wall.as_secs_f64(),
            report::thousands(
                (ingest.accepted as f64 / ingest.wall.as_secs_f64().max(1e-9)) as u64
            )
        ),
    );

    let mut figures = Vec::new();
    // `--load-only`: the target may not be Luminate, or only the load is of interest.
    let query_set = if args.load_only {
        Vec::new()
    } else {
        queries::query_set(&reference)
    };
    for query in query_set {
        let timed = queries::run(&base_url, &query, args.queries_repeat)
            .map_err(|e| with_server_output(e, server.as_ref()))?;
        let check = reference
            .answers
            .get(query.name)
            .map_or(Ok(()), |expected| answers::compare(expected, &timed.answer));
        log(
            &multi,
            &format!(
                "{:<52} median {:>9.1} ms  {}",
                query.description,
                median(&timed.runs_ms),
                if check.is_ok() { "exact" } else { "MISMATCH" }
            ),
        );
        figures.push(QueryFigures {
            name: query.name,
            description: query.description,
            server_median_ms: (!timed.server_ms.is_empty()).then(|| median(&timed.server_ms)),
            runs_ms: timed.runs_ms,
            check,
            answer: timed.answer.to_json(),
        });
    }
    let disk_bytes = disk();
    let peak_rss = memory().map(|m| m.peak);
    let clickhouse_figures = clickhouse.as_ref().map(|ch| ClickhouseFigures {
        address: ch.address.clone(),
        database: ch.database.clone(),
        pid: ch.pid,
        cpu_ingest: clickhouse_cpu_ingest,
        rss_after_ingest: clickhouse_rss_after_ingest,
        peak_rss: ch.memory().map(|m| m.peak),
    });
    if let Some(server) = server {
        server.stop();
    }
    if let Some(ch) = &clickhouse {
        ch.drop_database()?;
    }

    let report = Report {
        server: args.url.clone().unwrap_or_else(|| "spawned".to_owned()),
        dataset: DatasetFigures {
            latency_points: dataset.spec.points,
            counter_points: dataset.spec.counter_points,
            customers: dataset.spec.customers,
            latency_series: reference.latency_series,
            series_target: dataset.spec.series_target,
            combos_per_customer: dataset.combos_per_customer,
            seed: dataset.spec.seed,
            hour_start: dataset.spec.hour_start,
        },
        encode_seconds,
        protocol: args.protocol,
        load_only: args.load_only,
        body_bytes,
        connections: args.connections.max(1),
        batch: args.batch,
        gzip: args.gzip,
        ingest,
        server_cpu_ingest,
        disk_bytes_after_ingest,
        settle_seconds,
        disk_bytes_settled,
        disk_bytes,
        rss_after_ingest,
        peak_rss,
        clickhouse: clickhouse_figures,
        queries: figures,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        );
    } else {
        print!("{}", report.to_text());
    }
    Ok(report.all_checks_passed())
}

/// Appends what the spawned server last printed to an error, which often says why.
fn with_server_output(error: BenchError, server: Option<&SpawnedServer>) -> BenchError {
    match server.map(SpawnedServer::output) {
        Some(output) if !output.is_empty() => {
            BenchError::Server(format!("{error}\nlast server output:\n{output}"))
        }
        _ => error,
    }
}

/// Settles the server's stored data (`POST /api/v1/admin/flush`); returns the seconds it took.
fn settle(base_url: &str) -> Result<f64, BenchError> {
    let started = std::time::Instant::now();
    let url = format!("{base_url}/api/v1/admin/flush");
    match http::post(&http::agent(), &url, &[], b"")? {
        (200, _) => Ok(started.elapsed().as_secs_f64()),
        (status, body) => Err(BenchError::Server(format!(
            "settling the data: {url} answered {status}: {body}"
        ))),
    }
}
