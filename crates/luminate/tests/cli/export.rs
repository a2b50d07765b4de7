//! `luminate export` through the real binary: each format to stdout and to a file (gzipped by its
//! name), filters and ranges as `luminate query` takes them, the exit codes and messages of bad
//! input, a refused token and an unreachable server, and the progress line on a terminal only.

use super::*;

/// Two series of `cpu` (one without `dc`) and one of `mem`, written in that order.
fn write_points(server: &Luminate, t: i64) {
    let points: Vec<Value> = vec![
        common::point("cpu", t, 1.5, &[("host", "a"), ("dc", "eu")]),
        common::point("cpu", t + 1000, 2.0, &[("host", "a"), ("dc", "eu")]),
        common::point("cpu", t + 500, -3.25, &[("host", "b,\"c\"")]),
        common::point("mem", t, 1e-7, &[]),
    ];
    assert_eq!(server.write(&points).0, 200);
}

#[test]
fn export_writes_each_format_to_stdout_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let t = base_ms();
    write_points(&server, t);
    let (start, end) = (t.to_string(), (t + 60_000).to_string());
    let range = ["--start", start.as_str(), "--end", end.as_str()];

    let jsonl = luminate(&server, &[&["export"][..], &range].concat(), None);
    assert_eq!((jsonl.code, jsonl.stderr.as_str()), (0, ""));
    assert_eq!(
        jsonl.stdout,
        format!(
            "{{\"name\":\"cpu\",\"timestamp\":{t},\"value\":1.5,\"dimensions\":{{\"dc\":\"eu\",\"host\":\"a\"}}}}\n\
             {{\"name\":\"cpu\",\"timestamp\":{},\"value\":2.0,\"dimensions\":{{\"dc\":\"eu\",\"host\":\"a\"}}}}\n\
             {{\"name\":\"cpu\",\"timestamp\":{},\"value\":-3.25,\"dimensions\":{{\"host\":\"b,\\\"c\\\"\"}}}}\n\
             {{\"name\":\"mem\",\"timestamp\":{t},\"value\":1e-7,\"dimensions\":{{}}}}\n",
            t + 1000,
            t + 500
        )
    );

    let csv = luminate(
        &server,
        &[
            &["export", "--metric", "cpu", "--format", "csv"][..],
            &range,
        ]
        .concat(),
        None,
    );
    assert_eq!((csv.code, csv.stderr.as_str()), (0, ""));
    assert_eq!(
        csv.stdout,
        format!(
            "name,timestamp,value,dc,host\ncpu,{t},1.5,eu,a\ncpu,{},2.0,eu,a\ncpu,{},-3.25,,\"b,\"\"c\"\"\"\n",
            t + 1000,
            t + 500
        )
    );

    let om = luminate(
        &server,
        &[
            &[
                "export",
                "--format",
                "openmetrics",
                "--filter",
                "host=a|b,\"c\"",
            ][..],
            &range,
        ]
        .concat(),
        None,
    );
    assert_eq!((om.code, om.stderr.as_str()), (0, ""));
    let s = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
    assert_eq!(
        om.stdout,
        format!(
            "cpu{{dc=\"eu\",host=\"a\"}} 1.5 {}\ncpu{{dc=\"eu\",host=\"a\"}} 2.0 {}\ncpu{{host=\"b,\\\"c\\\"\"}} -3.25 {}\n# EOF\n",
            s(t),
            s(t + 1000),
            s(t + 500)
        )
    );

    // To a file, gzipped by its name, the format from its extension; the file imports back.
    let file = dir.path().join("cpu.csv.gz");
    let to_file = luminate(
        &server,
        &[
            &["export", "--metric", "cpu", "-o", file.to_str().unwrap()][..],
            &range,
        ]
        .concat(),
        None,
    );
    assert_eq!(
        (
            to_file.code,
            to_file.stdout.as_str(),
            to_file.stderr.as_str()
        ),
        (0, "", "")
    );
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap()),
        &mut text,
    )
    .unwrap();
    assert_eq!(text, csv.stdout);
    let other = tempfile::tempdir().unwrap();
    let target = Luminate::start(other.path());
    let imported = luminate(&target, &["import", file.to_str().unwrap()], None);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert_eq!(stored(&target, "cpu"), stored(&server, "cpu"));

    // Nothing in the range: an empty export, still a success.
    let empty = luminate(
        &server,
        &["export", "--metric", "cpu", "--start", "0", "--end", "1000"],
        None,
    );
    assert_eq!((empty.code, empty.stdout.as_str()), (0, ""));
}

