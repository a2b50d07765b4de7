//! The benchmark's answers: one normalized form for what a query returned ([`Answer`]), the exact answers
//! of the fixed query set computed from the generated dataset alone ([`Reference`]), and the comparison.
//! It knows CONTRACT §4's semantics (percentile position, orders, rate) but nothing about HTTP.
//!
//! Values are integer tenths, so counts, percentiles, rates and range sums are compared exactly; sums and
//! averages are compared to a relative 1e-9, because the server adds f64 values in its own order.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::dataset::{
    COUNTER_SERIES, CounterPoint, Dataset, ENDPOINTS, REGIONS, STATUS_CODES, customer_id,
};

/// Rows returned by the top-N aggregate queries.
pub const TOP: usize = 10;
/// Rank by points of the customer whose raw points the second range query reads: with Zipf skew
/// (s = 1.1) over 100 000 customers, rank 1 000 has a few hundred points in the hour, a typical "show
/// me this customer" answer; the first range query reads the busiest customer (13 % of all points).
pub const TYPICAL_CUSTOMER_RANK: usize = 1_000;
/// `limit` of the range query (the server's default and largest).
pub const RANGE_LIMIT: usize = 10_000;
/// `limit` of the top-values query.
pub const VALUES_LIMIT: usize = 100;
/// Rate bucket width.
pub const RATE_INTERVAL_MS: i64 = 60_000;
/// The region the p99-by-endpoint query filters on.
pub const FILTER_REGION: &str = REGIONS[0];

/// A query's answer, reduced to what is compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A range query: how many points, whether cut, and a checksum of them.
    Range {
        /// Points returned.
        points: u64,
        /// Whether the limit cut the answer.
        truncated: bool,
        /// First and last timestamp returned.
        first_ts: i64,
        /// Last timestamp returned.
        last_ts: i64,
        /// Sum of the returned values, in tenths (exact).
        value_tenths: i64,
    },
    /// Aggregate groups in answer order.
    Groups(Vec<Group>),
    /// Rate points, group by group (answer order), then by timestamp.
    Rates(Vec<RatePoint>),
    /// Dimension values with their point counts, in answer order.
    Values(Vec<(String, u64)>),
    /// Series of the metric and distinct values per dimension key (sorted by key).
    Cardinality {
        /// Series count.
        series: u64,
        /// (key, distinct values), sorted by key.
        distinct: Vec<(String, u64)>,
    },
}

/// One aggregate group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// groupBy values, in groupBy order.
    pub key: Vec<String>,
    /// The aggregate.
    pub value: f64,
    /// Points in the group.
    pub count: u64,
}

/// One rate bucket of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct RatePoint {
    /// groupBy values.
    pub key: Vec<String>,
    /// Bucket start, Unix ms.
    pub timestamp: i64,
    /// Per-second rate.
    pub rate: f64,
}

impl Answer {
    /// The JSON form written to the report (and compared by `bench/peers.py`).
    pub fn to_json(&self) -> Value {
        match self {
            Answer::Range {
                points,
                truncated,
                first_ts,
                last_ts,
                value_tenths,
            } => json!({"points": points, "truncated": truncated, "first_ts": first_ts,
                "last_ts": last_ts, "value_sum": *value_tenths as f64 / 10.0}),
            Answer::Groups(groups) => Value::Array(
                groups
                    .iter()
                    .map(|g| json!({"key": g.key, "value": g.value, "count": g.count}))
                    .collect(),
            ),
            Answer::Rates(points) => Value::Array(
                points
                    .iter()
                    .map(|p| json!({"key": p.key, "timestamp": p.timestamp, "rate": p.rate}))
                    .collect(),
            ),
            Answer::Values(values) => Value::Array(
                values
                    .iter()
                    .map(|(v, n)| json!({"value": v, "points": n}))
                    .collect(),
            ),
            Answer::Cardinality { series, distinct } => json!({
                "series": series,
                "distinct_values": distinct.iter().map(|(k, n)| json!({"key": k, "distinct_values": n})).collect::<Vec<_>>(),
            }),
        }
    }
}

