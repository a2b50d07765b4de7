//! The benchmark's dataset: a deterministic, seeded stream of high-cardinality points. It owns what the
//! points are (dimensions, values, timestamps) and nothing about how they are sent or stored.
//!
//! - `api_latency`: `points` latencies over one hour, dimensions `customer_id` × `endpoint` × `region` ×
//!   `status_code`. Customers follow a Zipf law (s = 1.1), so a few customers own most points while a long
//!   tail has one or two each — the shape that breaks label-based systems. Each customer uses
//!   `combos_per_customer` of the 1 000 (endpoint, region, status) combinations, chosen so that the expected
//!   number of distinct series is closest to `series_target`. Point `i` has timestamp
//!   `hour_start + i × span_ms / points` (time order, as an agent would send them; `span_ms` is an hour
//!   unless a test asks for a denser dataset). Values are latencies in milliseconds with one decimal,
//!   generated as integer tenths so that sums can be checked exactly.
//! - `requests_total`: `counter_points` points of up to 400 counter series (`region` × `endpoint` ×
//!   `status_code` ∈ {200, 404, 500, 503}), each evenly spaced over the hour, increasing by 0–99 per point
//!   and reset to zero once in about a thousand points.
//!
//! **Every series' timestamps are strictly increasing**, as Prometheus and the OTel SDKs send them and as
//! the newest-sample rule of remote write and OTLP ingest requires (docs/ingest.md: a sample not after its
//! series' newest is dropped). Above 3.6 M points an hour several points share a millisecond (2.8 at
//! 10 M), so two of them could land in one series: a point whose drawn combination is already taken in
//! its millisecond gets the customer's next free combination slot instead (slot `j + 1`, `j + 2`, … of
//! its own combinations), which keeps its customer, its timestamp, time order and the hour, and costs a
//! list of the series of the current millisecond. `combos_per_customer` is at least the points per
//! millisecond, so a free slot always exists; [`Spec::check`] refuses what no rule could fit (more than
//! 1 000 points in a millisecond, or a counter series with more points than milliseconds). Below 3.6 M
//! points no two points share a millisecond and nothing is moved. The same points go to every load path
//! (JSON, remote write, OTLP, the peers' files).
//!
//! Everything derives from the seed with SplitMix64 and integer arithmetic (the Zipf table uses `powf`,
//! whose result only selects a table slot), so the same arguments give the same points on every run.

use luminate_model::testkit::Rng;

/// The hour the dataset covers, in Unix milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The latency metric.
pub const LATENCY_METRIC: &str = "api_latency";
/// The counter metric.
pub const COUNTER_METRIC: &str = "requests_total";

/// Endpoints, in combination order.
pub const ENDPOINTS: [&str; 20] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/invoices",
    "/api/v1/products",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/checkout",
    "/api/v1/sessions",
    "/api/v1/auth/token",
    "/api/v1/reports",
    "/api/v1/exports",
    "/api/v1/webhooks",
    "/api/v1/events",
    "/api/v1/metrics",
    "/api/v1/alerts",
    "/api/v1/dashboards",
    "/api/v1/teams",
    "/api/v1/billing",
    "/api/v1/audit",
];

/// Regions, in combination order.
pub const REGIONS: [&str; 5] = [
    "eu-west-1",
    "us-east-1",
    "us-west-2",
    "ap-southeast-1",
    "sa-east-1",
];

/// Status codes of `api_latency`, in combination order.
pub const STATUS_CODES: [&str; 10] = [
    "200", "201", "204", "400", "401", "403", "404", "429", "500", "503",
];

/// Status codes of `requests_total` (indices into [`STATUS_CODES`]).
pub const COUNTER_STATUS: [usize; 4] = [0, 6, 8, 9];

/// (endpoint, region, status) combinations a latency series can have.
pub const COMBINATIONS: u32 = (ENDPOINTS.len() * REGIONS.len() * STATUS_CODES.len()) as u32;

/// Zipf exponent of the customer distribution.
const ZIPF_S: f64 = 1.1;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `api_latency` points.
    pub points: u64,
    /// Distinct customers (Zipf ranks 1..=customers).
    pub customers: u32,
    /// Wanted distinct `api_latency` series (approximate: sets how many combinations each customer uses).
    pub series_target: u64,
    /// `requests_total` points.
    pub counter_points: u64,
    /// First millisecond of the hour (the data covers `[hour_start, hour_start + span_ms)`).
    pub hour_start: i64,
    /// Length of the covered time in ms: [`HOUR_MS`], or less for a small dataset as dense as a big one.
    pub span_ms: i64,
    /// Seed of every random choice.
    pub seed: u64,
}

