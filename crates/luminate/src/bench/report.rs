//! The benchmark's report: every figure measured, beside the targets of the engine issue (round 2), as a text table for
//! people and (`--json`) a JSON document for scripts (`bench/peers.sh` and `bench/backends.sh` read
//! it). On the ClickHouse backend, memory and CPU are Luminate's plus ClickHouse's (unknown when
//! ClickHouse's PID is not given). Holds no logic beyond medians, sums and formatting.

use serde_json::{Value, json};

use super::load::{Ingest, Protocol};

/// The engine issue's ingest target (JSON over HTTP, 2 connections, durable), points/s: what chDB
/// loads in-process from a local file.
pub const TARGET_POINTS_PER_SECOND: f64 = 1_900_000.0;
/// The engine issue's on-disk target, bytes per point, settled.
pub const TARGET_BYTES_PER_POINT: f64 = 5.0;
/// The engine issue's memory target, bytes (450 MiB).
pub const TARGET_PEAK_RSS: f64 = 450.0 * (1u64 << 20) as f64;

/// The dataset, as generated.
#[derive(Debug, Clone)]
pub struct DatasetFigures {
    /// `api_latency` points.
    pub latency_points: u64,
    /// `requests_total` points.
    pub counter_points: u64,
    /// Customers.
    pub customers: u32,
    /// Distinct `api_latency` series generated.
    pub latency_series: u64,
    /// The `--series-target` asked for.
    pub series_target: u64,
    /// Combinations each customer draws from.
    pub combos_per_customer: u32,
    /// Seed.
    pub seed: u64,
    /// First ms of the hour.
    pub hour_start: i64,
}

/// ClickHouse's side of a `--clickhouse` run.
#[derive(Debug, Clone)]
pub struct ClickhouseFigures {
    /// HTTP address.
    pub address: String,
    /// The run's database.
    pub database: String,
    /// Its process id, when given.
    pub pid: Option<u32>,
    /// Its CPU seconds during the ingest.
    pub cpu_ingest: Option<f64>,
    /// Its RSS right after the ingest.
    pub rss_after_ingest: Option<u64>,
    /// Its peak RSS (`VmHWM`) at the end.
    pub peak_rss: Option<u64>,
}

/// One query's figures.
#[derive(Debug, Clone)]
pub struct QueryFigures {
    /// Stable name.
    pub name: &'static str,
    /// In words.
    pub description: String,
    /// Client-side latency of each run, ms.
    pub runs_ms: Vec<f64>,
    /// Median of the server's `executionTimeMs`, when it reports one.
    pub server_median_ms: Option<f64>,
    /// `Ok` when the answer equals the exact reference, else the first difference.
    pub check: Result<(), String>,
    /// The answer in the report's JSON form.
    pub answer: Value,
}

/// Everything `luminate bench` measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// `spawned` or the `--url`.
    pub server: String,
    /// What was sent.
    pub dataset: DatasetFigures,
    /// Seconds spent encoding write bodies before the clock started.
    pub encode_seconds: f64,
    /// How the points were sent.
    pub protocol: Protocol,
    /// Whether only the load was timed (`--load-only`: no queries ran).
    pub load_only: bool,
    /// Bytes of all bodies before compression (JSON text or protobuf).
    pub body_bytes: u64,
    /// Write requests per connection count and batch size.
    pub connections: usize,
    /// Points per request.
    pub batch: usize,
    /// Whether bodies were gzip-compressed.
    pub gzip: bool,
    /// The timed ingest.
    pub ingest: Ingest,
    /// The server's CPU seconds during the ingest (spawned server only).
    pub server_cpu_ingest: Option<f64>,
    /// Bytes under the data directory after the ingest (spawned server only).
    pub disk_bytes_after_ingest: Option<u64>,
    /// Seconds the settling took (`POST /api/v1/admin/flush`; spawned server, unless `--no-settle`).
    pub settle_seconds: Option<f64>,
    /// Bytes under the data directory once settled.
    pub disk_bytes_settled: Option<u64>,
    /// Bytes under the data directory at the end (spawned server only).
    pub disk_bytes: Option<u64>,
    /// Server RSS right after the ingest.
    pub rss_after_ingest: Option<u64>,
    /// Server peak RSS (`VmHWM`) at the end, queries included.
    pub peak_rss: Option<u64>,
    /// ClickHouse's figures when the server stored in ClickHouse.
    pub clickhouse: Option<ClickhouseFigures>,
    /// The query set, in order.
    pub queries: Vec<QueryFigures>,
}

/// Median of a non-empty list (mean of the middle two for an even length); 0 for an empty one.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

impl Report {
    /// All points sent.
    pub fn total_points(&self) -> u64 {
        self.dataset.latency_points + self.dataset.counter_points
    }