/// Whether two floats agree: exactly, or to 1e-9 relative (different summation orders).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Compares an answer with the reference; the error names the first difference.
pub fn compare(expected: &Answer, got: &Answer) -> Result<(), String> {
    match (expected, got) {
        (Answer::Groups(e), Answer::Groups(g)) => {
            if e.len() != g.len() {
                return Err(format!("{} groups, expected {}", g.len(), e.len()));
            }
            for (i, (e, g)) in e.iter().zip(g).enumerate() {
                if e.key != g.key || e.count != g.count || !close(e.value, g.value) {
                    return Err(format!(
                        "group {i}: got {:?} = {} ({} points), expected {:?} = {} ({} points)",
                        g.key, g.value, g.count, e.key, e.value, e.count
                    ));
                }
            }
            Ok(())
        }
        (Answer::Rates(e), Answer::Rates(g)) => {
            if e.len() != g.len() {
                return Err(format!("{} rate points, expected {}", g.len(), e.len()));
            }
            for (i, (e, g)) in e.iter().zip(g).enumerate() {
                if e.key != g.key || e.timestamp != g.timestamp || !close(e.rate, g.rate) {
                    return Err(format!("rate point {i}: got {g:?}, expected {e:?}"));
                }
            }
            Ok(())
        }
        _ if expected == got => Ok(()),
        _ => Err(format!("got {got:?}, expected {expected:?}")),
    }
}

/// The exact answers of the query set, and the parameters the queries need.
#[derive(Debug, Clone)]
pub struct Reference {
    /// `[start, end)` of every query.
    pub start: i64,
    /// End of the hour.
    pub end: i64,
    /// The customer with the most points (the first range query's filter).
    pub top_customer: String,
    /// The customer ranked [`TYPICAL_CUSTOMER_RANK`] by points (the second range query's filter).
    pub typical_customer: String,
    /// Distinct `api_latency` series generated.
    pub latency_series: u64,
    /// Points generated, per metric.
    pub latency_points: u64,
    /// Counter points generated.
    pub counter_points: u64,
    /// Answers by query name.
    pub answers: BTreeMap<&'static str, Answer>,
}

/// Orders groups as CONTRACT §4 does: value descending, ties by key ascending.
fn order_groups(groups: &mut [Group]) {
    groups.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.key.cmp(&b.key)));
}

/// `min(floor(pct × n / 100), n − 1)` of sorted tenths, as a value.
fn percentile(values: &mut [u32], pct: u64) -> f64 {
    let idx = ((pct * values.len() as u64 / 100) as usize).min(values.len() - 1);
    let (_, v, _) = values.select_nth_unstable(idx);
    *v as f64 / 10.0
}

