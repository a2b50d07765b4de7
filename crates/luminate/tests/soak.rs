//! `luminate soak`, shortened: the real binary soaks a server it spawns from itself — writers under
//! idempotency keys, readers asking every kind of question, three `kill -9`s — and its report must say
//! that every acknowledged point was stored exactly once (live, after one more kill, after a graceful
//! stop that exited 0), that every kind of question was answered, and that nothing failed while the
//! server was up. `scripts/soak.sh` runs the same for 30 minutes at 200 000 points/s.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_soak_with_kills_stores_every_acknowledged_point_exactly_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_luminate"))
        .args([
            "soak",
            "--duration",
            "24s",
            "--kills",
            "3",
            "--rate",
            "20000",
            "--batch",
            "1000",
            "--customers",
            "200",
            "--sample-every",
            "2s",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(report["problems"]["count"], 0, "{report:#}");
    assert_eq!(report["kills"], 3);
    assert_eq!(report["restart_seconds"].as_array().unwrap().len(), 3);

    let acknowledged = report["acknowledged"]["points"].as_u64().unwrap();
    let value_sum = report["acknowledged"]["value_sum"].as_u64().unwrap();
    // 20 000 points/s for 24 s, downtime included: the writers catch up after each restart.
    assert!(acknowledged >= 20_000 * 24, "{report:#}");
    assert_eq!(acknowledged % 1000, 0, "whole batches only");
    let checks = report["checks"].as_array().unwrap();
    let whens: Vec<&str> = checks.iter().map(|c| c["when"].as_str().unwrap()).collect();
    assert_eq!(
        whens,
        [
            "live",
            "after a final kill -9",
            "after a graceful stop and restart"
        ]
    );
    for check in checks {
        assert_eq!(check["points"].as_u64(), Some(acknowledged), "{check}");
        assert_eq!(
            check["value_sum"].as_f64(),
            Some(value_sum as f64),
            "{check}"
        );
    }
    assert_eq!(report["exact"], true);
    assert_eq!(report["graceful_exit"], 0);

    let queries = report["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 17);
    for kind in queries {
        assert!(kind["ok"].as_u64().unwrap() > 0, "never answered: {kind}");
        assert_eq!(kind["failed"], 0, "{kind}");
    }
    let timeline = report["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 10, "{timeline:?}");
    assert!(
        timeline
            .iter()
            .any(|s| s["rss_bytes"].as_u64().is_some_and(|r| r > 0)
                && s["fds"].as_u64().is_some_and(|f| f > 0))
    );
    assert_eq!(report["passed"], true);
    assert!(output.status.success(), "{stderr}");
}
