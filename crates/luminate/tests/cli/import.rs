//! `luminate import` through the real binary: every format, a rerun after a kill stores every point
//! once, `429` retries, `413` splits, bad input reported by file and line, tokens, progress on a
//! terminal only, and a real `promtool tsdb dump`.

use super::*;

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn import_of_each_format_stores_exactly_its_points() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let t = base_ms();
    let jsonl = write_file(
        dir.path(),
        "points.jsonl",
        &format!(
            "{{\"name\":\"from_jsonl\",\"timestamp\":{t},\"value\":1,\"dimensions\":{{\"k\":\"a\"}}}}\n\n{{\"name\":\"from_jsonl\",\"timestamp\":\"{}\",\"value\":2.5}}\n",
            format_rfc3339(t + 1000)
        ),
    );
    let csv_path = dir.path().join("points.csv.gz");
    std::fs::write(
        &csv_path,
        gzip(&format!(
            "name,timestamp,value,host,dc\nfrom_csv,{t},0.5,\"a,1\",eu\nfrom_csv,{},7,b,\n",
            t + 1000
        )),
    )
    .unwrap();
    let prom = write_file(
        dir.path(),
        "metrics.prom",
        &format!(
            "# HELP req_seconds Request time.\n# TYPE req_seconds histogram\n\
             req_seconds_bucket{{le=\"0.1\",path=\"/a\"}} 3 {t}\n\
             req_seconds_bucket{{le=\"+Inf\",path=\"/a\"}} 5 {t}\n\
             req_seconds_sum{{path=\"/a\"}} 1.25 {t}\nreq_seconds_count{{path=\"/a\"}} 5 {t}\n\
             # TYPE rpc summary\nrpc{{quantile=\"0.5\"}} 0.02 {t}\njob:up:sum{{__meta=\"x\",empty=\"\"}} 1 {t}\n"
        ),
    );
    let om = write_file(
        dir.path(),
        "metrics.om",
        &format!(
            "# TYPE om counter\nom_total{{a=\"x\"}} 17 {}.250 # {{trace_id=\"k\"}} 0.5\nom_total{{a=\"y\"}} 3\n# EOF\nom_total{{a=\"z\"}} 9 {}\n",
            t / 1000,
            t / 1000
        ),
    );
    let vm_line = format!(
        "{{\"metric\":{{\"__name__\":\"from_vm\",\"job\":\"j\"}},\"values\":[1,2,3],\"timestamps\":[{t},{},{}]}}\n",
        t + 1000,
        t + 2000
    );
    let vm = write_file(dir.path(), "export.jsonl", &vm_line);

    // Gzipped batches here (to a loopback server `--compress auto`, the default, sends them plain:
    // the OpenMetrics import below does).
    let run = luminate(
        &server,
        &[
            "import",
            "--compress",
            "gzip",
            &jsonl,
            csv_path.to_str().unwrap(),
            &prom,
            &vm,
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert!(
        run.stdout.starts_with(
            "points read 13, sent 13, accepted 13, rejected 0, failed 0, bad input lines 0\n"
        ),
        "{}",
        run.stdout
    );
    // OpenMetrics (seconds) with --timestamp for the sample without one; nothing after `# EOF`.
    let run = luminate(
        &server,
        &["import", &om, "--timestamp", &(t + 5000).to_string()],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // VictoriaMetrics lines from gzipped stdin.
    let run = luminate(
        &server,
        &["import", "--format", "vm", "-"],
        Some(&gzip(&vm_line.replace("from_vm", "from_vm_stdin"))),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    assert_eq!(
        stored(&server, "from_jsonl"),
        vec![(t, 1.0, json!({"k": "a"})), (t + 1000, 2.5, json!({}))]
    );
    assert_eq!(
        stored(&server, "from_csv"),
        vec![
            (t, 0.5, json!({"dc": "eu", "host": "a,1"})),
            (t + 1000, 7.0, json!({"host": "b"}))
        ]
    );
    assert_eq!(
        stored(&server, "req_seconds_bucket"),
        vec![
            (t, 5.0, json!({"le": "+Inf", "path": "/a"})),
            (t, 3.0, json!({"le": "0.1", "path": "/a"}))
        ]
    );
    assert_eq!(
        stored(&server, "req_seconds_sum"),
        vec![(t, 1.25, json!({"path": "/a"}))]
    );
    assert_eq!(
        stored(&server, "req_seconds_count"),
        vec![(t, 5.0, json!({"path": "/a"}))]
    );
    assert_eq!(
        stored(&server, "rpc"),
        vec![(t, 0.02, json!({"quantile": "0.5"}))]
    );
    assert_eq!(stored(&server, "job_up_sum"), vec![(t, 1.0, json!({}))]);
    assert_eq!(
        stored(&server, "om_total"),
        vec![
            (t / 1000 * 1000 + 250, 17.0, json!({"a": "x"})),
            (t + 5000, 3.0, json!({"a": "y"}))
        ]
    );
    for metric in ["from_vm", "from_vm_stdin"] {
        assert_eq!(
            stored(&server, metric),
            vec![
                (t, 1.0, json!({"job": "j"})),
                (t + 1000, 2.0, json!({"job": "j"})),
                (t + 2000, 3.0, json!({"job": "j"}))
            ]
        );
    }
}

/// `count` points of `metric`, one per line, values 0..count, as Luminate JSON lines.
fn numbered_points(metric: &str, count: usize) -> String {
    let t = base_ms();
    (0..count)
        .map(|i| {
            format!(
                "{{\"name\":\"{metric}\",\"timestamp\":{},\"value\":{i},\"dimensions\":{{\"shard\":\"s{}\"}}}}\n",
                t + i as i64,
                i % 4
            )
        })
        .collect()
}

#[test]
fn an_import_killed_half_way_and_run_again_stores_every_point_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let input = numbered_points("resumed", 1000);
    let lines: Vec<&str> = input.split_inclusive('\n').collect();
    let expected = (1000, (0..1000).sum::<usize>() as f64);
    // First run: stdin gets 450 lines and stays open, so four batches of 100 are sent and the import
    // waits for more; it is killed there.
    let mut first = command(
        &server,
        &["import", "--format", "jsonl", "--batch-size", "100", "-"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(lines[..450].concat().as_bytes()).unwrap();
    stdin.flush().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || count_and_sum(
            &server, "resumed"
        )
        .0 == 400),
        "four batches stored"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    drop(stdin);
    assert_eq!(count_and_sum(&server, "resumed").0, 400);

    // The rerun with the whole input: the first four batches are answered from the server's
    // idempotency keys, the rest stored once.
    let rerun = luminate(
        &server,
        &["import", "--format", "jsonl", "--batch-size", "100", "-"],
        Some(input.as_bytes()),
    );
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert!(
        rerun.stdout.contains(
            "points read 1000, sent 1000, accepted 1000, rejected 0, failed 0, bad input lines 0\nrequests retried 0, replayed by the server 4, "
        ),
        "{}",
        rerun.stdout
    );
    assert_eq!(count_and_sum(&server, "resumed"), expected);

    // A file imported twice: the second run is all replays.
    let file = write_file(dir.path(), "again.jsonl", &numbered_points("again", 250));
    let args = ["import", file.as_str(), "--batch-size", "100"];
    assert_eq!(luminate(&server, &args, None).code, 0);
    let second = luminate(&server, &args, None);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stdout.contains("replayed by the server 3,"),
        "{}",
        second.stdout
    );
    assert_eq!(
        count_and_sum(&server, "again"),
        (250, (0..250).sum::<usize>() as f64)
    );
}

#[test]
fn rate_limited_batches_are_retried_after_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE__RATE_LIMITS__WRITE_REQUESTS_PER_SECOND", "1")
        .start();
    let file = write_file(
        dir.path(),
        "limited.jsonl",
        &numbered_points("limited", 300),
    );
    let run = luminate(
        &server,
        &["import", &file, "--batch-size", "100", "--connections", "1"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{file}:101: retrying a batch of 100 points: 429 RATE_LIMIT_EXCEEDED"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("requests retried 0"), "{}", run.stdout);
    assert_eq!(
        count_and_sum(&server, "limited"),
        (300, (0..300).sum::<usize>() as f64)
    );
}

#[test]
fn a_batch_over_the_body_limit_is_split_until_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE__BATCH_WRITE__MAX_REQUEST_SIZE_BYTES", "3000")
        .start();
    // About 85 bytes a point: 100 points are 8.5 KB, 50 are over 3 000 bytes, 25 fit.
    let file = write_file(dir.path(), "big.jsonl", &numbered_points("split", 200));
    let run = luminate(&server, &["import", &file, "--batch-size", "100"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("batches halved 6\n"),
        "two batches, each halved into two and those again: {}",
        run.stdout
    );
    assert_eq!(
        count_and_sum(&server, "split"),
        (200, (0..200).sum::<usize>() as f64)
    );
}

#[test]
fn bad_input_and_rejected_points_are_reported_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let t = base_ms();
    let too_old = t - 8 * 86_400_000;
    let prom = write_file(
        dir.path(),
        "mixed.prom",
        &format!(
            "# TYPE m gauge\nm{{a=\"1\"}} 1 {t}\nm{{a=\"2\" 2 {t}\nm 3\nm{{a=\"4\"}} 4 {too_old}\nm{{a=\"5\"}} 5 {t}\n"
        ),
    );
    let run = luminate(&server, &["import", &prom], None);
    assert_eq!(run.code, 1);
    let stderr: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(stderr.len(), 3, "{}", run.stderr);
    assert_eq!(
        stderr[0],
        format!("{prom}:3: expected ',' or '}}' after the value of label \"a\"")
    );
    assert_eq!(
        stderr[1],
        format!("{prom}:4: the sample has no timestamp; give --timestamp for samples without one")
    );
    assert!(
        stderr[2].starts_with(&format!("{prom}:5: m INVALID_TIMESTAMP: ")),
        "{}",
        stderr[2]
    );
    assert!(
        run.stdout.starts_with(
            "points read 3, sent 3, accepted 2, rejected 1 (INVALID_TIMESTAMP 1), failed 0, bad input lines 2\n"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(count_and_sum(&server, "m"), (2, 6.0));

    // A JSON point the server refuses with its whole batch (a field twice): the server names its line
    // of the JSON-lines body, the batch is split around it (once), the point reported by its line;
    // the other points are stored.
    let mut lines: Vec<String> = numbered_points("j", 8).lines().map(String::from).collect();
    lines[5] = format!("{{\"name\":\"j\",\"name\":\"k\",\"timestamp\":{t},\"value\":100}}");
    let jsonl = write_file(dir.path(), "twice.jsonl", &(lines.join("\n") + "\n"));
    let run = luminate(&server, &["import", &jsonl], None);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with(&format!("{jsonl}:6: 400 INVALID_REQUEST: ")),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(
            "points read 8, sent 8, accepted 7, rejected 1 (INVALID_REQUEST 1), failed 0, bad input lines 0\n"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("batches halved 1\n"), "{}", run.stdout);
    assert_eq!(
        count_and_sum(&server, "j"),
        (7, (0..8).sum::<usize>() as f64 - 5.0)
    );

    // Lines that are not JSON, whatever their braces: one that does not close, one whose braces close
    // around something that is not JSON. The server reads each line of a JSON-lines body on its own,
    // so neither joins the next; it refuses the batch naming the line, which is split around it (twice
    // here, once per line). Both are bad input lines, in the words of a JSON parser, and the other
    // points are stored.
    let mut lines: Vec<String> = numbered_points("b", 8).lines().map(String::from).collect();
    lines[2] = format!("{{\"name\":\"b\",\"timestamp\":{t},\"value\":");
    lines[6] = format!("{{\"name\":\"b\",\"timestamp\":{t},\"value\":}}");
    let jsonl = write_file(dir.path(), "broken.jsonl", &(lines.join("\n") + "\n"));
    let run = luminate(&server, &["import", &jsonl], None);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "{jsonl}:3: not JSON: EOF while parsing a value at line 1 column {}\n\
             {jsonl}:7: not JSON: expected value at line 1 column 47\n",
            lines[2].len()
        )
    );
    assert!(
        run.stdout.starts_with(
            "points read 6, sent 6, accepted 6, rejected 0, failed 0, bad input lines 2\n"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("batches halved 2\n"), "{}", run.stdout);
    assert_eq!(
        count_and_sum(&server, "b"),
        (6, (0..8).sum::<usize>() as f64 - 2.0 - 6.0)
    );

    // A NaN (a summary without observations): a bad line, or skipped and counted on request.
    let nan = write_file(
        dir.path(),
        "nan.prom",
        &format!("rpc{{quantile=\"0.5\"}} NaN {t}\nrpc_count 0 {t}\n"),
    );
    let run = luminate(&server, &["import", &nan], None);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!("{nan}:1: value NaN is not finite: Luminate stores finite values only\n")
    );
    let run = luminate(&server, &["import", &nan, "--skip-non-finite"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(
            "points read 1, sent 1, accepted 1, rejected 0, failed 0, bad input lines 0, skipped non-finite 1\n"
        ),
        "{}",
        run.stdout
    );

    let unknown = luminate(&server, &["import", "notes.xyz"], None);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("give --format"),
        "{}",
        unknown.stderr
    );
    let bad_write = luminate(&server, &["write", "cpu{host=\"a\"} x"], None);
    assert_eq!(bad_write.code, 1);
    assert_eq!(
        bad_write.stderr,
        "argument:1: value \"x\" is not a number\n"
    );
}

#[test]
fn a_refused_token_stops_the_import_and_a_valid_one_writes_to_its_tenant() {
    const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_AUTH_ENABLED", "true")
        .env("LUMINATE_AUTH_JWT_SECRET", SECRET)
        .without_rate_limits()
        .start();
    let file = write_file(dir.path(), "auth.jsonl", &numbered_points("authed", 10));
    let refused = luminate(&server, &["import", &file], None);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("401 UNAUTHORIZED"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.contains("failed 10"), "{}", refused.stdout);

    let token = Command::new(env!("CARGO_BIN_EXE_luminate"))
        .args(["token", "--tenant", "acme", "--scopes", "read,write"])
        .env("LUMINATE_AUTH_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap();
    let mut cmd = command(&server, &["import", &file]);
    let ok = cmd.env("LUMINATE_TOKEN", token.trim()).output().unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut cmd = command(
        &server,
        &[
            "query",
            "--metric",
            "authed",
            "--agg",
            "count",
            "--range",
            "1h",
            "--output",
            "csv",
            "--token",
            token.trim(),
        ],
    );
    let counted = cmd.output().unwrap();
    assert_eq!(
        String::from_utf8(counted.stdout).unwrap(),
        "value,count\n10.0,10\n"
    );
}

/// `--backfill` writes points older than the 7-day window, back to each metric's retention (30 days
/// by default), through the server's `?backfill=true`; without it those points are reported.
#[test]
fn backfill_imports_points_past_the_write_window_back_to_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).without_rate_limits().start();
    let day = 86_400_000;
    let (twenty, forty) = (base_ms() - 20 * day, base_ms() - 40 * day);
    let file = write_file(
        dir.path(),
        "old.jsonl",
        &format!(
            "{{\"name\":\"old\",\"timestamp\":{twenty},\"value\":2,\"dimensions\":{{}}}}\n\
             {{\"name\":\"old\",\"timestamp\":{forty},\"value\":4,\"dimensions\":{{}}}}\n"
        ),
    );
    let plain = luminate(&server, &["import", &file], None);
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    assert_eq!(
        plain.stderr.matches("INVALID_TIMESTAMP").count(),
        2,
        "{}",
        plain.stderr
    );
    // The same file again, now as a backfill: its batches' keys differ from the plain run's, so the
    // server stores them instead of replaying the refusals it remembers.
    let backfill = luminate(&server, &["import", "--backfill", &file], None);
    assert_eq!(backfill.code, 1, "{}", backfill.stderr);
    assert!(
        backfill.stderr.contains(&format!(
            "old.jsonl:2: old INVALID_TIMESTAMP: timestamp {forty} is older than the retention of metric \"old\" (2592000s"
        )),
        "{}",
        backfill.stderr
    );
    assert_eq!(backfill.stderr.matches("INVALID_TIMESTAMP").count(), 1);
    let answer = server.query(&json!({
        "queryType": "range", "metricName": "old",
        "timeRange": {"start": twenty - day, "end": twenty + day}}));
    let points: Vec<(i64, f64)> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_i64().unwrap(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(points, vec![(twenty, 2.0)]);
}

/// On a terminal (a pseudo-terminal from util-linux's `script`) the import draws its progress with
/// points/s on stderr; piped, it prints nothing but problems (every other test pipes it: their
/// stderr is empty or only problems).
#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    // One write request a second: three batches take two seconds, several ticks of the bar.
    let server = Launch::new(dir.path())
        .env("LUMINATE__RATE_LIMITS__WRITE_REQUESTS_PER_SECOND", "1")
        .start();
    let file = write_file(
        dir.path(),
        "progress.jsonl",
        &numbered_points("progress", 300),
    );
    let import = format!(
        "{} import --url {} --batch-size 100 --connections 1 {file}",
        env!("CARGO_BIN_EXE_luminate"),
        server.base
    );
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &import, "/dev/null"]);
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{terminal}");
    assert!(terminal.contains(" points sent ("), "{terminal}");
    assert!(terminal.contains("/s, "), "{terminal}");
    assert_eq!(count_and_sum(&server, "progress").0, 300);
}

