//! Damage contained, through the real binary: a page of a flushed part damaged under a running server
//! is set aside in `quarantine/` by the next query that meets it, which answers 200 from the other
//! parts flagged `partial` (and so does every later query over that part's range, across restarts);
//! health is `degraded` naming the file and the self-metric counts it. `luminate check` and `luminate
//! repair` on each kind of damage — a part's page, a part's header, the manifest, the WAL gone, a WAL
//! segment damaged before a complete record, the series log truncated — with their exact output and
//! exit codes, and both refuse a directory a live
//! server holds.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Launch, Luminate, eventually, get_text, now_ms, point};
use serde_json::{Value, json};

const METRIC: &str = "damaged";
/// Points per batch; the head is flushed once it holds this many, so each batch becomes one part.
const BATCH: usize = 10;

fn launch(dir: &Path) -> Launch {
    Launch::new(dir)
        .env(
            "LUMINATE__STORAGE__EMBEDDED__HEAD_MAX_POINTS",
            &BATCH.to_string(),
        )
        .env("LUMINATE__METRICS__INTERVAL", "200ms")
}

/// Noon of yesterday (UTC): every point of the tests lies in one day, so in one partition.
fn base() -> i64 {
    (now_ms() / 86_400_000 - 1) * 86_400_000 + 43_200_000
}

/// The points of batch `b`: series `s = b-i`, one minute per batch, one second apart.
fn batch_points(b: usize) -> Vec<Value> {
    (0..BATCH)
        .map(|i| {
            point(
                METRIC,
                base() + b as i64 * 60_000 + i as i64 * 1000,
                (b * 100 + i) as f64,
                &[("s", &format!("{b}-{i}"))],
            )
        })
        .collect()
}

fn part_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("parts"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes three batches, each flushed into a part of its own (`0000000001.part` to `…3.part`).
fn write_three_parts(server: &Luminate, dir: &Path) {
    for b in 0..3 {
        let (status, body) = server.write(&batch_points(b));
        assert_eq!(status, 200, "{body}");
        let flushed = eventually(Duration::from_secs(20), || part_files(dir).len() == b + 1);
        assert!(flushed, "no flush of batch {b}: {}", server.output());
    }
    assert_eq!(
        part_files(dir),
        ["0000000001.part", "0000000002.part", "0000000003.part"]
    );
}

/// Flips the byte at `offset` of `path`, in place (a running server's open handle sees it).
fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = [0u8];
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    std::io::Read::read_exact(&mut file, &mut bytes).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&[bytes[0] ^ 0xff]).unwrap();
    file.sync_all().unwrap();
}

/// A range query over the whole day of the points.
fn range_query() -> Value {
    json!({
        "queryType": "range", "metricName": METRIC,
        "timeRange": {"start": base() - 3_600_000, "end": base() + 3_600_000},
        "limit": 1000,
    })
}