impl Reference {
    /// Computes every answer from the dataset (one pass over it, plus per-group work).
    pub fn compute(dataset: &Dataset) -> Self {
        let start = dataset.spec.hour_start;
        let customers = dataset.spec.customers.max(1) as usize;
        let mut count = vec![0u64; customers];
        let mut sum = vec![0i64; customers];
        let mut series = HashSet::new();
        let mut region_status = vec![(0i64, 0u64); REGIONS.len() * STATUS_CODES.len()];
        let mut endpoint_values: Vec<Vec<u32>> = vec![Vec::new(); ENDPOINTS.len()];
        let mut distinct = [
            vec![false; customers],
            vec![false; ENDPOINTS.len()],
            vec![false; REGIONS.len()],
            vec![false; STATUS_CODES.len()],
        ];
        // (customer, tenths) of every point, later bucketed by customer for the exact p95.
        let mut by_customer: Vec<(u32, u32)> = Vec::with_capacity(dataset.spec.points as usize);
        for p in dataset.latency_points() {
            let c = p.customer as usize;
            count[c] += 1;
            sum[c] += p.tenths as i64;
            series.insert(p.customer as u64 * 1_000 + p.combination as u64);
            let rs = &mut region_status[p.region() * STATUS_CODES.len() + p.status()];
            rs.0 += p.tenths as i64;
            rs.1 += 1;
            if p.region() == 0 {
                endpoint_values[p.endpoint()].push(p.tenths);
            }
            distinct[0][c] = true;
            distinct[1][p.endpoint()] = true;
            distinct[2][p.region()] = true;
            distinct[3][p.status()] = true;
            by_customer.push((p.customer, p.tenths));
        }
        let mut answers = BTreeMap::new();

        let top_index = (0..customers)
            .max_by(|&a, &b| {
                count[a]
                    .cmp(&count[b])
                    .then_with(|| customer_id(b as u32).cmp(&customer_id(a as u32)))
            })
            .unwrap_or(0);
        let top_customer = customer_id(top_index as u32);
        answers.insert(
            "range_top_customer",
            range_answer(dataset, top_index as u32),
        );
        // Customers by points descending, ties by id: the typical one is a rank far down the Zipf tail.
        let mut ranked: Vec<usize> = (0..customers).filter(|&c| count[c] > 0).collect();
        ranked.sort_by(|&a, &b| {
            count[b]
                .cmp(&count[a])
                .then_with(|| customer_id(a as u32).cmp(&customer_id(b as u32)))
        });
        let typical_index = ranked
            .get(TYPICAL_CUSTOMER_RANK - 1)
            .or(ranked.last())
            .copied()
            .unwrap_or(0);
        let typical_customer = customer_id(typical_index as u32);
        answers.insert(
            "range_typical_customer",
            range_answer(dataset, typical_index as u32),
        );

        let groups_of = |value: &dyn Fn(usize) -> f64| -> Vec<Group> {
            let mut groups: Vec<Group> = (0..customers)
                .filter(|&c| count[c] > 0)
                .map(|c| Group {
                    key: vec![customer_id(c as u32)],
                    value: value(c),
                    count: count[c],
                })
                .collect();
            order_groups(&mut groups);
            groups.truncate(TOP);
            groups
        };
        answers.insert(
            "avg_by_customer_top10",
            Answer::Groups(groups_of(&|c| sum[c] as f64 / 10.0 / count[c] as f64)),
        );
        answers.insert(
            "count_by_customer_top10",
            Answer::Groups(groups_of(&|c| count[c] as f64)),
        );

        // Bucket the values by customer (counting sort), then select each customer's p95.
        let mut offsets = vec![0usize; customers + 1];
        for c in 0..customers {
            offsets[c + 1] = offsets[c] + count[c] as usize;
        }
        let mut values = vec![0u32; by_customer.len()];
        let mut cursor = offsets.clone();
        for (c, tenths) in by_customer {
            values[cursor[c as usize]] = tenths;
            cursor[c as usize] += 1;
        }
        let p95: Vec<f64> = (0..customers)
            .map(|c| {
                let slice = &mut values[offsets[c]..offsets[c + 1]];
                if slice.is_empty() {
                    0.0
                } else {
                    percentile(slice, 95)
                }
            })
            .collect();
        drop(values);
        answers.insert(
            "p95_by_customer_top10",
            Answer::Groups(groups_of(&|c| p95[c])),
        );

        let mut p99: Vec<Group> = endpoint_values
            .iter_mut()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(e, v)| Group {
                key: vec![ENDPOINTS[e].to_owned()],
                count: v.len() as u64,
                value: percentile(v, 99),
            })
            .collect();
        order_groups(&mut p99);
        answers.insert("p99_by_endpoint_region", Answer::Groups(p99));

