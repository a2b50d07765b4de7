//! `luminate bench` end to end at a small size: it spawns its own server (on the embedded engine, or
//! with `--clickhouse` on a real ClickHouse), ingests a seeded dataset, runs the query set once, and its
//! JSON report must show every point accepted, every answer equal to the exact reference, and the
//! figures the docs promise. Deterministic from the seed.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::process::Command;

use serde_json::Value;

const POINTS: u64 = 20_000;
const COUNTER_POINTS: u64 = 2_000;

fn bench(extra: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_luminate"));
    command.args([
        "bench",
        "--points",
        &POINTS.to_string(),
        "--customers",
        "500",
        "--counter-points",
        &COUNTER_POINTS.to_string(),
        "--queries-repeat",
        "1",
        "--seed",
        "7",
        "--json",
    ]);
    command.args(extra);
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn query<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("no query {name} in {report}"))
}

#[test]
fn bench_small_dataset_reports_exact_answers() {
    let (ok, stdout, stderr) = bench(&[]);
    assert!(ok, "luminate bench failed:\n{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();

    // Every generated point was accepted.
    assert_eq!(report["dataset"]["latency_points"], POINTS);
    assert_eq!(report["dataset"]["counter_points"], COUNTER_POINTS);
    assert_eq!(report["ingest"]["points_accepted"], POINTS + COUNTER_POINTS);
    assert_eq!(report["ingest"]["requests"], 3); // two latency bodies of 10 000, one counter body
    assert_eq!(report["all_checks_passed"], true, "{report}");
    for q in report["queries"].as_array().unwrap() {
        assert_eq!(q["check"], "ok", "{q}");
        assert!(q["median_ms"].as_f64().unwrap() > 0.0);
    }

    // The series count the server answers is the generator's distinct series count.
    let series = report["dataset"]["latency_series"].as_u64().unwrap();
    assert!(series > 1_000 && series <= POINTS, "{series}");
    assert_eq!(query(&report, "series_count")["answer"]["series"], series);

    // Top-10 counts are the largest, in order, and sum to at most the points written.
    let top: Vec<u64> = query(&report, "count_by_customer_top10")["answer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .collect();
    assert_eq!(top.len(), 10);
    assert!(top.windows(2).all(|w| w[0] >= w[1]), "{top:?}");
    assert!(top.iter().sum::<u64>() <= POINTS);
    // Zipf: the first customer alone has more than a tenth of the points.
    assert!(top[0] > POINTS / 10, "{top:?}");

    // The range query of the top customer returns its points, cut at the server's limit if needed.
    let range = &query(&report, "range_top_customer")["answer"];
    assert_eq!(range["points"].as_u64().unwrap(), top[0].min(10_000));

    // What a spawned server makes measurable.
    assert!(report["storage"]["disk_bytes"].as_u64().unwrap() > 0);
    assert!(report["storage"]["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(report["ingest"]["points_per_second"].as_f64().unwrap() > 0.0);
    // Settled before the queries: the head's WAL (about 20 bytes a point) became parts (a few).
    let storage = &report["storage"];
    let settled = storage["disk_bytes_settled"].as_u64().unwrap();
    let after_ingest = storage["disk_bytes_after_ingest"].as_u64().unwrap();
    assert!(settled < after_ingest, "{storage}");
    assert!(storage["settle_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        storage["bytes_per_point"].as_f64().unwrap(),
        settled as f64 / (POINTS + COUNTER_POINTS) as f64
    );
}

#[test]
fn remote_write_and_otlp_loads_give_the_same_exact_answers_as_json() {
    // One connection: the same arrival order, so even float sums are added in the same order.
    let (ok, stdout, stderr) = bench(&["--connections", "1"]);
    assert!(ok, "luminate bench failed:\n{stderr}\n{stdout}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    for protocol in ["remote-write", "otlp"] {
        let (ok, stdout, stderr) = bench(&["--protocol", protocol, "--connections", "1"]);
        assert!(
            ok,
            "luminate bench --protocol {protocol} failed:\n{stderr}\n{stdout}"
        );
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["ingest"]["protocol"], protocol);
        assert_eq!(report["ingest"]["points_accepted"], POINTS + COUNTER_POINTS);
        assert_eq!(report["ingest"]["requests"], 3);
        assert_eq!(report["all_checks_passed"], true, "{protocol}: {report}");
        // Not only equal to the reference: the very answers the JSON load gave.
        for (ours, theirs) in report["queries"]
            .as_array()
            .unwrap()
            .iter()
            .zip(json["queries"].as_array().unwrap())
        {
            assert_eq!(ours["name"], theirs["name"]);
            assert_eq!(
                ours["answer"], theirs["answer"],
                "{protocol}: {}",
                ours["name"]
            );
        }
        // Compressed protobuf is smaller on the wire than the JSON.
        assert!(
            report["ingest"]["wire_bytes"].as_u64().unwrap()
                < json["ingest"]["wire_bytes"].as_u64().unwrap()
        );
    }
}

#[test]
fn protocol_loads_over_two_connections_store_every_point_of_a_dense_dataset() {
    // The density of 10 M points an hour (several points a millisecond, a hot customer's series twice
    // in one) at 20 000 points: 20 000 points in 2 s are 10 a millisecond, and the first of 50 Zipf
    // customers has about a quarter of them. Small bodies over two connections, so that without
    // sharding by series a series' points would race each other. Every sample the newest-sample rule
    // dropped would fail the run (the bench reads `/metrics`) and the count answers.
    for protocol in ["remote-write", "otlp"] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_luminate"));
        command.args([
            "bench",
            "--points",
            &POINTS.to_string(),
            "--span-ms",
            "2000",
            "--customers",
            "50",
            "--series-target",
            "100",
            "--counter-points",
            &COUNTER_POINTS.to_string(),
            "--batch",
            "500",
            "--connections",
            "2",
            "--protocol",
            protocol,
            "--queries-repeat",
            "1",
            "--seed",
            "7",
            "--json",
        ]);
        let output = command.output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        );
        assert!(
            output.status.success(),
            "luminate bench --protocol {protocol} failed:\n{stderr}\n{stdout}"
        );
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["ingest"]["connections"], 2);
        assert_eq!(report["ingest"]["points_accepted"], POINTS + COUNTER_POINTS);
        assert_eq!(report["all_checks_passed"], true, "{protocol}: {report}");
        let series = report["dataset"]["latency_series"].as_u64().unwrap();
        assert_eq!(query(&report, "series_count")["answer"]["series"], series);
    }
}

#[test]
fn load_only_times_the_ingest_and_runs_no_query() {
    let (ok, stdout, stderr) = bench(&["--protocol", "remote-write", "--load-only"]);
    assert!(ok, "{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ingest"]["load_only"], true);
    assert_eq!(report["ingest"]["points_accepted"], POINTS + COUNTER_POINTS);
    assert_eq!(report["queries"], serde_json::json!([]));
    let (ok, _, stderr) = bench(&["--protocol", "remote-write", "--gzip"]);
    assert!(!ok);
    assert!(stderr.contains("--gzip does not apply"), "{stderr}");
}