/// The (timestamp, value) pairs of a range answer.
fn pairs(answer: &Value) -> Vec<(i64, f64)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_i64().unwrap(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// What batches `batches` hold, as a range answer orders them.
fn expected_pairs(batches: &[usize]) -> Vec<(i64, f64)> {
    batches
        .iter()
        .flat_map(|&b| {
            (0..BATCH).map(move |i| {
                (
                    base() + b as i64 * 60_000 + i as i64 * 1000,
                    (b * 100 + i) as f64,
                )
            })
        })
        .collect()
}

/// Runs `luminate <command> <dir>`: exit code, stdout lines, stderr.
fn tool(command: &str, dir: &Path) -> (i32, Vec<String>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_luminate"))
        .args([command, dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        out.status.code().unwrap(),
        stdout.lines().map(str::to_owned).collect(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The part's warning in an answer: exactly one, naming the file, what it held and the damage.
fn assert_partial_for_part_2(answer: &Value, dir: &Path) {
    assert_eq!(answer["partial"], true, "{answer}");
    let warnings = answer["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{answer}");
    let warning = warnings[0].as_str().unwrap();
    let day = luminate_model_time(base());
    let expected_start = format!(
        "part 0000000002.part quarantined (tenant default, metric {METRIC}: 10 rows of 10 series \
         from {day}T12:01:00Z to {day}T12:01:09Z): corruption in {} at offset 8: page 0 timestamps \
         checksum mismatch: stored 0x",
        dir.join("parts").join("0000000002.part").display()
    );
    assert!(
        warning.starts_with(&expected_start),
        "{warning}\nexpected to start with\n{expected_start}"
    );
    assert!(
        warning.ends_with("; its points are missing from this answer"),
        "{warning}"
    );
}

/// `YYYY-MM-DD` of a timestamp (the tests' points are all on one day).
fn luminate_model_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    // Civil from days (Howard Hinnant's algorithm), to spell the day without a date crate.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{m:02}-{d:02}", if m <= 2 { y + 1 } else { y })
}

fn manifest_files(dir: &Path) -> Vec<String> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST")).unwrap()).unwrap();
    manifest["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_damaged_page_is_quarantined_and_every_answer_over_it_says_so_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = launch(dir.path()).start();
    write_three_parts(&server, dir.path());
    let whole = server.query(&range_query());
    assert_eq!(pairs(&whole), expected_pairs(&[0, 1, 2]));
    assert!(
        whole.get("partial").is_none() && whole.get("warnings").is_none(),
        "{whole}"
    );

    // Offset 8: the first byte of page 0's timestamps blob, right after the 8-byte header.
    let damaged = dir.path().join("parts").join("0000000002.part");
    let original = std::fs::read(&damaged).unwrap();
    flip_byte(&damaged, 8);

    let answer = server.query(&range_query());
    assert_eq!(pairs(&answer), expected_pairs(&[0, 2]));
    assert_partial_for_part_2(&answer, dir.path());
    // Moved aside, bytes and all, and out of the manifest.
    let quarantined = dir.path().join("quarantine").join("0000000002.part");
    let mut flipped = original.clone();
    flipped[8] ^= 0xff;
    assert_eq!(std::fs::read(&quarantined).unwrap(), flipped);
    assert!(!damaged.exists());
    assert_eq!(
        part_files(dir.path()),
        ["0000000001.part", "0000000003.part"]
    );
    assert_eq!(
        manifest_files(dir.path()),
        ["0000000001.part", "0000000003.part"]
    );
    let record: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("quarantine").join("0000000002.part.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&record["metric"], &record["rows"], &record["series"]),
        (&json!(METRIC), &json!(10), &json!(10))
    );

    // The same answer again (the part is gone from the scan, the flag stays); a range that does not
    // meet the part and another metric answer whole, without the fields.
    let again = server.query(&range_query());
    assert_eq!(pairs(&again), expected_pairs(&[0, 2]));
    assert_partial_for_part_2(&again, dir.path());
    let before_it = server.query(&json!({
        "queryType": "range", "metricName": METRIC,
        "timeRange": {"start": base(), "end": base() + 60_000}, "limit": 1000,
    }));
    assert_eq!(pairs(&before_it), expected_pairs(&[0]));
    assert!(before_it.get("partial").is_none(), "{before_it}");
    let (status, body) = server.write(&[point("other", base(), 1.0, &[])]);
    assert_eq!(status, 200, "{body}");
    let other = server.query(&json!({
        "queryType": "aggregate", "metricName": "other", "aggregation": "count",
        "timeRange": {"start": base() - 1, "end": base() + 1},
    }));
    assert!(other.get("partial").is_none(), "{other}");

    // Health degraded, naming the file; the gauge counts it.
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["checks"]["parts_intact"]["status"], "warn",
        "{health}"
    );
    let message = health["checks"]["parts_intact"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.starts_with(
            "1 damaged part set aside, 10 points missing from answers: quarantine/0000000002.part ("
        ),
        "{message}"
    );
    let gauge = eventually(Duration::from_secs(10), || {
        let (_, _, text) = get_text(&server.url("/metrics"), &[]);
        text.lines()
            .any(|l| l == "luminate_engine_quarantined_parts 1")
    });
    assert!(gauge, "luminate_engine_quarantined_parts is not 1");

    // The Prometheus API says it as Prometheus does: a `warnings` entry.
    let t = (base() + 30 * 60_000) / 1000;
    let (status, _, text) = get_text(
        &server.url(&format!(
            "/prometheus/api/v1/query?query=sum%28count_over_time%28{METRIC}%5B1h%5D%29%29&time={t}"
        )),
        &[],
    );
    assert_eq!(status, 200, "{text}");
    let prom: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(prom["data"]["result"][0]["value"][1], "20", "{prom}");
    assert!(
        prom["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("part 0000000002.part quarantined ("),
        "{prom}"
    );

    // After a restart the loss is still reported, from quarantine/'s record.
    assert_eq!(server.terminate().code(), Some(0));
    let (code, lines, _) = tool("check", dir.path());
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "note: {}: quarantined (tenant default, metric {METRIC}: 10 rows of 10 series from ",
            quarantined.display()
        )),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "checked: 2 parts verified, 30 series in the series log, 1 WAL records; no problem"
    );
    let server = launch(dir.path()).start();
    let restarted = server.query(&range_query());
    assert_eq!(pairs(&restarted), expected_pairs(&[0, 2]));
    assert_partial_for_part_2(&restarted, dir.path());
    let (_, health) = server.get("/api/v1/health");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(server.terminate().code(), Some(0));

    // Once an operator has dealt with it (here: forgotten it), answers are whole again.
    std::fs::remove_file(dir.path().join("quarantine").join("0000000002.part.json")).unwrap();
    let server = launch(dir.path()).start();
    let forgotten = server.query(&range_query());
    assert_eq!(pairs(&forgotten), expected_pairs(&[0, 2]));
    assert!(forgotten.get("partial").is_none(), "{forgotten}");
    let (_, health) = server.get("/api/v1/health");
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(server.terminate().code(), Some(0));
}

/// A stopped data directory with three parts (one batch each) and one more batch of existing series
/// in the WAL only (`0-0` … `0-9` again, a minute after the parts' points).
fn stopped_directory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let server = launch(dir.path()).start();
    write_three_parts(&server, dir.path());
    let wal_only: Vec<Value> = (0..5)
        .map(|i| {
            point(
                METRIC,
                base() + 3 * 60_000 + i * 1000,
                1000.0 + i as f64,
                &[("s", &format!("0-{i}"))],
            )
        })
        .collect();
    let (status, body) = server.write(&wal_only);
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.terminate().code(), Some(0));
    dir
}

