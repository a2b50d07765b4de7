//! Writes the seed corpora of the fuzz targets into the directory given (`fuzz/corpus`), one
//! subdirectory per target: small files, from real encoders wherever the format has one. Run it again
//! after a format changes (docs/fuzzing.md).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use luminate_engine::{Engine, EngineConfig, SyncPolicy};
use luminate_model::{Dimensions, Point, Tenant};

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let mut corpus = Corpus { out, written: 0 };
    text_seeds(&mut corpus);
    compressed_seeds(&mut corpus);
    engine_seeds(&mut corpus);
    println!(
        "wrote {} seed files under {}",
        corpus.written,
        corpus.out.display()
    );
}

struct Corpus {
    out: PathBuf,
    written: usize,
}

impl Corpus {
    fn add(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.out.join(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        fs::write(dir.join(name), bytes).expect("write a seed");
        self.written += 1;
    }

    /// A seed whose first byte selects the target's mode (a cap, checksum fix-ups, a query kind).
    fn add_with(&mut self, target: &str, name: &str, mode: u8, bytes: &[u8]) {
        let mut v = vec![mode];
        v.extend_from_slice(bytes);
        self.add(target, name, &v);
    }
}

/// JSON write bodies of the contract (docs/api.md): the write, gzip and snappy targets start from them.
const WRITE_BODIES: [&str; 6] = [
    r#"{"points":[{"metricName":"api_latency","timestamp":1800000000000,"value":12.5,"dimensions":{"region":"eu","endpoint":"/login"}}]}"#,
    r#"{"points":[{"metricName":"m","timestamp":"2027-01-15T08:00:00Z","value":-0.0,"dimensions":{}},{"metricName":"m","timestamp":1800000000001,"value":1e308}]}"#,
    r#"[{"metricName":"cpu","timestamp":1800000000000,"value":3,"dimensions":{"host":"h1","dc":"a"}}]"#,
    r#"{"points":[{"metricName":"x","timestamp":1,"value":"NaN"}]}"#,
    r#"{"points":[]}"#,
    r#"{"points":[{"metricName":"bad name","timestamp":1800000000000,"value":1},{"metricName":"ok","timestamp":1800000000000,"value":2,"dimensions":{"k":"v\u00e9\n"}}]}"#,
];

fn text_seeds(c: &mut Corpus) {
    for (i, body) in WRITE_BODIES.iter().enumerate() {
        c.add("json_write", &format!("body-{i}.json"), body.as_bytes());
    }
    // JSON lines as `/api/v1/export` streams them (and `application/x-ndjson` writes take them).
    c.add(
        "json_write",
        "lines-0.jsonl",
        b"{\"name\":\"api_latency\",\"timestamp\":1800000000000,\"value\":12.5,\"dimensions\":{\"region\":\"eu\"}}\n\
          \r\n{\"name\":\"m\",\"timestamp\":\"2027-01-15T08:00:00Z\",\"value\":-0.0}\n",
    );
    c.add("json_write", "lines-1.jsonl", b"{\"name\":\"m\",\n\"value\":1}\n{}");
    let queries = [
        r#"{"queryType":"aggregate","metricName":"api_latency","timeRange":{"start":"2027-01-15T07:00:00Z","end":1800000000000},"filters":{"region":"eu","customer_id":"c1"},"aggregation":"p95","groupBy":["endpoint"],"interval":"1m","limit":5,"timeout":"2s"}"#,
        r#"{"queryType":"range","metricName":"m","timeRange":{"relative":"1h"}}"#,
        r#"{"queryType":"rate","metricName":"requests","timeRange":{"relative":"2w"},"interval":"5m","groupBy":["job","env"]}"#,
        r#"{"queryType":"aggregate","metricName":"m","aggregation":"integral","timeRange":{"relative":"90d"},"filters":{"host":["a","b",""]}}"#,
        r#"{"queryType":"listDimensionValues","metricName":"api_requests","dimension":"customer_id","prefix":"cust_","limit":10}"#,
        r#"{"queryType":"aggregate","metricName":"m","aggregation":"avg","timeRange":{"start":0,"end":"9999-12-31T23:59:59Z"}}"#,
        r#"{"queryType":"range","metricName":"m","timeRange":{"relative":"1h","start":1},"limit":0}"#,
        r#"{"queryType":"range","metricName":"m","timeRange":{"relative":"1h"},"timeout":"36500d","interval":"1s"}"#,
        r#"{"queryType":"aggregate","metricName":"m","aggregation":"sum","timeRange":{"relative":"1h"},"groupBy":["a","a"],"filters":{"k":"v","k":"w"}}"#,
    ];
    for (i, q) in queries.iter().enumerate() {
        c.add("query", &format!("query-{i}.json"), q.as_bytes());
    }
    let expressions = [
        "requests",
        r#"rate(requests{job="api"}[1m])"#,
        r#"sum by (job) (rate(requests[5m]))"#,
        r#"histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))"#,
        r#"avg_over_time(temp{room=~"a|b"}[2m] offset 1m)"#,
        r#"quantile_over_time(0.5, temp[10m]) > bool 20"#,
        r#"requests / on(job) group_left requests"#,
        r#"label_replace(temp, "r", "$1", "room", "(.*)")"#,
        r#"clamp_min(temp, 0) + scalar(sum(requests)) * -time()"#,
        r#"topk(1, requests) or vector(1)"#,
        r#"count_over_time(requests{job!="web"}[10m] @ 300)"#,
        r#"increase(requests[1h:1m])"#,
        "1 + 2 * 3 ^ 2 % 5",
    ];
    for (i, e) in expressions.iter().enumerate() {
        // Even seeds are instant queries, odd ones range queries (`promql.rs`: the first byte).
        let mode = if i % 2 == 0 { 60 } else { 128 + 15 };
        c.add_with("promql", &format!("expr-{i}"), mode, e.as_bytes());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for name in ["customer_overview.json", "demo_api.json"] {
        let doc =
            fs::read(root.join("deploy/dashboards").join(name)).expect("read a shipped dashboard");
        c.add("dashboard", name, &doc);
    }
    let dashboards = [
        r#"{"id":"d","title":"T","panels":[]}"#,
        r#"{"dashboard":{"id":"d","title":"T","tags":["x"],"timeRange":{"relative":"24h"},"refreshInterval":"30s","panels":[{"id":"a","title":"A","type":"gauge","gridPosition":{"x":0,"y":0,"w":6,"h":4},"query":{"queryType":"aggregate","metricName":"m","aggregation":"p95","filters":{"region":"$region"}},"display":{"unit":"ms","decimals":2,"threshold":{"warning":200,"critical":500.5},"legend":{"show":true,"position":"bottom"}}}],"variables":[{"name":"region","label":"Region","type":"custom","options":["a","b"],"multi":true,"default":["a"]}],"schemaVersion":1,"version":3}}"#,
        r#"{"id":"d","title":"T","panels":[{"id":"a","title":"A","type":"timeseries","gridPosition":{"x":0,"y":0,"w":24,"h":8},"query":{"queryType":"rate","metricName":"requests","groupBy":["job"]}}],"variables":[{"name":"job","type":"query","query":{"queryType":"listDimensionValues","metricName":"requests","dimension":"job"}}]}"#,
    ];
    for (i, d) in dashboards.iter().enumerate() {
        c.add("dashboard", &format!("doc-{i}.json"), d.as_bytes());
    }
    let exposition = [
        "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n",
        "temp{room=\"a b\",x=\"\\\"q\\\"\\n\"} -Inf\nup 1\n# EOF\n",
        "lat_bucket{le=\"0.5\"} 3.5e+2\nlat_sum 1.5\nlat_count 7 1800000000\n",
    ];
    for (i, e) in exposition.iter().enumerate() {
        c.add("exposition", &format!("lines-{i}.txt"), e.as_bytes());
    }
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fn compressed_seeds(c: &mut Corpus) {
    for (i, body) in WRITE_BODIES.iter().enumerate() {
        // gzip.rs and snappy.rs: the first byte picks the cap (2^(b % 17), 2^(b % 21)).
        c.add_with(
            "gzip",
            &format!("body-{i}.gz"),
            12,
            &gzip(body.as_bytes(), 6),
        );
        let snappy = snap::raw::Encoder::new()
            .compress_vec(body.as_bytes())
            .expect("snappy into memory");
        c.add_with("snappy", &format!("body-{i}.sz"), 12, &snappy);
        c.add_with("snappy", &format!("body-{i}-over-cap.sz"), 6, &snappy);
    }
    // Two gzip members (`MultiGzDecoder` reads both), a stored block, an empty body, and a small bomb
    // past its cap.
    let mut two = gzip(b"first member ", 9);
    two.extend(gzip(b"second member", 1));
    c.add_with("gzip", "two-members.gz", 12, &two);
    c.add_with(
        "gzip",
        "stored.gz",
        12,
        &gzip(WRITE_BODIES[0].as_bytes(), 0),
    );
    c.add_with("gzip", "empty.gz", 0, &gzip(b"", 6));
    c.add_with("gzip", "bomb.gz", 10, &gzip(&[b' '; 64 << 10], 9));
    let repetitive = "abcabcabcabc".repeat(200);
    let snappy = snap::raw::Encoder::new()
        .compress_vec(repetitive.as_bytes())
        .expect("snappy into memory");
    c.add_with("snappy", "copies.sz", 14, &snappy);
    c.add_with("snappy", "empty.sz", 0, &[0]);
    for (i, body) in remote_write_bodies().iter().enumerate() {
        let snappy = snap::raw::Encoder::new()
            .compress_vec(body)
            .expect("snappy into memory");
        c.add("remote_write", &format!("write-request-{i}.sz"), &snappy);
        c.add("remote_write", &format!("write-request-{i}.pb"), body);
    }
    let otlp = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeMetrics":[{"metrics":[{"name":"requests","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"attributes":[{"key":"code","value":{"intValue":"200"}}],"timeUnixNano":"1800000000000000000","asInt":"42"}]}},{"name":"temp","gauge":{"dataPoints":[{"timeUnixNano":"1800000000000000000","asDouble":21.5}]}},{"name":"lat","histogram":{"aggregationTemporality":2,"dataPoints":[{"timeUnixNano":"1800000000000000000","count":"3","sum":1.5,"bucketCounts":["1","2"],"explicitBounds":[0.5]}]}}]}]}]}"#;
    c.add("otlp", "export.json", otlp.as_bytes());
    c.add("otlp", "export.json.gz", &gzip(otlp.as_bytes(), 6));
}