#[test]
fn bad_input_exits_with_a_message_and_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    // Usage: nothing sent, exit 2.
    for (args, message) in [
        (
            &["export"][..],
            "luminate export: give --range (e.g. 1h) or --start and --end\n",
        ),
        (
            &["export", "--range", "1h", "--filter", "nokey"][..],
            "luminate export: --filter \"nokey\": expected key=value or key=v1|v2\n",
        ),
    ] {
        let run = luminate(&server, args, None);
        assert_eq!(
            (run.code, run.stderr.as_str(), run.stdout.as_str()),
            (2, message, ""),
            "{args:?}"
        );
    }
    let unwritable = luminate(
        &server,
        &[
            "export",
            "--range",
            "1h",
            "-o",
            "/nonexistent/dir/out.jsonl",
        ],
        None,
    );
    assert_eq!(unwritable.code, 2);
    assert!(
        unwritable
            .stderr
            .starts_with("luminate export: /nonexistent/dir/out.jsonl: "),
        "{}",
        unwritable.stderr
    );
    // Refused by the server: exit 1 with its code and message.
    let bad_time = luminate(
        &server,
        &["export", "--start", "yesterday", "--end", "5"],
        None,
    );
    assert_eq!(bad_time.code, 1);
    assert!(
        bad_time
            .stderr
            .starts_with("luminate export: 400 INVALID_QUERY: timeRange.start: "),
        "{}",
        bad_time.stderr
    );
    let reversed = luminate(
        &server,
        &["export", "--start", "5000", "--end", "1000"],
        None,
    );
    assert_eq!(
        (reversed.code, reversed.stderr.as_str()),
        (
            1,
            "luminate export: 400 INVALID_QUERY: timeRange: start (5000) must be before end (1000)\n"
        )
    );
    let bad_metric = luminate(
        &server,
        &["export", "--metric", "9x", "--range", "1h"],
        None,
    );
    assert_eq!(bad_metric.code, 1);
    assert!(
        bad_metric
            .stderr
            .starts_with("luminate export: 400 INVALID_METRIC_NAME: "),
        "{}",
        bad_metric.stderr
    );
    // No server: exit 1 after the attempts.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luminate"));
    let gone = cmd
        .args([
            "export",
            "--url",
            "http://127.0.0.1:9",
            "--attempts",
            "1",
            "--range",
            "1h",
        ])
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&gone.stderr)
            .starts_with("luminate export: POST http://127.0.0.1:9/api/v1/export: ")
    );
}

#[test]
fn a_token_is_sent_and_a_refused_one_fails_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "export-test-secret-of-at-least-32-bytes";
    let server = Launch::new(dir.path())
        .env("LUMINATE_AUTH_ENABLED", "true")
        .env("LUMINATE_AUTH_JWT_SECRET", secret)
        .start();
    let mint = |scopes: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_luminate"))
            .args(["token", "--tenant", "acme", "--scopes", scopes])
            .env("LUMINATE_AUTH_JWT_SECRET", secret)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let writer = mint("write");
    let t = base_ms();
    let write = luminate(
        &server,
        &["write", "--token", &writer, &format!("m{{k=\"v\"}} 4 {t}")],
        None,
    );
    assert_eq!(write.code, 0, "{}", write.stderr);
    let reader = mint("read");
    let ok = luminate(
        &server,
        &["export", "--token", &reader, "--range", "1h"],
        None,
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(
        ok.stdout,
        format!(
            "{{\"name\":\"m\",\"timestamp\":{t},\"value\":4.0,\"dimensions\":{{\"k\":\"v\"}}}}\n"
        )
    );
    let refused = luminate(
        &server,
        &["export", "--token", &writer, "--range", "1h"],
        None,
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .starts_with("luminate export: 403 FORBIDDEN: "),
        "{}",
        refused.stderr
    );
    let anonymous = luminate(&server, &["export", "--range", "1h"], None);
    assert_eq!(anonymous.code, 1);
    assert!(
        anonymous
            .stderr
            .starts_with("luminate export: 401 UNAUTHORIZED: "),
        "{}",
        anonymous.stderr
    );
}

/// On a terminal (a pseudo-terminal from util-linux's `script`) the export draws its progress and
/// ends with a line of points, bytes and points/s on stderr; piped, it prints nothing there.
#[test]
fn export_progress_is_shown_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let t = base_ms();
    let points: Vec<Value> = (0..3000)
        .map(|i| common::point("progress", t + i, i as f64, &[("k", "v")]))
        .collect();
    assert_eq!(server.write(&points).0, 200);
    let out_file = dir.path().join("out.jsonl");
    let export = format!(
        "{} export --url {} --range 1h -o {}",
        env!("CARGO_BIN_EXE_luminate"),
        server.base,
        out_file.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &export, "/dev/null"]);
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{terminal}");
    assert!(terminal.contains("exported 3000 points ("), "{terminal}");
    assert!(terminal.contains(" points/s"), "{terminal}");
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().lines().count(),
        3000
    );

    let piped = luminate(
        &server,
        &["export", "--range", "1h", "-o", out_file.to_str().unwrap()],
        None,
    );
    assert_eq!(
        (piped.code, piped.stdout.as_str(), piped.stderr.as_str()),
        (0, "", "")
    );
}
