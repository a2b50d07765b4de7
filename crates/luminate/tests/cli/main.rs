//! The client subcommands through the real binary against a real server: `luminate write` from
//! arguments and stdin, `luminate query` in its three outputs and from flags, `luminate import` of every
//! format, a rerun after a kill, `429` retries, `413` splits, and bad input reported by file and line
//! (the imports in `import.rs`), and `luminate export` in its three formats (`export.rs`).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

#[path = "../common/mod.rs"]
mod common;
mod export;
mod import;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Launch, Luminate, eventually, now_ms};
use luminate_model::time::format_rfc3339;
use serde_json::{Value, json};

/// The outcome of one run of the binary: exit code, stdout, stderr.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `luminate <args>` against `server`, with `stdin` piped in (or nothing).
fn luminate(server: &Luminate, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = command(server, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn command(server: &Luminate, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luminate"));
    cmd.arg(args[0])
        .args(["--url", &server.base])
        .args(&args[1..]);
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A minute-aligned time ten minutes ago: well inside the write window.
fn base_ms() -> i64 {
    (now_ms() / 60_000 - 10) * 60_000
}

/// Every stored point of `metric` in the last day, as (timestamp, value, dimensions), in the range
/// answer's order.
fn stored(server: &Luminate, metric: &str) -> Vec<(i64, f64, Value)> {
    let answer = server.query(&json!({
        "queryType": "range", "metricName": metric,
        "timeRange": {"start": now_ms() - 86_400_000, "end": now_ms() + 3_600_000}}));
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_i64().unwrap(),
                p["value"].as_f64().unwrap(),
                p["dimensions"].clone(),
            )
        })
        .collect()
}

/// Count and sum of `metric` over the last 8 days.
fn count_and_sum(server: &Luminate, metric: &str) -> (u64, f64) {
    let query = |aggregation: &str| {
        let answer = server.query(&json!({
            "queryType": "aggregate", "metricName": metric, "aggregation": aggregation,
            "timeRange": {"relative": "8d"}}));
        answer["results"][0]["value"].as_f64().unwrap_or(0.0)
    };
    (query("count") as u64, query("sum"))
}

fn without_execution_time(mut answer: Value) -> Value {
    answer.as_object_mut().unwrap().remove("executionTimeMs");
    answer
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn write_from_arguments_and_stdin_then_query_reads_exactly_those_points() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let t = base_ms();
    let from_args = luminate(
        &server,
        &[
            "write",
            &format!(r#"cpu{{host="a",dc="eu"}} 1.5 {t}"#),
            &format!(
                r#"{{"name":"cpu","timestamp":{},"value":2,"dimensions":{{"host":"b"}}}}"#,
                t + 1000
            ),
        ],
        None,
    );
    assert_eq!(from_args.code, 0, "{}", from_args.stderr);
    assert_eq!(from_args.stderr, "");
    assert!(
        from_args.stdout.starts_with(
            "points read 2, sent 2, accepted 2, rejected 0, failed 0, bad input lines 0\n"
        ),
        "{}",
        from_args.stdout
    );
    let stdin = format!(
        "# a comment\ncpu{{host=\"a\",dc=\"eu\"}} 3.25 {}\n\n{{\"name\":\"cpu\",\"timestamp\":{},\"value\":-4,\"dimensions\":{{\"host\":\"c,d\"}}}}\n",
        t + 2000,
        t + 3000
    );
    let from_stdin = luminate(&server, &["write"], Some(stdin.as_bytes()));
    assert_eq!(from_stdin.code, 0, "{}", from_stdin.stderr);
    assert!(
        from_stdin
            .stdout
            .starts_with("points read 2, sent 2, accepted 2, rejected 0")
    );

    let range = ["query", "--metric", "cpu", "--range", "1h"];
    let table = luminate(
        &server,
        &[&range[..], &["--output", "table"]].concat(),
        None,
    );
    assert_eq!(table.code, 0, "{}", table.stderr);
    let ts = |offset: i64| format_rfc3339(t + offset);
    assert_eq!(
        table.stdout,
        format!(
            "{:<20}  dc  host  value\n\
             {}  eu  a       1.5\n\
             {}      b       2.0\n\
             {}  eu  a      3.25\n\
             {}      c,d    -4.0\n",
            "timestamp",
            ts(0),
            ts(1000),
            ts(2000),
            ts(3000)
        )
    );
    let csv = luminate(&server, &[&range[..], &["--output", "csv"]].concat(), None);
    assert_eq!(
        csv.stdout,
        format!(
            "timestamp,dc,host,value\n{},eu,a,1.5\n{},,b,2.0\n{},eu,a,3.25\n{},,\"c,d\",-4.0\n",
            t,
            t + 1000,
            t + 2000,
            t + 3000
        )
    );
    let json_out = luminate(&server, &[&range[..], &["--output", "json"]].concat(), None);
    let answer: Value = serde_json::from_str(&json_out.stdout).unwrap();
    assert_eq!(
        without_execution_time(answer),
        json!({"queryType": "range", "truncated": false, "results": [
            {"timestamp": t, "value": 1.5, "dimensions": {"dc": "eu", "host": "a"}},
            {"timestamp": t + 1000, "value": 2.0, "dimensions": {"host": "b"}},
            {"timestamp": t + 2000, "value": 3.25, "dimensions": {"dc": "eu", "host": "a"}},
            {"timestamp": t + 3000, "value": -4.0, "dimensions": {"host": "c,d"}}]})
    );
    // Piped, the default output is the server's JSON.
    let default = luminate(&server, &range, None);
    assert_eq!(
        without_execution_time(serde_json::from_str(&default.stdout).unwrap()),
        without_execution_time(serde_json::from_str(&json_out.stdout).unwrap())
    );
}

#[test]
fn query_flags_build_the_same_query_as_the_json_form() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let t = base_ms();
    let mut points = Vec::new();
    for i in 0..60 {
        let customer = ["c1", "c2", "c3"][i % 3];
        let region = ["eu", "us", "ap"][i % 3];
        points.push(format!(
            r#"api{{customer_id="{customer}",region="{region}"}} {} {}"#,
            i * 7 % 13,
            t + (i as i64) * 5_000
        ));
    }
    let args: Vec<&str> = std::iter::once("write")
        .chain(points.iter().map(String::as_str))
        .collect();
    assert_eq!(luminate(&server, &args, None).code, 0);

    let query = json!({"queryType": "aggregate", "metricName": "api", "aggregation": "p95",
        "groupBy": ["customer_id"], "filters": {"region": ["eu", "us"]},
        "timeRange": {"relative": "1h"}, "interval": "1m", "limit": 5});
    let direct = without_execution_time(server.query(&query));
    assert_eq!(direct["results"].as_array().unwrap().len(), 2);
    let flags = luminate(
        &server,
        &[
            "query",
            "--metric",
            "api",
            "--agg",
            "p95",
            "--by",
            "customer_id",
            "--filter",
            "region=eu|us",
            "--range",
            "1h",
            "--interval",
            "1m",
            "--limit",
            "5",
            "--output",
            "json",
        ],
        None,
    );
    assert_eq!(flags.code, 0, "{}", flags.stderr);
    assert_eq!(
        without_execution_time(serde_json::from_str(&flags.stdout).unwrap()),
        direct
    );
    // The same query from stdin, and from a file with a flag overriding a field; repeated filters
    // are the same any-of list.
    let from_stdin = luminate(
        &server,
        &["query", "-", "--output", "json"],
        Some(query.to_string().as_bytes()),
    );
    assert_eq!(
        without_execution_time(serde_json::from_str(&from_stdin.stdout).unwrap()),
        direct
    );
    let mut other = query.clone();
    other["aggregation"] = json!("min");
    let file = write_file(dir.path(), "q.json", &other.to_string());
    let from_file = luminate(
        &server,
        &[
            "query",
            &file,
            "--agg",
            "p95",
            "--filter",
            "region=eu",
            "--filter",
            "region=us",
            "--output",
            "json",
        ],
        None,
    );
    assert_eq!(
        without_execution_time(serde_json::from_str(&from_file.stdout).unwrap()),
        direct
    );
    // The table of a bucketed aggregate: one row per group and bucket.
    let table = luminate(
        &server,
        &["query", "-", "--output", "csv"],
        Some(query.to_string().as_bytes()),
    );
    let mut expected = "customer_id,timestamp,value,count\n".to_owned();
    for group in direct["results"].as_array().unwrap() {
        for p in group["points"].as_array().unwrap() {
            expected.push_str(&format!(
                "{},{},{},{}\n",
                group["groupKey"]["customer_id"].as_str().unwrap(),
                p["timestamp"],
                p["value"],
                p["count"]
            ));
        }
    }
    assert_eq!(table.stdout, expected);
}

