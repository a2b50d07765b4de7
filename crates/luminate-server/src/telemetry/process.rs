//! The process's own figures (resident memory, CPU seconds, open and maximum file descriptors,
//! threads, start time), read from Linux's `/proc/self` at each scrape: a few small file reads, cheap
//! enough not to need the background collector, and always current. On a system without `/proc` the
//! figures are simply absent.

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::MetricDoc;

/// One figure: name (after `luminate_`), help, type.
struct Figure {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
}

const RESIDENT_MEMORY: Figure = Figure {
    name: "process_resident_memory_bytes",
    help: "Resident set size of the Luminate process",
    kind: MetricType::Gauge,
};
const CPU_SECONDS: Figure = Figure {
    name: "process_cpu_seconds",
    help: "CPU time (user and system) the Luminate process has used",
    kind: MetricType::Counter,
};
const OPEN_FDS: Figure = Figure {
    name: "process_open_fds",
    help: "File descriptors the Luminate process has open",
    kind: MetricType::Gauge,
};
const MAX_FDS: Figure = Figure {
    name: "process_max_fds",
    help: "The process's limit on open file descriptors (soft RLIMIT_NOFILE)",
    kind: MetricType::Gauge,
};
const THREADS: Figure = Figure {
    name: "process_threads",
    help: "Threads of the Luminate process",
    kind: MetricType::Gauge,
};
const START_TIME: Figure = Figure {
    name: "process_start_time_seconds",
    help: "When the Luminate process started, Unix seconds",
    kind: MetricType::Gauge,
};

const FIGURES: [Figure; 6] = [
    RESIDENT_MEMORY,
    CPU_SECONDS,
    OPEN_FDS,
    MAX_FDS,
    THREADS,
    START_TIME,
];

/// Registers the process collector on `registry` (the `luminate_` sub-registry) and returns the
/// reference entries of its figures.
pub(super) fn register(registry: &mut Registry) -> Vec<MetricDoc> {
    registry.register_collector(Box::new(ProcessCollector));
    FIGURES
        .iter()
        .map(|f| MetricDoc::new(f.name, f.kind, &[], f.help))
        .collect()
}

/// The figures of the process at one moment; `None` where `/proc` did not tell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    /// Bytes.
    pub resident_memory: Option<u64>,
    /// Seconds.
    pub cpu_seconds: Option<f64>,
    /// Descriptors open.
    pub open_fds: Option<u64>,
    /// Soft limit.
    pub max_fds: Option<u64>,
    /// Threads.
    pub threads: Option<u64>,
    /// Unix seconds.
    pub start_time: Option<f64>,
}

impl ProcessFigures {
    /// Reads them from `/proc/self`.
    pub fn read() -> Self {
        let stat = fs::read_to_string("/proc/self/stat").ok();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .as_deref()
            .and_then(|s| s.rsplit_once(')'))
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // proc(5) numbers fields from 1 with the pid; `fields[0]` is field 3 (state).
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let cpu_seconds = field(14)
            .zip(field(15))
            .map(|(user, system)| (user + system) as f64 / ticks);
        let start_time = field(22)
            .zip(boot_time())
            .map(|(since_boot, boot)| boot as f64 + since_boot as f64 / ticks);
        Self {
            resident_memory: status_kib("VmRSS:").map(|kib| kib * 1024),
            cpu_seconds,
            open_fds: fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
            max_fds: max_open_files(),
            threads: field(20),
            start_time,
        }
    }
}

/// A `kB` line of `/proc/self/status`.
fn status_kib(key: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// `btime` of `/proc/stat`: when the system booted, Unix seconds.
fn boot_time() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit on open files from `/proc/self/limits`.
fn max_open_files() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Encodes the process figures at each scrape.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = ProcessFigures::read();
        let gauges = [
            (&RESIDENT_MEMORY, now.resident_memory.map(|v| v as f64)),
            (&OPEN_FDS, now.open_fds.map(|v| v as f64)),
            (&MAX_FDS, now.max_fds.map(|v| v as f64)),
            (&THREADS, now.threads.map(|v| v as f64)),
            (&START_TIME, now.start_time),
        ];
        for (figure, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(
                    figure.name,
                    figure.help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        if let Some(seconds) = now.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            counter.encode(encoder.encode_descriptor(
                CPU_SECONDS.name,
                CPU_SECONDS.help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Telemetry;
    use crate::telemetry::tests::exposition;

    #[test]
    fn figures_are_read_from_proc() {
        let before = ProcessFigures::read();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(300)))
            })
            .collect();
        let file = tempfile::tempfile().unwrap();
        let during = ProcessFigures::read();
        assert!(during.resident_memory.unwrap() > 1 << 20);
        assert!(during.threads.unwrap() >= before.threads.unwrap() + 3);
        assert!(during.open_fds.unwrap() > before.open_fds.unwrap());
        assert!(during.max_fds.unwrap() >= during.open_fds.unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = during.start_time.unwrap();
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} vs {now}"
        );
        assert!(during.cpu_seconds.unwrap() >= before.cpu_seconds.unwrap());
        drop(file);
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn the_exposition_carries_every_process_figure() {
        let mut registry = Registry::default();
        let _telemetry = Telemetry::register(&mut registry, 10);
        let text = exposition(&registry);
        for name in [
            "# TYPE luminate_process_resident_memory_bytes gauge",
            "# TYPE luminate_process_cpu_seconds counter",
            "luminate_process_cpu_seconds_total ",
            "luminate_process_open_fds ",
            "luminate_process_max_fds ",
            "luminate_process_threads ",
            "luminate_process_start_time_seconds ",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
    }
}