/// Protobuf field `field` of wire type `wire`, then its bytes.
fn proto_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    proto_varint(out, u64::from(field << 3 | wire));
}

fn proto_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn proto_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    proto_key(out, field, 2);
    proto_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `prometheus.WriteRequest` (remote write 1.0) bodies, encoded field by field: a counter with two
/// samples, a series with a NaN and no name label.
fn remote_write_bodies() -> Vec<Vec<u8>> {
    let series = |labels: &[(&str, &str)], samples: &[(f64, i64)]| {
        let mut ts = Vec::new();
        for (name, value) in labels {
            let mut label = Vec::new();
            proto_bytes(&mut label, 1, name.as_bytes());
            proto_bytes(&mut label, 2, value.as_bytes());
            proto_bytes(&mut ts, 1, &label);
        }
        for &(value, timestamp) in samples {
            let mut sample = Vec::new();
            proto_key(&mut sample, 1, 1);
            sample.extend_from_slice(&value.to_le_bytes());
            proto_key(&mut sample, 2, 0);
            proto_varint(&mut sample, timestamp as u64);
            proto_bytes(&mut ts, 2, &sample);
        }
        ts
    };
    let mut one = Vec::new();
    proto_bytes(
        &mut one,
        1,
        &series(
            &[("__name__", "http_requests_total"), ("job", "api")],
            &[(1027.0, 1_800_000_000_000), (1030.0, 1_800_000_015_000)],
        ),
    );
    let mut two = one.clone();
    proto_bytes(
        &mut two,
        1,
        &series(&[("le", "+Inf")], &[(f64::NAN, 1_800_000_000_000)]),
    );
    vec![one, two]
}