/// Points the server answers for the metric, after a start.
fn answered(dir: &Path) -> (usize, Value) {
    let server = launch(dir).start();
    let answer = server.query(&range_query());
    assert_eq!(server.terminate().code(), Some(0));
    (pairs(&answer).len(), answer)
}

fn path_in(dir: &Path, rel: &str) -> PathBuf {
    dir.join(rel)
}

/// `luminate check` then `luminate repair` then `luminate check` again: the first check's exit code
/// and lines, the repair's, and the last check's lines (which must be clean).
fn check_repair_check(dir: &Path) -> (Vec<String>, Vec<String>) {
    let (code, found, stderr) = tool("check", dir);
    assert_eq!(code, 1, "{found:?} {stderr}");
    let (code, repaired, stderr) = tool("repair", dir);
    assert_eq!(code, 0, "{repaired:?} {stderr}");
    let (code, after, stderr) = tool("check", dir);
    assert_eq!(code, 0, "{after:?} {stderr}");
    assert!(after.last().unwrap().ends_with("; no problem"), "{after:?}");
    (found, repaired)
}

#[test]
fn check_and_repair_a_damaged_page_set_it_aside_and_print_what_was_lost() {
    let dir = stopped_directory();
    let part = path_in(dir.path(), "parts/0000000002.part");
    flip_byte(&part, 8);
    let (found, repaired) = check_repair_check(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(&format!(
            "problem: {} at offset 8: page 0 timestamps checksum mismatch: stored 0x",
            part.display()
        )),
        "{found:?}"
    );
    assert_eq!(
        found[1],
        "checked: 2 parts verified, 30 series in the series log, 1 WAL records; 1 problem"
    );
    let day = luminate_model_time(base());
    let quarantined = path_in(dir.path(), "quarantine/0000000002.part");
    assert!(
        repaired[0].starts_with(&format!(
            "repaired: moved {} to {}: {} at offset 8: page 0 timestamps checksum mismatch",
            part.display(),
            quarantined.display(),
            part.display()
        )),
        "{repaired:?}"
    );
    assert_eq!(
        repaired[1..],
        [
            format!(
                "repaired: wrote {} listing 2 parts",
                dir.path().join("MANIFEST").display()
            ),
            format!(
                "lost: part 0000000002.part: tenant default, metric {METRIC}: 10 rows of 10 series \
                 from {day}T12:01:00Z to {day}T12:01:09Z"
            ),
            "done: 1 part set aside in quarantine (10 points); the data directory passes luminate check"
                .to_owned(),
        ]
    );
    let (points, answer) = answered(dir.path());
    assert_eq!(points, 25, "{answer}");
    assert_eq!(answer["partial"], true, "{answer}");
}