/// One `api_latency` point, as indices into the dimension tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyPoint {
    /// Unix ms.
    pub timestamp: i64,
    /// Customer index, 0-based (`customer_id` is `cust_{customer + 1}`, the Zipf rank).
    pub customer: u32,
    /// Combination index in `[0, COMBINATIONS)`: endpoint, then region, then status.
    pub combination: u16,
    /// Latency in tenths of a millisecond.
    pub tenths: u32,
}

impl LatencyPoint {
    /// Index into [`ENDPOINTS`].
    pub fn endpoint(&self) -> usize {
        self.combination as usize % ENDPOINTS.len()
    }

    /// Index into [`REGIONS`].
    pub fn region(&self) -> usize {
        self.combination as usize / ENDPOINTS.len() % REGIONS.len()
    }

    /// Index into [`STATUS_CODES`].
    pub fn status(&self) -> usize {
        self.combination as usize / (ENDPOINTS.len() * REGIONS.len())
    }
}

/// One `requests_total` point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterPoint {
    /// Unix ms.
    pub timestamp: i64,
    /// Counter series index in `[0, 400)`.
    pub series: u16,
    /// Counter value (an integer).
    pub value: u64,
}

impl CounterPoint {
    /// Index into [`REGIONS`].
    pub fn region(&self) -> usize {
        self.series as usize % REGIONS.len()
    }

    /// Index into [`ENDPOINTS`].
    pub fn endpoint(&self) -> usize {
        self.series as usize / REGIONS.len() % ENDPOINTS.len()
    }

    /// Index into [`STATUS_CODES`].
    pub fn status(&self) -> usize {
        COUNTER_STATUS[self.series as usize / (REGIONS.len() * ENDPOINTS.len())]
    }
}

/// Number of counter series the counter points are spread over.
pub const COUNTER_SERIES: u64 = (REGIONS.len() * ENDPOINTS.len() * COUNTER_STATUS.len()) as u64;

/// The `customer_id` value of a customer index.
pub fn customer_id(customer: u32) -> String {
    format!("cust_{}", customer + 1)
}

impl Spec {
    /// Why no dataset with strictly increasing timestamps per series fits this spec, if none does.
    pub fn check(&self) -> Result<(), String> {
        if self.span_ms < 1 {
            return Err(format!(
                "the span must be at least 1 ms, not {}",
                self.span_ms
            ));
        }
        if self.points.div_ceil(self.span_ms as u64) > COMBINATIONS as u64 {
            return Err(format!(
                "{} api_latency points in {} ms put more than {COMBINATIONS} points in a millisecond, \
                 more than a customer has series",
                self.points, self.span_ms
            ));
        }
        if self.counter_points.div_ceil(COUNTER_SERIES) > self.span_ms as u64 {
            return Err(format!(
                "{} requests_total points over {COUNTER_SERIES} series in {} ms give a series more \
                 points than milliseconds",
                self.counter_points, self.span_ms
            ));
        }
        Ok(())
    }

    /// The most `api_latency` points one millisecond holds.
    fn points_per_ms(&self) -> u64 {
        self.points.div_ceil(self.span_ms.max(1) as u64)
    }
}

/// A dataset ready to be streamed.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// What was asked for.
    pub spec: Spec,
    /// Combinations each customer draws from (the knob that sets the series count).
    pub combos_per_customer: u32,
    /// Cumulative Zipf probabilities by customer index; sampling is a binary search.
    zipf_cdf: Vec<f64>,
}

impl Dataset {
    /// Prepares the Zipf table and picks the combinations per customer.
    pub fn new(spec: Spec) -> Self {
        let customers = spec.customers.max(1);
        let weights: Vec<f64> = (1..=customers)
            .map(|rank| (rank as f64).powf(-ZIPF_S))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let zipf_cdf: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        let expected: Vec<f64> = weights
            .iter()
            .map(|w| w / total * spec.points as f64)
            .collect();
        // At least as many combinations as points share a millisecond, so that a point always finds a
        // series of its customer that has none in its millisecond (module doc).
        let combos_per_customer = combinations_for_target(&expected, spec.series_target)
            .max(spec.points_per_ms().min(COMBINATIONS as u64) as u32);
        Self {
            spec,
            combos_per_customer,
            zipf_cdf,
        }
    }

