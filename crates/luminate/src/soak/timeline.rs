//! The soak's timeline: every few seconds, the server's resident memory (now and its process's peak),
//! open file descriptors and bytes on disk, with the points acknowledged so far — what shows a leak
//! (memory or descriptors that grow from one restart to the next, or within one) and the ingest rate.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::target::Target;
use super::writer::Ledger;
use crate::bench::procstat;

/// One look at the server.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the soak started.
    pub elapsed_s: f64,
    /// Resident memory, bytes (`None` while the server is down).
    pub rss: Option<u64>,
    /// Open file descriptors.
    pub fds: Option<u64>,
    /// Bytes under the data directory.
    pub disk: Option<u64>,
    /// Points acknowledged so far.
    pub points: u64,
}

/// Samples every `every` until `stop`.
pub fn run(
    every: Duration,
    started: Instant,
    target: &Target,
    ledger: &Ledger,
    data_dir: &Path,
    stop: &AtomicBool,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut next = started;
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() < next {
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        next += every;
        let pid = target.pid();
        let pid = pid.as_deref();
        samples.push(Sample {
            elapsed_s: started.elapsed().as_secs_f64(),
            rss: pid.and_then(procstat::memory).map(|m| m.rss),
            fds: pid.and_then(procstat::open_fds),
            disk: procstat::dir_bytes(data_dir).ok(),
            points: ledger.points.load(Ordering::SeqCst),
        });
    }
    samples
}
