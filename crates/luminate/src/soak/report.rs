//! The soak's report: whether everything acknowledged was stored exactly once (checked three ways),
//! the ingest rate against the target, each kind of question's outcomes and latency, the restarts, the
//! timeline of memory, descriptors and disk a minute at a time, and every problem. A text table for
//! people and (`--json`) a document for scripts and tests. Holds no logic beyond sums and formatting.

use serde_json::{Value, json};

use super::reader::{KINDS, KindFigures};
use super::timeline::Sample;
use crate::bench::report::{median, thousands};

/// One comparison of what is stored with what was acknowledged.
#[derive(Debug, Clone)]
pub struct Check {
    /// When it was made.
    pub when: &'static str,
    /// Points stored (the `count` of the whole run's range).
    pub points: u64,
    /// The sum of their values.
    pub value_sum: f64,
}

/// Everything the soak measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Seconds the load ran (the writers' last batches, drained after it, are not counted in them).
    pub seconds: f64,
    /// The target rate, points/s.
    pub target_rate: u64,
    /// Seconds from each `kill -9` to the restarted server listening.
    pub restarts_s: Vec<f64>,
    /// Points acknowledged.
    pub points: u64,
    /// Sum of their values.
    pub value_sum: u64,
    /// Batches acknowledged.
    pub batches: u64,
    /// Batches acknowledged by a replayed first response.
    pub replayed: u64,
    /// Resends.
    pub resends: u64,
    /// The checks made at the end.
    pub checks: Vec<Check>,
    /// Exit code of the graceful stop (`None`: it had to be killed, or did not exit with a code).
    pub graceful_exit: Option<i32>,
    /// Each kind of question, in [`KINDS`] order.
    pub kinds: Vec<KindFigures>,
    /// The timeline.
    pub samples: Vec<Sample>,
    /// Problems counted, and the first of them.
    pub problems: (u64, Vec<String>),
}

/// Points per second between two (elapsed seconds, points) samples.
fn rate(from: (f64, u64), to: (f64, u64)) -> f64 {
    let seconds = to.0 - from.0;
    if seconds <= 0.0 {
        return 0.0;
    }
    to.1.saturating_sub(from.1) as f64 / seconds
}

/// One minute of the timeline.
struct Minute {
    minute: usize,
    rss_max: Option<u64>,
    fds_max: Option<u64>,
    disk_last: Option<u64>,
    points_per_second: f64,
}

impl Report {
    /// Acknowledged points per second over the whole run, downtime included.
    pub fn rate(&self) -> f64 {
        self.points as f64 / self.seconds.max(1e-9)
    }

    /// Whether every check found exactly what was acknowledged.
    pub fn exact(&self) -> bool {
        !self.checks.is_empty()
            && self
                .checks
                .iter()
                .all(|c| c.points == self.points && c.value_sum == self.value_sum as f64)
    }

    /// Whether the soak passed: nothing lost or doubled, no problem, a clean stop, the rate reached.
    pub fn passed(&self) -> bool {
        self.exact()
            && self.problems.0 == 0
            && self.graceful_exit == Some(0)
            && self.rate() >= self.target_rate as f64
    }

    /// The timeline a minute at a time; a minute's rate runs from the previous minute's last sample
    /// (the run's start for the first) to its own last sample.
    fn minutes(&self) -> Vec<Minute> {
        let mut minutes: Vec<Minute> = Vec::new();
        let mut before = (0.0, 0);
        let mut last = (0.0, 0);
        for sample in &self.samples {
            let minute = (sample.elapsed_s / 60.0) as usize;
            if minutes.last().is_none_or(|m| m.minute != minute) {
                if let Some(closed) = minutes.last_mut() {
                    closed.points_per_second = rate(before, last);
                    before = last;
                }
                minutes.push(Minute {
                    minute,
                    rss_max: None,
                    fds_max: None,
                    disk_last: None,
                    points_per_second: 0.0,
                });
            }
            let Some(m) = minutes.last_mut() else {
                continue;
            };
            m.rss_max = m.rss_max.max(sample.rss);
            m.fds_max = m.fds_max.max(sample.fds);
            m.disk_last = sample.disk.or(m.disk_last);
            last = (sample.elapsed_s, sample.points);
        }
        if let Some(closed) = minutes.last_mut() {
            closed.points_per_second = rate(before, last);
        }
        minutes
    }

    /// The JSON document (`--json`).
    pub fn to_json(&self) -> Value {
        json!({
            "seconds": self.seconds,
            "target_points_per_second": self.target_rate,
            "points_per_second": self.rate(),
            "kills": self.restarts_s.len(),
            "restart_seconds": self.restarts_s,
            "acknowledged": {"points": self.points, "value_sum": self.value_sum,
                "batches": self.batches, "replayed": self.replayed, "resends": self.resends},
            "checks": self.checks.iter().map(|c| json!({"when": c.when, "points": c.points,
                "value_sum": c.value_sum})).collect::<Vec<_>>(),
            "exact": self.exact(),
            "graceful_exit": self.graceful_exit,
            "queries": KINDS.iter().zip(&self.kinds).map(|(name, k)| json!({"kind": name,
                "ok": k.ok, "interrupted": k.interrupted, "failed": k.failed,
                "median_ms": (!k.latencies_ms.is_empty()).then(|| median(&k.latencies_ms)),
                "max_ms": k.latencies_ms.iter().copied().reduce(f64::max)})).collect::<Vec<_>>(),
            "timeline": self.samples.iter().map(|s| json!({"elapsed_s": s.elapsed_s,
                "rss_bytes": s.rss, "fds": s.fds, "disk_bytes": s.disk, "points": s.points}))
                .collect::<Vec<_>>(),
            "problems": {"count": self.problems.0, "first": self.problems.1},
            "passed": self.passed(),
        })
    }