fn point(name: &str, timestamp: i64, value: f64, dims: &[(&str, &str)]) -> Point {
    Point {
        name: name.to_owned(),
        timestamp,
        value,
        dimensions: Dimensions::from_pairs(
            dims.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        ),
    }
}

const DAY: i64 = 86_400_000;
const BASE: i64 = 20_000 * DAY;

/// The records of a segment's bytes (`wal` module docs in the engine: 8-byte header, then length,
/// crc32c and payload per record).
fn payloads(segment: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= segment.len() {
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 || at + 8 + len > segment.len() {
            break;
        }
        out.push(&segment[at + 8..at + 8 + len]);
        at += 8 + len;
    }
    out
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.map(|e| e.expect("list a directory").path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A real engine's data directory: parts of two kinds (with and without block summaries), the
/// manifest, the series log, and WAL segments with write batches and a delete.
fn engine_seeds(c: &mut Corpus) {
    let dir = std::env::temp_dir().join(format!("luminate-fuzz-seeds-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let tenant = Tenant::new("acme");
    {
        let engine = Engine::open(EngineConfig {
            sync: SyncPolicy::None,
            summary_min_rows: 0,
            ..EngineConfig::new(&dir)
        })
        .expect("open an engine");
        // Dense series: summarised parts, pages of many rows.
        let dense: Vec<Point> = (0..400)
            .map(|i| {
                let host = format!("h{}", i % 4);
                point(
                    "cpu",
                    BASE + i * 15_000,
                    (i % 17) as f64 * 0.5,
                    &[("host", &host), ("dc", "eu")],
                )
            })
            .collect();
        engine.write(&tenant, dense).expect("write");
        engine
            .write(
                &Tenant::default_tenant(),
                vec![point("up", BASE + DAY, 1.0, &[])],
            )
            .expect("write");
        engine.flush().expect("flush");
        // After the flush, the WAL holds these: batches defining series, NaN and infinite values,
        // points of known series, a delete.
        engine
            .write(
                &tenant,
                vec![
                    point(
                        "lat",
                        BASE + 5,
                        f64::NAN,
                        &[("endpoint", "/login"), ("region", "eu")],
                    ),
                    point("lat", BASE + 6, f64::INFINITY, &[("endpoint", "/")]),
                ],
            )
            .expect("write");
        engine
            .write(
                &tenant,
                vec![point(
                    "cpu",
                    BASE + 1,
                    -0.0,
                    &[("host", "h1"), ("dc", "eu")],
                )],
            )
            .expect("write");
        engine
            .delete_before(&tenant, "cpu", BASE + 1_000)
            .expect("delete");
        engine.sync().expect("sync");
    }
    let manifest = fs::read(dir.join("MANIFEST")).expect("read the manifest");
    c.add("manifest", "MANIFEST", &manifest);
    c.add(
        "manifest",
        "empty",
        br#"{"version":1,"wal_start":1,"next_part":1,"parts":[]}"#,
    );
    for (i, part) in files(&dir.join("parts")).iter().enumerate() {
        let bytes = fs::read(part).expect("read a part");
        if bytes.len() > 64 << 10 {
            continue;
        }
        // part.rs: odd first bytes fix the checksums up, even ones keep the file as it is.
        c.add_with("part", &format!("part-{i}"), 0, &bytes);
        c.add_with("part", &format!("part-{i}-fixed"), 1, &bytes);
    }
    for (i, seg) in files(&dir.join("series")).iter().enumerate() {
        let bytes = fs::read(seg).expect("read a series log segment");
        c.add_with("series_log", &format!("segment-{i}"), 1, &bytes);
        c.add_with("series_log", &format!("segment-{i}-raw"), 0, &bytes);
        for (j, payload) in payloads(&bytes).iter().enumerate() {
            c.add("wal_record", &format!("series-batch-{i}-{j}"), payload);
        }
    }
    for (i, seg) in files(&dir.join("wal")).iter().enumerate() {
        let bytes = fs::read(seg).expect("read a WAL segment");
        c.add_with("wal_segment", &format!("segment-{i}"), 0, &bytes);
        c.add_with("wal_segment", &format!("segment-{i}-fixed"), 1, &bytes);
        // A torn tail and damage before a complete record.
        if bytes.len() > 20 {
            c.add_with(
                "wal_segment",
                &format!("segment-{i}-torn"),
                0,
                &bytes[..bytes.len() - 3],
            );
            let mut flipped = bytes.clone();
            flipped[12] ^= 0x40;
            c.add_with("wal_segment", &format!("segment-{i}-flipped"), 0, &flipped);
        }
        for (j, payload) in payloads(&bytes).iter().enumerate() {
            c.add("wal_record", &format!("wal-{i}-{j}"), payload);
        }
    }
    let _ = fs::remove_dir_all(&dir);
}