#[test]
fn check_and_repair_a_damaged_part_header() {
    let dir = stopped_directory();
    let part = path_in(dir.path(), "parts/0000000003.part");
    flip_byte(&part, 0);
    let (found, repaired) = check_repair_check(dir.path());
    assert_eq!(
        found,
        [
            format!(
                "problem: {} at offset 0: bad magic [b3, 50, 52, 54], expected [4c, 50, 52, 54]",
                part.display()
            ),
            "checked: 2 parts verified, 30 series in the series log, 1 WAL records; 1 problem"
                .to_owned(),
        ]
    );
    // The section did not read: the series are unknown, the rows and range come from the manifest.
    let day = luminate_model_time(base());
    assert!(
        repaired.contains(&format!(
            "lost: part 0000000003.part: tenant default, metric {METRIC}: 10 rows from \
             {day}T12:02:00Z to {day}T12:02:09Z"
        )),
        "{repaired:?}"
    );
    let (points, _) = answered(dir.path());
    assert_eq!(points, 25);
}

#[test]
fn check_and_repair_a_damaged_manifest_rebuild_it_from_the_parts() {
    let dir = stopped_directory();
    let manifest = path_in(dir.path(), "MANIFEST");
    std::fs::write(&manifest, b"{\"version\": 1, \"wal_start\"").unwrap();
    // The server refuses it as it did before the tools existed.
    let (status, output) = launch(dir.path()).run_to_exit();
    assert_ne!(status.code(), Some(0), "{output}");
    let (found, repaired) = check_repair_check(dir.path());
    assert_eq!(
        found,
        [
            format!(
                "problem: {} at offset 26: manifest is not valid JSON of version 1: EOF while \
                 parsing an object at line 1 column 26",
                manifest.display()
            ),
            "checked: 3 parts verified, 30 series in the series log, 1 WAL records; 1 problem"
                .to_owned(),
        ]
    );
    assert!(
        repaired[0].starts_with("repaired: kept the unusable "),
        "{repaired:?}"
    );
    assert!(
        repaired
            .iter()
            .any(|l| l
                .contains("writing a new one from the 3 part files, WAL replay from segment 4")),
        "{repaired:?}"
    );
    assert!(
        repaired
            .iter()
            .any(|l| l.starts_with("lost: the parts' tombstones")),
        "{repaired:?}"
    );
    let (points, answer) = answered(dir.path());
    assert_eq!(points, 35, "{answer}");
    assert!(answer.get("partial").is_none(), "{answer}");
}

#[test]
fn a_deleted_wal_refuses_to_start_until_repair_records_the_loss() {
    let dir = stopped_directory();
    let wal = path_in(dir.path(), "wal");
    std::fs::remove_dir_all(&wal).unwrap();
    let segment = wal.join("00000004.wal");
    let (status, output) = launch(dir.path()).run_to_exit();
    assert_ne!(status.code(), Some(0), "{output}");
    assert!(
        output.contains(&format!("{} is missing", segment.display())),
        "{output}"
    );
    let (found, repaired) = check_repair_check(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(&format!(
            "problem: {}: missing: the manifest starts WAL replay at this segment",
            segment.display()
        )),
        "{found:?}"
    );
    assert_eq!(
        repaired,
        [
            format!(
                "repaired: created an empty WAL segment {}",
                segment.display()
            ),
            format!(
                "lost: WAL segment {} and what followed it: the points written after the last \
                 flush, up to the loss (how many is not known: they were only there)",
                segment.display()
            ),
            "done: the data directory passes luminate check".to_owned(),
        ]
    );
    // The five points only the WAL held are gone; the parts' thirty are served.
    let (points, _) = answered(dir.path());
    assert_eq!(points, 30);
}

