//! The soak's writers. Each sends batches of `soak_latency` points at its share of the target rate
//! (catching up after a restart: the rate is an average over the run), every batch under its own
//! `Idempotency-Key`, and resends a batch until it is acknowledged — through kills and restarts, as a
//! careful client does. So every batch a writer made is acknowledged exactly once in the end, and the
//! points stored must equal the [`Ledger`]'s, in number and in the sum of their values: fewer is a loss,
//! more is a retry stored twice.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::problems::Problems;
use super::target::Target;
use crate::bench::http;

/// The metric the soak writes (and only it: the checks count all of it).
pub const METRIC: &str = "soak_latency";
/// The `endpoint` values.
pub const ENDPOINTS: [&str; 5] = [
    "/api/users",
    "/api/orders",
    "/api/search",
    "/login",
    "/health",
];
/// The `region` values.
pub const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];
/// Longest a writer sleeps between looks at the stop flag.
const NAP: Duration = Duration::from_millis(50);
/// Longest `Retry-After` honoured: the soak must keep moving.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How the writers write.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Writer threads, each with its own connection.
    pub writers: usize,
    /// Points per batch.
    pub batch: usize,
    /// Points per second of all writers together.
    pub rate: u64,
    /// Distinct `customer_id` values; each has every endpoint × region series.
    pub customers: u32,
}

impl Plan {
    /// Distinct series written.
    pub fn series(&self) -> u64 {
        u64::from(self.customers) * (ENDPOINTS.len() * REGIONS.len()) as u64
    }
}

/// What the writers had acknowledged.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Points acknowledged (`200`).
    pub points: AtomicU64,
    /// Sum of their values (all integers, so the sum is exact).
    pub value_sum: AtomicU64,
    /// Batches acknowledged.
    pub batches: AtomicU64,
    /// Of those, acknowledged by a replay of their first response (`Idempotent-Replayed`): stored
    /// before a kill that took the answer with it.
    pub replayed: AtomicU64,
    /// Sends that were retried: the server down, killed mid-request, or answering 429/503.
    pub resends: AtomicU64,
    /// Earliest and latest timestamp written (Unix ms), for the checks' time range.
    pub first_ms: AtomicI64,
    /// See `first_ms`.
    pub last_ms: AtomicI64,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self {
            first_ms: AtomicI64::new(i64::MAX),
            last_ms: AtomicI64::new(i64::MIN),
            ..Self::default()
        }
    }
}

/// Flags the run raises for its writers.
#[derive(Debug, Default)]
pub struct Stop {
    /// Make no new batch (the one in hand is still sent until acknowledged).
    pub stop: AtomicBool,
    /// Give up on the batch in hand too: no server will answer it.
    pub abandon: AtomicBool,
}

