//! The request-thread CPU of a JSON write, per point: decoding the body with the scanner and with the
//! serde_json decoder it replaced (`wire::reference`), interleaved in one run so that their ratio holds
//! on a busy machine, and decoding plus validating plus building the `PointBatch` (`decode_write_batch`,
//! what the write route runs). Bodies are shaped
//! like `luminate bench`'s (crates/luminate/src/bench/formats.rs): 10 000 `api_latency` points each,
//! millisecond timestamps within the last hour, one-decimal values, dimensions `customer_id`,
//! `endpoint`, `region`, `status_code`.
//!
//!     cargo run --release -p luminate-model --features wire-reference --example write_decode_bench \
//!         [-- BODIES RUNS]
//!
//! Prints the median of RUNS runs over BODIES bodies (default 20 and 9), in ns per point and MB/s.

use std::hint::black_box;
use std::time::Instant;

use luminate_model::ValidationRules;
use luminate_model::time::now_ms;
use luminate_model::wire::{BodyFormat, decode_write_batch, decode_write_body, reference};

const POINTS_PER_BODY: usize = 10_000;
const ENDPOINTS: [&str; 20] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/invoices",
    "/api/v1/products",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/checkout",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/reports",
    "/api/v1/exports",
    "/api/v1/webhooks",
    "/api/v1/notifications",
    "/api/v1/settings",
    "/api/v1/teams",
    "/api/v1/projects",
    "/api/v1/files",
    "/api/v1/analytics",
    "/api/v1/health",
];
const REGIONS: [&str; 5] = [
    "eu-west-1",
    "us-east-1",
    "us-west-2",
    "ap-southeast-1",
    "sa-east-1",
];
const STATUS_CODES: [&str; 10] = [
    "200", "201", "204", "400", "401", "403", "404", "429", "500", "503",
];

/// xorshift64*: deterministic bodies without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn body(rng: &mut Rng, now: i64) -> String {
    use std::fmt::Write;
    let mut out = String::from("{\"metrics\":[");
    for i in 0..POINTS_PER_BODY {
        if i > 0 {
            out.push(',');
        }
        // Customers skewed towards small ids, like the benchmark's Zipf law.
        let spread = 1 + rng.below(100_000);
        let customer = rng.below(spread);
        let tenths = 200 + rng.below(3_000);
        let _ = write!(
            out,
            "{{\"name\":\"api_latency\",\"timestamp\":{},\"value\":{}.{},\"dimensions\":{{\
             \"customer_id\":\"cust_{customer}\",\"endpoint\":\"{}\",\"region\":\"{}\",\
             \"status_code\":\"{}\"}}}}",
            now - rng.below(3_600_000) as i64,
            tenths / 10,
            tenths % 10,
            ENDPOINTS[rng.below(20) as usize],
            REGIONS[rng.below(5) as usize],
            STATUS_CODES[rng.below(10) as usize],
        );
    }
    out.push_str("]}");
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let bodies = args.next().and_then(Result::ok).unwrap_or(20);
    let runs = args.next().and_then(Result::ok).unwrap_or(9);
    let now = now_ms();
    let rules = ValidationRules::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let texts: Vec<String> = (0..bodies).map(|_| body(&mut rng, now)).collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let points = (bodies * POINTS_PER_BODY) as f64;

    let mut decode_only = Vec::new();
    let mut serde_decode = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        for text in &texts {
            let count = reference::decode_write_body(text, |p| {
                black_box(p);
            })
            .expect("a valid body");
            black_box(count);
        }
        serde_decode.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        for text in &texts {
            let mut n = 0usize;
            let count = decode_write_body(text, |p| {
                black_box(p);
                n += 1;
            })
            .expect("a valid body");
            black_box((count, n));
        }
        decode_only.push(started.elapsed().as_secs_f64());

        // The batch owns its body: the copy is made outside the timed part.
        let copies: Vec<String> = texts.clone();
        let started = Instant::now();
        for text in copies {
            let decoded = decode_write_batch(text, BodyFormat::Json, now, &rules, POINTS_PER_BODY)
                .expect("a body");
            assert_eq!(decoded.points.len(), POINTS_PER_BODY, "every point valid");
            black_box(decoded);
        }
        whole.push(started.elapsed().as_secs_f64());
    }
    println!(
        "{bodies} bodies of {POINTS_PER_BODY} points, {:.1} MB, {} bytes/point; median of {runs} runs",
        bytes as f64 / 1e6,
        bytes / (bodies * POINTS_PER_BODY)
    );
    for (what, seconds) in [
        ("decode (serde_json)", median(serde_decode)),
        ("decode (scanner)", median(decode_only)),
        ("decode+validate+batch", median(whole)),
    ] {
        println!(
            "{what:>22}: {:6.1} ns/point  {:7.1} MB/s  {:5.2} M points/s",
            seconds * 1e9 / points,
            bytes as f64 / seconds / 1e6,
            points / seconds / 1e6
        );
    }
}