/// Offsets of the records of a log segment (after its 8-byte header).
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut at = 8;
    let mut out = Vec::new();
    while at + 8 <= bytes.len() {
        out.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    out
}

#[test]
fn check_and_repair_a_truncated_series_log_set_aside_the_parts_it_no_longer_defines() {
    let dir = stopped_directory();
    let log = path_in(dir.path(), "series/00000001.wal");
    let bytes = std::fs::read(&log).unwrap();
    let records = record_offsets(&bytes);
    assert_eq!(records.len(), 3, "one series batch per flush");
    // Cut inside the third flush's record: a torn tail, and part 3's series undefined.
    let cut = records[2] + 5;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    let part = path_in(dir.path(), "parts/0000000003.part");
    let (found, repaired) = check_repair_check(dir.path());
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        found[0],
        format!(
            "problem: {}: holds series up to id 29; the series log defines 20 series of tenant default",
            part.display()
        )
    );
    assert!(
        found[1].starts_with(&format!(
            "note: {} at offset {}: torn tail of 5 bytes",
            log.display(),
            records[2]
        )),
        "{found:?}"
    );
    let day = luminate_model_time(base());
    assert!(
        repaired.contains(&format!(
            "lost: part 0000000003.part: tenant default, metric {METRIC}: 10 rows of 10 series \
             from {day}T12:02:00Z to {day}T12:02:09Z"
        )),
        "{repaired:?}"
    );
    let (points, _) = answered(dir.path());
    assert_eq!(points, 25);
}

#[test]
fn check_and_repair_refuse_a_directory_a_running_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let server = launch(dir.path()).start();
    for command in ["check", "repair"] {
        let (code, out, stderr) = tool(command, dir.path());
        assert_eq!(code, 2, "{out:?}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "luminate {command}: refused: {} is held by a running server (stop it first: \
                 {command} works on a directory no engine has open)",
                dir.path().join("LOCK").display()
            )
        );
    }
    assert_eq!(server.terminate().code(), Some(0));
    let (code, out, _) = tool("check", dir.path());
    assert_eq!(code, 0, "{out:?}");
    let (code, out, _) = tool("repair", dir.path());
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        out,
        ["nothing to repair: the data directory passes luminate check"]
    );
}

#[test]
fn check_and_repair_a_damaged_wal_segment_cut_it_at_the_damage() {
    let dir = stopped_directory();
    // A second WAL-only write, so that a complete record follows the damaged one: not a torn tail.
    let server = launch(dir.path()).start();
    let (status, body) = server.write(&[point(METRIC, base() + 4 * 60_000, 7.0, &[("s", "0-0")])]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.terminate().code(), Some(0));
    let segment = path_in(dir.path(), "wal/00000004.wal");
    let bytes = std::fs::read(&segment).unwrap();
    let records = record_offsets(&bytes);
    assert!(records.len() >= 2, "{records:?}");
    // A byte of the first record's payload.
    flip_byte(&segment, records[0] as u64 + 12);
    let (status, output) = launch(dir.path()).run_to_exit();
    assert_ne!(status.code(), Some(0), "{output}");

    let (found, repaired) = check_repair_check(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(&format!("problem: {} at offset 8: ", segment.display())),
        "{found:?}"
    );
    let kept = dir.path().join("quarantine").join("wal");
    assert!(
        repaired[0].starts_with(&format!(
            "repaired: cut {} at offset 8 (its damaged bytes kept in {}/00000004.wal.",
            segment.display(),
            kept.display()
        )),
        "{repaired:?}"
    );
    assert_eq!(
        repaired[1..],
        [
            format!(
                "lost: {} from offset 8: {} bytes",
                segment.display(),
                bytes.len() - 8
            ),
            "done: the data directory passes luminate check".to_owned(),
        ]
    );
    // Both WAL-only writes are gone (the damaged record and the one after it); the parts are served.
    let (points, _) = answered(dir.path());
    assert_eq!(points, 30);
    assert_eq!(
        std::fs::read_dir(&kept).unwrap().count(),
        1,
        "the segment's bytes are kept"
    );
}