/// Runs writer `id` until told to stop; `run_id` makes its idempotency keys unique to this soak.
pub fn run(
    id: usize,
    plan: Plan,
    run_id: &str,
    target: &Target,
    ledger: &Ledger,
    stop: &Stop,
    problems: &Problems,
) {
    let agent = http::agent();
    // 5 % above the target: a run that keeps up ends above it, not a hair under it for the first
    // batch's latency or the last one's drain.
    let per_second = plan.rate as f64 * 1.05 / plan.writers.max(1) as f64;
    let started = Instant::now();
    let mut body = String::with_capacity(plan.batch * 150);
    let mut made: u64 = 0;
    while !stop.stop.load(Ordering::SeqCst) {
        let due = started + Duration::from_secs_f64(made as f64 * plan.batch as f64 / per_second);
        let now = Instant::now();
        if due > now {
            thread::sleep((due - now).min(NAP));
            continue;
        }
        let sequence = made * plan.writers as u64 + id as u64;
        let timestamp = now_ms();
        let value_sum = encode(&mut body, &plan, sequence, timestamp);
        let key = format!("soak-{run_id}-{sequence}");
        if send(&agent, target, &body, &key, ledger, stop, problems) {
            ledger.points.fetch_add(plan.batch as u64, Ordering::SeqCst);
            ledger.value_sum.fetch_add(value_sum, Ordering::SeqCst);
            ledger.batches.fetch_add(1, Ordering::SeqCst);
            ledger.first_ms.fetch_min(timestamp, Ordering::SeqCst);
            ledger.last_ms.fetch_max(timestamp, Ordering::SeqCst);
        }
        made += 1;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes batch `sequence` as a JSON write body into `body`; answers the sum of its values. The batch
/// takes the next `plan.batch` series in turn (so every series gets points at the same pace), and
/// values are integers below 1000.
fn encode(body: &mut String, plan: &Plan, sequence: u64, timestamp: i64) -> u64 {
    body.clear();
    body.push_str("{\"metrics\":[");
    let series = plan.series();
    let mut sum = 0;
    for i in 0..plan.batch as u64 {
        let n = sequence * plan.batch as u64 + i;
        let s = n % series;
        let customer = s / (ENDPOINTS.len() * REGIONS.len()) as u64;
        let endpoint = ENDPOINTS[(s % ENDPOINTS.len() as u64) as usize];
        let region = REGIONS[((s / ENDPOINTS.len() as u64) % REGIONS.len() as u64) as usize];
        let value = (n.wrapping_mul(2_654_435_761) >> 7) % 1000;
        sum += value;
        if i > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            "{{\"name\":\"{METRIC}\",\"timestamp\":{timestamp},\"value\":{value},\"dimensions\":\
             {{\"customer_id\":\"cust_{customer}\",\"endpoint\":\"{endpoint}\",\"region\":\"{region}\"}}}}"
        );
    }
    body.push_str("]}");
    sum
}

/// Sends one batch until it is acknowledged (`true`), fails for a reason a resend cannot fix, or the
/// run abandons it (`false`; both recorded as problems).
fn send(
    agent: &ureq::Agent,
    target: &Target,
    body: &str,
    key: &str,
    ledger: &Ledger,
    stop: &Stop,
    problems: &Problems,
) -> bool {
    loop {
        if stop.abandon.load(Ordering::SeqCst) {
            problems.push(format!(
                "write {key}: abandoned unacknowledged at the end of the run"
            ));
            return false;
        }
        let (generation, url) = target.current();
        if generation % 2 == 1 {
            thread::sleep(NAP);
            continue;
        }
        let sent = agent
            .post(&format!("{url}/api/v1/write"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .send(body.as_bytes());
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => {
                if !target.disturbed(generation) {
                    problems.push(format!("write {key}: {e} while the server was up"));
                }
                ledger.resends.fetch_add(1, Ordering::SeqCst);
                thread::sleep(NAP);
                continue;
            }
        };
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200 => {
                if replayed {
                    ledger.replayed.fetch_add(1, Ordering::SeqCst);
                }
                return true;
            }
            429 | 503 => {
                ledger.resends.fetch_add(1, Ordering::SeqCst);
                thread::sleep(retry_after.unwrap_or(NAP * 2).min(MAX_BACKOFF));
            }
            _ if target.disturbed(generation) => {
                ledger.resends.fetch_add(1, Ordering::SeqCst);
                thread::sleep(NAP);
            }
            _ => {
                let text: String = text.chars().take(300).collect();
                problems.push(format!("write {key} answered {status}: {text}"));
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_a_valid_write_body_of_distinct_series_whose_sum_is_reported() {
        let plan = Plan {
            writers: 2,
            batch: 40,
            rate: 1000,
            customers: 2,
        };
        let mut body = String::new();
        let sum = encode(&mut body, &plan, 3, 1_700_000_000_000);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let points = parsed["metrics"].as_array().unwrap();
        assert_eq!(points.len(), 40);
        let values: u64 = points.iter().map(|p| p["value"].as_u64().unwrap()).sum();
        assert_eq!(values, sum);
        // Batch 3 of 40 points over 30 series starts at point 120: series 0, 1, ...
        assert_eq!(
            points[0]["dimensions"],
            serde_json::json!({"customer_id": "cust_0", "endpoint": "/api/users", "region": "eu-west"})
        );
        assert_eq!(
            points[29]["dimensions"],
            serde_json::json!({"customer_id": "cust_1", "endpoint": "/health", "region": "ap-south"})
        );
        assert_eq!(points[30]["dimensions"], points[0]["dimensions"]);
        assert!(points.iter().all(|p| p["value"].as_u64().unwrap() < 1000));
    }
}