        let mut sums: Vec<Group> = region_status
            .iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(i, (tenths, n))| Group {
                key: vec![
                    REGIONS[i / STATUS_CODES.len()].to_owned(),
                    STATUS_CODES[i % STATUS_CODES.len()].to_owned(),
                ],
                value: *tenths as f64 / 10.0,
                count: *n,
            })
            .collect();
        order_groups(&mut sums);
        answers.insert("sum_by_region_status", Answer::Groups(sums));

        let (rate, rate_by_region) = rate_answers(dataset);
        answers.insert("rate", Answer::Rates(rate));
        answers.insert("rate_by_region", Answer::Rates(rate_by_region));

        let mut top_values: Vec<(String, u64)> = (0..customers)
            .filter(|&c| count[c] > 0)
            .map(|c| (customer_id(c as u32), count[c]))
            .collect();
        top_values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top_values.truncate(VALUES_LIMIT);
        answers.insert("top_values_customer", Answer::Values(top_values));

        let distinct_of = |flags: &[bool]| flags.iter().filter(|&&f| f).count() as u64;
        let latency_series = series.len() as u64;
        answers.insert(
            "series_count",
            Answer::Cardinality {
                series: latency_series,
                distinct: ["customer_id", "endpoint", "region", "status_code"]
                    .iter()
                    .zip(&distinct)
                    .map(|(k, flags)| ((*k).to_owned(), distinct_of(flags)))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
            },
        );

        Self {
            start,
            end: start + dataset.spec.span_ms,
            top_customer,
            typical_customer,
            latency_series,
            latency_points: dataset.spec.points,
            counter_points: dataset.spec.counter_points,
            answers,
        }
    }
}

/// The first [`RANGE_LIMIT`] points of one customer in CONTRACT order: timestamp, then series (its sorted
/// dimension pairs; `customer_id` sorts first and is the same for all), then value.
fn range_answer(dataset: &Dataset, customer: u32) -> Answer {
    let mut points: Vec<(i64, [&str; 3], u32)> = dataset
        .latency_points()
        .filter(|p| p.customer == customer)
        .map(|p| {
            let dims = [
                ENDPOINTS[p.endpoint()],
                REGIONS[p.region()],
                STATUS_CODES[p.status()],
            ];
            (p.timestamp, dims, p.tenths)
        })
        .collect();
    points.sort_unstable();
    let truncated = points.len() > RANGE_LIMIT;
    points.truncate(RANGE_LIMIT);
    Answer::Range {
        points: points.len() as u64,
        truncated,
        first_ts: points.first().map_or(0, |p| p.0),
        last_ts: points.last().map_or(0, |p| p.0),
        value_tenths: points.iter().map(|p| p.2 as i64).sum(),
    }
}

/// CONTRACT §4 rate over `requests_total`: per series in (timestamp, value) order, each consecutive pair
/// adds `max(0, v_i − v_{i−1})` to the bucket of `t_i`; a bucket's rate is its sum over the interval in
/// seconds. Returns (no groupBy, groupBy region).
fn rate_answers(dataset: &Dataset) -> (Vec<RatePoint>, Vec<RatePoint>) {
    let mut per_series: Vec<Vec<CounterPoint>> = vec![Vec::new(); COUNTER_SERIES as usize];
    for p in dataset.counter_points() {
        per_series[p.series as usize].push(p);
    }
    let mut total: BTreeMap<i64, u64> = BTreeMap::new();
    let mut by_region: BTreeMap<(&str, i64), u64> = BTreeMap::new();
    for points in &mut per_series {
        points.sort_by(|a, b| {
            a.timestamp
                .cmp(&b.timestamp)
                .then_with(|| a.value.cmp(&b.value))
        });
        for pair in points.windows(2) {
            let delta = pair[1].value.saturating_sub(pair[0].value);
            let bucket = pair[1].timestamp.div_euclid(RATE_INTERVAL_MS) * RATE_INTERVAL_MS;
            *total.entry(bucket).or_default() += delta;
            *by_region
                .entry((REGIONS[pair[1].region()], bucket))
                .or_default() += delta;
        }
    }
    let seconds = (RATE_INTERVAL_MS / 1000) as f64;
    let total = total
        .into_iter()
        .map(|(timestamp, sum)| RatePoint {
            key: Vec::new(),
            timestamp,
            rate: sum as f64 / seconds,
        })
        .collect();
    let by_region = by_region
        .into_iter()
        .map(|((region, timestamp), sum)| RatePoint {
            key: vec![region.to_owned()],
            timestamp,
            rate: sum as f64 / seconds,
        })
        .collect();
    (total, by_region)
}