    /// Ingest throughput.
    pub fn points_per_second(&self) -> f64 {
        self.ingest.accepted as f64 / self.ingest.wall.as_secs_f64().max(1e-9)
    }

    /// Bytes on disk per point written: settled when the data was settled, else at the end.
    pub fn bytes_per_point(&self) -> Option<f64> {
        self.disk_bytes_settled
            .or(self.disk_bytes)
            .map(|b| b as f64 / self.total_points().max(1) as f64)
    }

    /// `embedded` or `clickhouse`.
    pub fn backend(&self) -> &'static str {
        if self.clickhouse.is_some() {
            "clickhouse"
        } else {
            "embedded"
        }
    }

    /// Luminate's figure plus ClickHouse's when the run stored in ClickHouse (unknown if either is).
    fn with_clickhouse<T: std::ops::Add<Output = T>>(
        &self,
        luminate: Option<T>,
        clickhouse: impl Fn(&ClickhouseFigures) -> Option<T>,
    ) -> Option<T> {
        match &self.clickhouse {
            None => luminate,
            Some(ch) => luminate.zip(clickhouse(ch)).map(|(a, b)| a + b),
        }
    }

    /// Server CPU seconds during the ingest, ClickHouse's included.
    pub fn total_cpu_ingest(&self) -> Option<f64> {
        self.with_clickhouse(self.server_cpu_ingest, |ch| ch.cpu_ingest)
    }

    /// RSS after the ingest, ClickHouse's included.
    pub fn total_rss_after_ingest(&self) -> Option<u64> {
        self.with_clickhouse(self.rss_after_ingest, |ch| ch.rss_after_ingest)
    }

    /// Peak RSS, ClickHouse's included (the sum of both peaks: an upper bound of the peak of the sum).
    pub fn total_peak_rss(&self) -> Option<u64> {
        self.with_clickhouse(self.peak_rss, |ch| ch.peak_rss)
    }

    /// Whether every answer equalled the reference.
    pub fn all_checks_passed(&self) -> bool {
        self.queries.iter().all(|q| q.check.is_ok())
    }

    /// The JSON document.
    pub fn to_json(&self) -> Value {
        let d = &self.dataset;
        let clickhouse = self.clickhouse.as_ref().map(|ch| {
            json!({
                "address": ch.address,
                "database": ch.database,
                "pid": ch.pid,
                "cpu_seconds_ingest": ch.cpu_ingest,
                "rss_after_ingest_bytes": ch.rss_after_ingest,
                "peak_rss_bytes": ch.peak_rss,
            })
        });
        json!({
            "server": self.server,
            "backend": self.backend(),
            "version": env!("CARGO_PKG_VERSION"),
            "dataset": {
                "latency_points": d.latency_points,
                "counter_points": d.counter_points,
                "customers": d.customers,
                "latency_series": d.latency_series,
                "series_target": d.series_target,
                "combos_per_customer": d.combos_per_customer,
                "seed": d.seed,
                "hour_start": d.hour_start,
            },
            "ingest": {
                "protocol": self.protocol.as_str(),
                "load_only": self.load_only,
                "points_accepted": self.ingest.accepted,
                "requests": self.ingest.requests,
                "connections": self.connections,
                "batch": self.batch,
                "gzip": self.gzip,
                "body_bytes": self.body_bytes,
                "wire_bytes": self.ingest.wire_bytes,
                "encode_seconds": self.encode_seconds,
                "wall_seconds": self.ingest.wall.as_secs_f64(),
                "points_per_second": self.points_per_second(),
                "client_cpu_seconds": self.ingest.client_cpu,
                "server_cpu_seconds": self.total_cpu_ingest(),
                "luminate_cpu_seconds": self.server_cpu_ingest,
            },
            "storage": {
                "disk_bytes_after_ingest": self.disk_bytes_after_ingest,
                "settle_seconds": self.settle_seconds,
                "disk_bytes_settled": self.disk_bytes_settled,
                "disk_bytes": self.disk_bytes,
                "bytes_per_point": self.bytes_per_point(),
                "rss_after_ingest_bytes": self.total_rss_after_ingest(),
                "peak_rss_bytes": self.total_peak_rss(),
                "luminate_peak_rss_bytes": self.peak_rss,
            },
            "clickhouse": clickhouse,
            "targets": {
                "points_per_second": TARGET_POINTS_PER_SECOND,
                "bytes_per_point": TARGET_BYTES_PER_POINT,
                "peak_rss_bytes": TARGET_PEAK_RSS,
            },
            "queries": self.queries.iter().map(|q| json!({
                "name": q.name,
                "description": q.description,
                "median_ms": median(&q.runs_ms),
                "min_ms": min(&q.runs_ms),
                "runs_ms": q.runs_ms,
                "server_median_ms": q.server_median_ms,
                "check": match &q.check { Ok(()) => "ok".to_owned(), Err(e) => format!("mismatch: {e}") },
                "answer": q.answer,
            })).collect::<Vec<_>>(),
            "all_checks_passed": self.all_checks_passed(),
        })
    }

    /// The text table.
    pub fn to_text(&self) -> String {
        let d = &self.dataset;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "luminate bench ({}, {}): {} api_latency + {} requests_total points, {} api_latency series \
             ({} customers, seed {})",
            self.server,
            match &self.clickhouse {
                None => "embedded engine".to_owned(),
                Some(ch) => format!("ClickHouse at {}, database {}", ch.address, ch.database),
            },
            thousands(d.latency_points),
            thousands(d.counter_points),
            thousands(d.latency_series),
            thousands(d.customers as u64),
            d.seed
        ));
        line(String::new());
        line(format!("{:<28} {:>18}  {}", "figure", "measured", "target"));
        let unknown = || "n/a".to_owned();
        line(format!(
            "{:<28} {:>18}  >= {}",
            "ingest points/s",
            thousands(self.points_per_second() as u64),
            thousands(TARGET_POINTS_PER_SECOND as u64)
        ));
        line(format!(
            "{:<28} {:>18.2}  ({} {} requests of {} points, {} connections{})",
            "ingest wall s",
            self.ingest.wall.as_secs_f64(),
            thousands(self.ingest.requests),
            self.protocol.as_str(),
            self.batch,
            self.connections,
            if self.gzip { ", gzip" } else { "" }
        ));
        line(format!(
            "{:<28} {:>18}  (encoding before the clock: {:.2} s)",
            "client CPU s during ingest",
            self.ingest
                .client_cpu
                .map_or_else(unknown, |c| format!("{c:.2}")),
            self.encode_seconds
        ));
        let with_clickhouse = if self.clickhouse.is_some() {
            "  (Luminate + ClickHouse)"
        } else {
            ""
        };
        line(format!(
            "{:<28} {:>18}{with_clickhouse}",
            "server CPU s during ingest",
            self.total_cpu_ingest()
                .map_or_else(unknown, |c| format!("{c:.2}"))
        ));
        line(format!(
            "{:<28} {:>18}{}",
            "bytes on disk",
            self.disk_bytes.map_or_else(unknown, thousands),
            if self.clickhouse.is_some() {
                "  (ClickHouse system.parts, active parts)"
            } else {
                ""
            }
        ));
        if let (Some(bytes), Some(seconds)) = (self.disk_bytes_settled, self.settle_seconds) {
            line(format!(
                "{:<28} {:>18}  (settled in {seconds:.2} s, before the queries)",
                "bytes on disk, settled",
                thousands(bytes)
            ));
        }
        line(format!(
            "{:<28} {:>18}  <= {}",
            "bytes/point",
            self.bytes_per_point()
                .map_or_else(unknown, |b| format!("{b:.2}")),
            TARGET_BYTES_PER_POINT
        ));
        line(format!(
            "{:<28} {:>18}{with_clickhouse}",
            "RSS after ingest",
            self.total_rss_after_ingest().map_or_else(unknown, gib)
        ));
        line(format!(
            "{:<28} {:>18}  <= {}{with_clickhouse}",
            "peak RSS",
            self.total_peak_rss().map_or_else(unknown, gib),
            gib(TARGET_PEAK_RSS as u64)
        ));
        if let Some(ch) = &self.clickhouse {
            line(format!(
                "{:<28} {:>18}{}",
                "  of which ClickHouse",
                ch.peak_rss.map_or_else(unknown, gib),
                if ch.pid.is_none() {
                    "  (give --clickhouse-pid to measure it)"
                } else {
                    ""
                }
            ));
        }
        line(String::new());
        if self.load_only {
            line("queries: not run (--load-only)".to_owned());
            return out;
        }
        line(format!(
            "{:<52} {:>10} {:>10} {:>10}  check",
            "query", "median ms", "min ms", "server ms"
        ));
        for q in &self.queries {
            line(format!(
                "{:<52} {:>10.1} {:>10.1} {:>10}  {}",
                q.description,
                median(&q.runs_ms),
                min(&q.runs_ms),
                q.server_median_ms
                    .map_or_else(|| "-".to_owned(), |m| format!("{m:.0}")),
                match &q.check {
                    Ok(()) => "exact".to_owned(),
                    Err(e) => format!("MISMATCH: {e}"),
                }
            ));
        }
        out
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn gib(bytes: u64) -> String {
    format!("{:.3} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_separators() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }
}
