//! `luminate soak`: a server spawned from this executable is loaded for a long time — writers at a
//! target rate, readers asking every kind of question — and killed with SIGKILL, then restarted over
//! the same data directory, over and over. At the end the points stored must be exactly the points
//! acknowledged (checked live, after one more `kill -9`, and after a graceful stop, which must exit 0),
//! no question may have failed while the server was up, and the timeline shows memory, descriptors and
//! disk a minute at a time (docs/operations.md, "Soak"). `scripts/soak.sh` runs it for 30 minutes.
//!
//! The parts: [`target`] (the server the clients aim at, through its restarts), [`writer`] (batches
//! under idempotency keys, resent until acknowledged, and the ledger of what was), [`reader`] (the
//! questions), [`timeline`] (the samples), [`problems`] (what went wrong), [`report`].

pub mod problems;
pub mod reader;
pub mod report;
pub mod target;
pub mod timeline;
pub mod writer;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use luminate_model::testkit::Rng;
use serde_json::json;

use crate::bench::server::SpawnedServer;
use crate::bench::{BenchError, http, parse_duration};
use problems::Problems;
use reader::Readings;
use report::{Check, Report};
use target::Target;
use writer::{Ledger, METRIC, Plan, Stop};

/// How long a writer may go on resending its last batch once the load has stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// `luminate soak` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long the load runs (`90s`, `30m`, `2h`).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub duration: Duration,
    /// `kill -9`s during the load, spread evenly over it (each a quarter of the spacing early or late,
    /// at random, so that kills land anywhere in the flush and compaction cycles).
    #[arg(long, default_value_t = 100)]
    pub kills: usize,
    /// Points per second the writers aim at, together (an average: they catch up after a restart).
    #[arg(long, default_value_t = 200_000)]
    pub rate: u64,
    /// Writer threads, each with its own connection.
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// Points per write request.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
    /// Distinct `customer_id` values (each with 15 series: 5 endpoints × 3 regions).
    #[arg(long, default_value_t = 10_000)]
    pub customers: u32,
    /// Reader threads.
    #[arg(long, default_value_t = 2)]
    pub readers: usize,
    /// Each reader's pause between questions.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub query_pause: Duration,
    /// Time between samples of the timeline.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// Seed of the kills' timing.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Data directory of the spawned server (default: a temporary directory, removed afterwards). It
    /// must hold no `soak_latency` points: the checks count all of them.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the soak; exit code 1 when anything was lost or doubled, a question failed while the server was