    /// The `api_latency` points, in timestamp order, each series' timestamps strictly increasing.
    pub fn latency_points(&self) -> impl Iterator<Item = LatencyPoint> + '_ {
        let mut rng = Rng::new(self.spec.seed ^ 0x6C61_7465_6E63_7921);
        let points = self.spec.points;
        let span = self.spec.span_ms;
        // The series that already have a point in the current millisecond (a few at most).
        let mut millisecond = i64::MIN;
        let mut taken: Vec<(u32, u16)> = Vec::with_capacity(self.spec.points_per_ms() as usize);
        (0..points).map(move |i| {
            let timestamp =
                self.spec.hour_start + (i as i128 * span as i128 / points as i128) as i64;
            if timestamp != millisecond {
                millisecond = timestamp;
                taken.clear();
            }
            let u = rng.next_unit();
            let customer = self
                .zipf_cdf
                .partition_point(|&c| c <= u)
                .min(self.zipf_cdf.len() - 1) as u32;
            let drawn = rng.below(self.combos_per_customer as u64) as u32;
            // The first of the customer's slots from the drawn one whose series is free in this
            // millisecond; one always is (`combos_per_customer` ≥ points per ms, checked by `Spec::check`).
            let combination = (0..self.combos_per_customer)
                .map(|k| self.combination(customer, (drawn + k) % self.combos_per_customer))
                .find(|&c| !taken.contains(&(customer, c)))
                .unwrap_or_else(|| self.combination(customer, drawn));
            taken.push((customer, combination));
            let endpoint = combination as u64 % ENDPOINTS.len() as u64;
            // Each endpoint has its own typical latency (20–306 ms); 1 % of requests are 6× slower.
            let base = 200 + 151 * endpoint;
            let mut tenths = base / 2 + rng.below(base * 2);
            if rng.below(100) == 0 {
                tenths *= 6;
            }
            LatencyPoint {
                timestamp,
                customer,
                combination,
                tenths: tenths as u32,
            }
        })
    }

    /// Combination `j` of `customer`: an affine permutation of `[0, COMBINATIONS)` per customer, so the
    /// first `combos_per_customer` indices are distinct combinations and customers differ in which.
    fn combination(&self, customer: u32, j: u32) -> u16 {
        let mut h =
            Rng::new(self.spec.seed ^ (customer as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        // Odd and not a multiple of 5, hence coprime with 1 000 = 2³·5³: the map is a bijection.
        let mut a = (h.below(COMBINATIONS as u64) | 1) as u32;
        if a.is_multiple_of(5) {
            a += 2;
        }
        let b = h.below(COMBINATIONS as u64) as u32;
        ((a as u64 * j as u64 + b as u64) % COMBINATIONS as u64) as u16
    }

    /// The `requests_total` points: round-robin over the series, so in (nearly) timestamp order.
    pub fn counter_points(&self) -> impl Iterator<Item = CounterPoint> + '_ {
        let total = self.spec.counter_points;
        let series = COUNTER_SERIES.min(total.max(1));
        let per_series = move |s: u64| total / series + u64::from(s < total % series);
        let rounds = per_series(0);
        let mut rng = Rng::new(self.spec.seed ^ 0x636F_756E_7465_7273);
        let mut values = vec![0u64; series as usize];
        let start = self.spec.hour_start;
        let span = self.spec.span_ms;
        (0..rounds).flat_map(move |round| {
            let mut batch = Vec::with_capacity(series as usize);
            for s in 0..series {
                let n = per_series(s);
                if round >= n {
                    continue;
                }
                let value = &mut values[s as usize];
                if rng.below(1000) == 0 {
                    *value = 0;
                } else {
                    *value += rng.below(100);
                }
                batch.push(CounterPoint {
                    // Strictly increasing while n ≤ span (`Spec::check`).
                    timestamp: start + (round as i128 * span as i128 / n as i128) as i64,
                    series: s as u16,
                    value: *value,
                });
            }
            batch
        })
    }
}