#[test]
fn query_errors_exit_non_zero_with_the_servers_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let refused = luminate(
        &server,
        &["query", "--metric", "cpu", "--agg", "p42", "--range", "1h"],
        None,
    );
    assert_eq!(refused.code, 1);
    assert_eq!(refused.stdout, "");
    assert!(
        refused
            .stderr
            .starts_with("luminate query: 400 INVALID_QUERY: aggregation: unknown \"p42\""),
        "{}",
        refused.stderr
    );
    let usage = luminate(&server, &["query", "--range", "1h"], None);
    assert_eq!(usage.code, 2);
    assert!(usage.stderr.contains("give --metric"), "{}", usage.stderr);
}

#[test]
fn a_rate_limited_query_is_retried_after_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND", "1")
        .start();
    let t = base_ms();
    assert_eq!(
        luminate(&server, &["write", &format!("q 2 {t}")], None).code,
        0
    );
    let args = [
        "query", "--metric", "q", "--agg", "sum", "--range", "1h", "--output", "csv",
    ];
    // One query a second: of queries in a row, the second waits for the `Retry-After` (a third is
    // run only if a slow machine took a whole second between the first two).
    let mut retried = 0;
    for _ in 0..3 {
        let run = luminate(&server, &args, None);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, "value,count\n2.0,1\n");
        if run.stderr.is_empty() {
            continue;
        }
        assert!(
            run.stderr
                .starts_with("luminate query: retrying: 429 RATE_LIMIT_EXCEEDED: "),
            "{}",
            run.stderr
        );
        retried += 1;
        break;
    }
    assert_eq!(retried, 1);
}

/// `luminate --help` lists exactly the subcommands that exist, each answering its own `--help`, and
/// its first line names every one of them.
#[test]
fn help_lists_exactly_the_commands_that_exist() {
    let help = Command::new(env!("CARGO_BIN_EXE_luminate"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8(help.stdout).unwrap();
    let listed: Vec<&str> = help
        .split_once("Commands:\n")
        .unwrap()
        .1
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    let expected = [
        "serve", "bench", "soak", "token", "write", "query", "import", "export", "check", "repair",
        "backup", "restore",
    ];
    assert_eq!(listed, expected, "{help}");
    let first = help.lines().next().unwrap();
    for name in expected {
        assert!(first.contains(name), "{name} missing from {first:?}");
        let own = Command::new(env!("CARGO_BIN_EXE_luminate"))
            .args([name, "--help"])
            .output()
            .unwrap();
        assert_eq!(own.status.code(), Some(0), "luminate {name} --help");
    }
}