/// A real Prometheus TSDB (built by Debian's promtool from OpenMetrics), dumped with `promtool tsdb
/// dump` (series spelled `{__name__="…", …} value ms`), imports with every sample: counts and sums equal.
#[test]
fn a_promtool_tsdb_dump_imports_with_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let t = base_ms() / 1000;
    let mut om = "# TYPE req counter\n".to_owned();
    for i in 0..10 {
        om.push_str(&format!(
            "req_total{{path=\"/a\",code=\"200\"}} {i} {}\n",
            t + i * 15
        ));
    }
    om.push_str("# TYPE lat histogram\n");
    for i in 0..3 {
        let ts = t + i * 15;
        om.push_str(&format!(
            "lat_bucket{{le=\"0.1\"}} {i} {ts}\nlat_bucket{{le=\"+Inf\"}} {} {ts}\nlat_sum {i}.5 {ts}\nlat_count {} {ts}\n",
            i * 2,
            i * 2
        ));
    }
    om.push_str("# EOF\n");
    let input = write_file(dir.path(), "in.om", &om);
    let tsdb = dir.path().join("tsdb");
    let created = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics", &input])
        .arg(&tsdb)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    // `tsdb dump` reads the WAL too, and wants the directory even when blocks hold everything.
    std::fs::create_dir_all(tsdb.join("wal")).unwrap();
    let dumped = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(&tsdb)
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{dumped:?}");
    let dump = write_file(
        dir.path(),
        "dump.prom",
        &String::from_utf8(dumped.stdout).unwrap(),
    );

    let run = luminate(&server, &["import", &dump], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("points read 22, sent 22, accepted 22, rejected 0"),
        "{}",
        run.stdout
    );
    assert_eq!(count_and_sum(&server, "req_total"), (10, 45.0));
    assert_eq!(count_and_sum(&server, "lat_bucket"), (6, 9.0));
    assert_eq!(count_and_sum(&server, "lat_sum"), (3, 4.5));
    assert_eq!(count_and_sum(&server, "lat_count"), (3, 6.0));
    assert_eq!(
        stored(&server, "req_total")[0],
        (t * 1000, 0.0, json!({"code": "200", "path": "/a"}))
    );
}