    /// The text report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mib =
            |b: Option<u64>| b.map_or("-".to_owned(), |b| format!("{:.0}", b as f64 / 1048576.0));
        out.push_str(&format!(
            "soak: {:.0} s, {} kill -9 and restarts (restart to listening: median {:.2} s, max {:.2} s)\n",
            self.seconds,
            self.restarts_s.len(),
            if self.restarts_s.is_empty() { 0.0 } else { median(&self.restarts_s) },
            self.restarts_s.iter().copied().fold(0.0, f64::max),
        ));
        out.push_str(&format!(
            "ingest: {} points acknowledged in {} batches, {} points/s over the run, downtime included (target {}: {})\n\
             \x20       {} batches acknowledged by a replayed first response, {} resends\n",
            thousands(self.points),
            thousands(self.batches),
            thousands(self.rate() as u64),
            thousands(self.target_rate),
            if self.rate() >= self.target_rate as f64 { "met" } else { "NOT MET" },
            thousands(self.replayed),
            thousands(self.resends),
        ));
        for check in &self.checks {
            let verdict = if check.points == self.points && check.value_sum == self.value_sum as f64
            {
                "exact".to_owned()
            } else if check.points < self.points {
                format!("LOST {} points", thousands(self.points - check.points))
            } else {
                format!(
                    "{} points MORE than acknowledged",
                    thousands(check.points - self.points)
                )
            };
            out.push_str(&format!(
                "stored {}: {} points, value sum {} ({verdict})\n",
                check.when,
                thousands(check.points),
                check.value_sum,
            ));
        }
        out.push_str(&format!(
            "graceful stop: {}\n",
            self.graceful_exit
                .map_or("did not exit by itself".to_owned(), |c| format!("exit {c}"))
        ));
        out.push_str(&format!(
            "\n{:<56} {:>9} {:>11} {:>7} {:>10} {:>10}\n",
            "question", "ok", "interrupted", "failed", "median ms", "max ms"
        ));
        for (name, k) in KINDS.iter().zip(&self.kinds) {
            out.push_str(&format!(
                "{:<56} {:>9} {:>11} {:>7} {:>10} {:>10}\n",
                name,
                thousands(k.ok),
                thousands(k.interrupted),
                thousands(k.failed),
                if k.latencies_ms.is_empty() {
                    "-".to_owned()
                } else {
                    format!("{:.1}", median(&k.latencies_ms))
                },
                k.latencies_ms
                    .iter()
                    .copied()
                    .reduce(f64::max)
                    .map_or("-".to_owned(), |m| format!("{m:.0}")),
            ));
        }
        out.push_str(&format!(
            "\n{:>6} {:>12} {:>8} {:>10} {:>10}\n",
            "minute", "max RSS MiB", "max fds", "disk MiB", "points/s"
        ));
        for m in self.minutes() {
            out.push_str(&format!(
                "{:>6} {:>12} {:>8} {:>10} {:>10}\n",
                m.minute,
                mib(m.rss_max),
                m.fds_max.map_or("-".to_owned(), |f| f.to_string()),
                mib(m.disk_last),
                thousands(m.points_per_second as u64),
            ));
        }
        let (count, first) = &self.problems;
        out.push_str(&format!("\nproblems: {count}\n"));
        for problem in first {
            out.push_str(&format!("  {problem}\n"));
        }
        out.push_str(if self.passed() {
            "soak passed\n"
        } else {
            "soak FAILED\n"
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stored: u64) -> Report {
        let sample = |elapsed_s: f64, points: u64, rss: u64| Sample {
            elapsed_s,
            rss: Some(rss),
            fds: Some(40),
            disk: Some(1 << 20),
            points,
        };
        Report {
            seconds: 90.0,
            target_rate: 1000,
            restarts_s: vec![0.5, 1.5],
            points: 180_000,
            value_sum: 9_000,
            batches: 18,
            replayed: 1,
            resends: 4,
            checks: vec![Check {
                when: "live",
                points: stored,
                value_sum: 9_000.0,
            }],
            graceful_exit: Some(0),
            kinds: vec![KindFigures::default(); KINDS.len()],
            samples: vec![
                sample(0.0, 0, 100 << 20),
                sample(30.0, 60_000, 300 << 20),
                sample(60.0, 120_000, 200 << 20),
                sample(90.0, 180_000, 210 << 20),
            ],
            problems: (0, vec![]),
        }
    }

    #[test]
    fn exact_when_every_check_matches_the_ledger() {
        assert!(report(180_000).passed());
        let lost = report(179_999);
        assert!(!lost.exact() && !lost.passed());
        assert!(
            lost.to_text().contains("LOST 1 points"),
            "{}",
            lost.to_text()
        );
        assert!(
            report(180_001)
                .to_text()
                .contains("1 points MORE than acknowledged")
        );
    }

    #[test]
    fn the_timeline_is_summarised_by_minute() {
        let minutes = report(180_000).minutes();
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[0].rss_max, Some(300 << 20));
        // 60 000 points in the first 30 s; 120 000 from 30 s to 90 s.
        assert_eq!(minutes[0].points_per_second, 2000.0);
        assert_eq!(minutes[1].points_per_second, 2000.0);
        assert_eq!(minutes[1].rss_max, Some(210 << 20));
    }
}