/// The combinations per customer whose expected distinct series count is closest to `target`:
/// a customer expected to have `n` points among `k` equally likely combinations has
/// `k·(1 − (1 − 1/k)ⁿ)` distinct ones in expectation. Monotone in `k`, so a binary search.
fn combinations_for_target(expected_points: &[f64], target: u64) -> u32 {
    let distinct = |k: u32| -> f64 {
        let k = k as f64;
        expected_points
            .iter()
            .map(|&n| k * (1.0 - (n * (1.0 - 1.0 / k).ln()).exp()))
            .sum()
    };
    let (mut lo, mut hi) = (1u32, COMBINATIONS);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if distinct(mid) < target as f64 {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(points: u64) -> Spec {
        Spec {
            points,
            customers: 500,
            series_target: 2_000_000,
            counter_points: 2_000,
            hour_start: 1_800_000_000_000,
            span_ms: HOUR_MS,
            seed: 7,
        }
    }

    #[test]
    fn same_seed_same_points() {
        let a = Dataset::new(spec(5_000));
        let b = Dataset::new(spec(5_000));
        assert!(a.latency_points().eq(b.latency_points()));
        assert!(a.counter_points().eq(b.counter_points()));
    }

    #[test]
    fn points_cover_the_hour_in_time_order() {
        let d = Dataset::new(spec(10_000));
        let points: Vec<_> = d.latency_points().collect();
        assert_eq!(points.len(), 10_000);
        assert_eq!(points[0].timestamp, 1_800_000_000_000);
        assert!(points.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(
            points
                .iter()
                .all(|p| p.timestamp < 1_800_000_000_000 + HOUR_MS)
        );
        // Zipf: the first customer is by far the most frequent.
        let first = points.iter().filter(|p| p.customer == 0).count();
        let second = points.iter().filter(|p| p.customer == 1).count();
        assert!(first > second && first > 1_000, "{first} vs {second}");
    }

    /// Strictly increasing timestamps per series, checked over every point.
    fn assert_series_in_strict_time_order(d: &Dataset) {
        let mut newest = std::collections::HashMap::new();
        for p in d.latency_points() {
            if let Some(before) = newest.insert((p.customer, p.combination), p.timestamp) {
                assert!(before < p.timestamp, "{p:?} after {before}");
            }
        }
        let mut newest = std::collections::HashMap::new();
        for p in d.counter_points() {
            if let Some(before) = newest.insert(p.series, p.timestamp) {
                assert!(before < p.timestamp, "{p:?} after {before}");
            }
        }
    }

    #[test]
    fn dense_dataset_keeps_every_series_in_strict_time_order() {
        // 100 000 points in 10 s: 10 a millisecond, the first customer's share is 2 or 3 of them.
        let d = Dataset::new(Spec {
            span_ms: 10_000,
            customers: 50,
            series_target: 100,
            counter_points: 4_000,
            ..spec(100_000)
        });
        assert_eq!(
            d.combos_per_customer, 10,
            "at least the points per millisecond"
        );
        let points: Vec<_> = d.latency_points().collect();
        assert!(points.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(
            points
                .iter()
                .all(|p| p.timestamp < 1_800_000_000_000 + 10_000)
        );
        assert_series_in_strict_time_order(&d);
        // Same seed, same (moved) points.
        assert!(d.latency_points().eq(points.iter().copied()));
        // A spec with the first customer drawn twice in a millisecond, so the rule did move points.
        let first_customer_per_ms = points
            .chunk_by(|a, b| a.timestamp == b.timestamp)
            .map(|ms| ms.iter().filter(|p| p.customer == 0).count())
            .max();
        assert!(
            first_customer_per_ms >= Some(2),
            "{first_customer_per_ms:?}"
        );
    }

    #[test]
    fn full_size_spacing_keeps_every_series_in_strict_time_order() {
        // The default 10 M points an hour, as a 3-minute slice: 2.8 points a millisecond.
        let d = Dataset::new(Spec {
            span_ms: 180_000,
            customers: 5_000,
            series_target: 100_000,
            ..spec(500_000)
        });
        assert_series_in_strict_time_order(&d);
    }

    #[test]
    fn specs_that_cannot_keep_series_in_time_order_are_refused() {
        assert_eq!(spec(10_000_000).check(), Ok(()));
        let too_dense = Spec {
            span_ms: 10,
            ..spec(10_001)
        };
        assert!(
            too_dense
                .check()
                .unwrap_err()
                .contains("more than 1000 points in a millisecond")
        );
        let counter = Spec {
            span_ms: 10,
            counter_points: 4_001,
            ..spec(10)
        };
        assert!(
            counter
                .check()
                .unwrap_err()
                .contains("more points than milliseconds")
        );
        assert_eq!(
            Spec {
                counter_points: 4_000,
                ..counter
            }
            .check(),
            Ok(())
        );
    }

    #[test]
    fn counter_points_are_spread_over_series() {
        let d = Dataset::new(spec(10));
        let points: Vec<_> = d.counter_points().collect();
        assert_eq!(points.len(), 2_000);
        for s in 0..COUNTER_SERIES as u16 {
            assert_eq!(points.iter().filter(|p| p.series == s).count(), 5);
        }
        let d = Dataset::new(Spec {
            counter_points: 401,
            ..spec(10)
        });
        assert_eq!(d.counter_points().count(), 401);
    }

    #[test]
    fn combinations_are_distinct_per_customer() {
        let d = Dataset::new(spec(10));
        let mut seen: Vec<u16> = (0..COMBINATIONS).map(|j| d.combination(3, j)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), COMBINATIONS as usize);
    }

    #[test]
    fn series_target_sets_combinations() {
        let expected = vec![1_000.0; 100];
        // 100 customers with 1 000 points each: 2 combinations each give about 200 series.
        assert_eq!(combinations_for_target(&expected, 200), 2);
        assert_eq!(combinations_for_target(&expected, 1), 1);
        assert_eq!(combinations_for_target(&expected, u64::MAX), COMBINATIONS);
    }
}