/// up, the stop was not clean or the rate was not reached.
pub fn run(args: SoakArgs) -> ExitCode {
    match execute(&args) {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
                );
            } else {
                print!("{}", report.to_text());
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("luminate soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// When each kill happens, as offsets from the start.
fn kill_times(duration: Duration, kills: usize, seed: u64) -> Vec<Duration> {
    let spacing = duration.as_secs_f64() / (kills + 1) as f64;
    let mut rng = Rng::new(seed);
    (1..=kills)
        .map(|k| {
            let jitter = (rng.next_unit() - 0.5) * spacing / 2.0;
            Duration::from_secs_f64(k as f64 * spacing + jitter)
        })
        .collect()
}

/// Starts the server over `dir` with limits the soak cannot reach.
fn start(dir: &Path, plan: &Plan) -> Result<SpawnedServer, BenchError> {
    SpawnedServer::start(Some(dir), None, plan.series() + 1)
}

fn execute(args: &SoakArgs) -> Result<Report, BenchError> {
    let plan = Plan {
        writers: args.writers.max(1),
        batch: args.batch.max(1),
        rate: args.rate.max(1),
        customers: args.customers.max(1),
    };
    // A temporary directory lives (and is removed) with `_temp`, after the last server has stopped.
    let (_temp, dir) = match &args.data_dir {
        Some(dir) => (None, dir.clone()),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("luminate-soak-")
                .tempdir()
                .map_err(|e| BenchError::io("create a temporary data directory", e))?;
            let path = temp.path().to_owned();
            (Some(temp), path)
        }
    };
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string();

    let first_server = start(&dir, &plan)?;
    let target = Target::new(first_server.url.clone(), first_server.pid());
    let mut server = Some(first_server);
    let ledger = Ledger::new();
    let stop = Stop::default();
    let readers_stop = AtomicBool::new(false);
    let sampler_stop = AtomicBool::new(false);
    let readings = Readings::default();
    let problems = Problems::default();
    let bar = progress(args.duration);
    let kills = kill_times(args.duration, args.kills, args.seed);
    let mut restarts_s = Vec::new();
    let started = Instant::now();

    let (samples, outcome) = thread::scope(|scope| {
        let writers: Vec<_> = (0..plan.writers)
            .map(|id| {
                let (target, ledger, stop, problems, run_id) =
                    (&target, &ledger, &stop, &problems, &run_id);
                scope.spawn(move || writer::run(id, plan, run_id, target, ledger, stop, problems))
            })
            .collect();
        for id in 0..args.readers {
            let (target, readings, stop, problems) = (&target, &readings, &readers_stop, &problems);
            let (readers, pause, customers) = (args.readers, args.query_pause, plan.customers);
            scope.spawn(move || {
                reader::run(
                    id, readers, pause, customers, target, readings, stop, problems,
                )
            });
        }
        let sampler = {
            let (target, ledger, dir, stop) = (&target, &ledger, &dir, &sampler_stop);
            let every = args.sample_every;
            scope.spawn(move || timeline::run(every, started, target, ledger, dir, stop))
        };

        // The load, with its kills.
        let mut outcome = Ok(());
        for at in &kills {
            while started.elapsed() < *at {
                bar.set_position(started.elapsed().as_secs());
                bar.set_message(format!(
                    "{} points, {} kills",
                    crate::bench::report::thousands(ledger.points.load(Ordering::SeqCst)),
                    restarts_s.len()
                ));
                thread::sleep(Duration::from_millis(100));
            }
            target.going_down();
            if let Some(running) = server.take() {
                running.kill9();
            }
            let killed = Instant::now();
            match start(&dir, &plan) {
                Ok(restarted) => {
                    restarts_s.push(killed.elapsed().as_secs_f64());
                    target.up(restarted.url.clone(), restarted.pid());
                    server = Some(restarted);
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        while outcome.is_ok() && started.elapsed() < args.duration {
            bar.set_position(started.elapsed().as_secs());
            thread::sleep(Duration::from_millis(100));
        }
        let load_seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        readers_stop.store(true, Ordering::SeqCst);
        stop.stop.store(true, Ordering::SeqCst);
        if outcome.is_err() {
            stop.abandon.store(true, Ordering::SeqCst);
        }
        // Writers finish the batch in hand; one that cannot within the drain time gives it up.
        let drained = Instant::now();
        while !writers.iter().all(|w| w.is_finished()) {
            if drained.elapsed() > DRAIN_TIMEOUT {
                stop.abandon.store(true, Ordering::SeqCst);
            }
            thread::sleep(Duration::from_millis(20));
        }
        sampler_stop.store(true, Ordering::SeqCst);
        (
            sampler.join().unwrap_or_default(),
            outcome.map(|()| load_seconds),
        )
    });
    let seconds = outcome?;
    let server = server.ok_or_else(|| BenchError::Server("no server is running".into()))?;

    // What is stored against what was acknowledged: live, after one more crash, after a clean stop.
    let first = ledger.first_ms.load(Ordering::SeqCst);
    let last = ledger.last_ms.load(Ordering::SeqCst);
    let mut checks = vec![stored("live", &server.url, first, last)?];
    server.kill9();
    let server = start(&dir, &plan)?;
    checks.push(stored("after a final kill -9", &server.url, first, last)?);
    let graceful_exit = server.stop_with_status().and_then(|s| s.code());
    let server = start(&dir, &plan)?;
    checks.push(stored(
        "after a graceful stop and restart",
        &server.url,
        first,
        last,
    )?);
    server.stop();

    Ok(Report {
        seconds,
        target_rate: args.rate,
        restarts_s,
        points: ledger.points.load(Ordering::SeqCst),
        value_sum: ledger.value_sum.load(Ordering::SeqCst),
        batches: ledger.batches.load(Ordering::SeqCst),
        replayed: ledger.replayed.load(Ordering::SeqCst),
        resends: ledger.resends.load(Ordering::SeqCst),
        checks,
        graceful_exit,
        kinds: readings.snapshot(),
        samples,
        problems: problems.snapshot(),
    })
}

/// A bar over the load's seconds, on a terminal only.
fn progress(duration: Duration) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(duration.as_secs());
    if let Ok(style) = ProgressStyle::with_template("soak [{bar:40}] {pos}/{len} s  {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The count and value sum of every `soak_latency` point in `[first, last]`.
fn stored(when: &'static str, url: &str, first: i64, last: i64) -> Result<Check, BenchError> {
    if first > last {
        return Ok(Check {
            when,
            points: 0,
            value_sum: 0.0,
        });
    }
    let query = json!({"queryType": "aggregate", "metricName": METRIC,
        "timeRange": {"start": first, "end": last + 1}, "aggregation": "sum", "timeout": "30s"});
    let endpoint = format!("{url}/api/v1/query");
    let (status, body) = http::post(
        &http::agent(),
        &endpoint,
        &[("content-type", "application/json")],
        query.to_string().as_bytes(),
    )?;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let result = &answer["results"][0];
    match (status, result["count"].as_u64(), result["value"].as_f64()) {
        (200, Some(points), Some(value_sum)) => Ok(Check {
            when,
            points,
            value_sum,
        }),
        _ => Err(BenchError::Status {
            request: format!("the check {when}"),
            status,
            body,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_are_spread_over_the_run_in_order() {
        let times = kill_times(Duration::from_secs(1010), 100, 7);
        assert_eq!(times.len(), 100);
        // Spacing 10 s, each within 2.5 s of its slot: strictly increasing, inside the run.
        for (k, t) in times.iter().enumerate() {
            let slot = 10.0 * (k + 1) as f64;
            assert!((t.as_secs_f64() - slot).abs() <= 2.5, "kill {k} at {t:?}");
        }
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert!(kill_times(Duration::from_secs(60), 0, 1).is_empty());
    }
}