#[test]
fn dataset_out_writes_identical_points_for_the_peers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dataset");
    let (ok, stdout, stderr) = bench(&[
        "--hour-start",
        "1800000000000",
        "--dataset-out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "luminate bench --dataset-out failed:\n{stderr}");
    let meta: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(meta["start"], 1_800_000_000_000_i64);
    assert_eq!(meta["end"], 1_800_003_600_000_i64);

    let lines = |kind: &str| -> Vec<String> {
        meta[format!("{kind}_files")]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|name| {
                std::fs::read_to_string(out.join(kind).join(name.as_str().unwrap()))
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (vm, ch) = (lines("vm"), lines("ch"));
    assert_eq!(vm.len() as u64, POINTS + COUNTER_POINTS);
    assert_eq!(ch.len() as u64, POINTS + COUNTER_POINTS);
    // Same point, two formats.
    let row: Vec<&str> = ch[0].split('\t').collect();
    assert_eq!(row.len(), 7);
    assert_eq!(row[0], "api_latency");
    assert!(vm[0].starts_with(&format!("api_latency{{customer_id=\"{}\"", row[1])));
    assert!(vm[0].ends_with(&format!(" {} {}", row[6], row[5])));
    assert_eq!(row[5], "1800000000000");

    // Deterministic: the same arguments write the same files.
    let again = dir.path().join("again");
    let (ok, _, stderr) = bench(&[
        "--hour-start",
        "1800000000000",
        "--dataset-out",
        again.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read(out.join("ch/0000.tsv")).unwrap(),
        std::fs::read(again.join("ch/0000.tsv")).unwrap()
    );
}

#[cfg(feature = "clickhouse")]
#[test]
fn bench_on_clickhouse_reports_exact_answers_and_clickhouse_figures() {
    let clickhouse = luminate_clickhouse::testing::shared();
    let pid = clickhouse.pid().unwrap().to_string();
    let (ok, stdout, stderr) = bench(&[
        "--clickhouse",
        &clickhouse.address(),
        "--clickhouse-database",
        "bench_e2e",
        "--clickhouse-pid",
        &pid,
    ]);
    assert!(
        ok,
        "luminate bench --clickhouse failed:\n{stderr}\n{stdout}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["backend"], "clickhouse");
    assert_eq!(report["ingest"]["points_accepted"], POINTS + COUNTER_POINTS);
    assert_eq!(report["all_checks_passed"], true, "{report}");
    let series = report["dataset"]["latency_series"].as_u64().unwrap();
    assert_eq!(query(&report, "series_count")["answer"]["series"], series);

    // Disk from system.parts; memory and CPU are Luminate's plus ClickHouse's.
    assert!(report["storage"]["disk_bytes"].as_u64().unwrap() > 0);
    let ch = &report["clickhouse"];
    assert_eq!(ch["database"], "bench_e2e");
    assert_eq!(ch["pid"].as_u64().unwrap().to_string(), pid);
    let (luminate_peak, clickhouse_peak) = (
        report["storage"]["luminate_peak_rss_bytes"]
            .as_u64()
            .unwrap(),
        ch["peak_rss_bytes"].as_u64().unwrap(),
    );
    assert!(luminate_peak > 0 && clickhouse_peak > 0);
    assert_eq!(
        report["storage"]["peak_rss_bytes"].as_u64().unwrap(),
        luminate_peak + clickhouse_peak
    );
    assert!(report["ingest"]["server_cpu_seconds"].as_f64().unwrap() > 0.0);
    // The run's database is gone afterwards.
    assert_eq!(
        clickhouse
            .sql("SELECT count() FROM system.databases WHERE name = 'bench_e2e'")
            .unwrap()
            .trim(),
        "0"
    );
}
