//! Crash durability with flushes to parts: a tiny head makes the server flush many times a second
//! (head frozen, parts and manifest written, WAL segments deleted) while concurrent writers ingest;
//! `kill -9` lands anywhere in that cycle, compactions included (every few flushes a partition reaches
//! `compaction_min_parts` and is merged in the background). After each restart every acknowledged batch is there exactly
//! once: a write is one WAL record, so a batch is stored whole or not at all, and only the batch a
//! writer had in flight at the kill may be there unacknowledged. A point replayed from the WAL *and*
//! read from a part would show as a count above what was sent.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Launch, counts_by_round_and_writer, write_until_killed};

const WRITERS: usize = 4;
const BATCH: u64 = 25;
/// Kill-and-restart rounds: a few in CI; `scripts/soak.sh` raises it through `SOAK_ROUNDS`.
fn rounds() -> usize {
    std::env::var("SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

#[test]
fn acknowledged_points_are_stored_exactly_once_after_kill_9_during_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch::new(dir.path())
        .env("LUMINATE__STORAGE__EMBEDDED__HEAD_MAX_POINTS", "500")
        .env("LUMINATE__STORAGE__EMBEDDED__SYNC", "none");
    // (round, writer) → (points acknowledged, points sent)
    let mut expected: HashMap<(String, String), (u64, u64)> = HashMap::new();
    for round in 0..rounds() {
        let server = launch.start();
        let results = write_until_killed(
            &server,
            "flushed",
            round,
            WRITERS,
            BATCH,
            Duration::from_millis(700),
        );
        server.kill9();
        for (writer, acked, sent) in results {
            assert!(
                acked > 1_000,
                "round {round}: {writer} had only {acked} points acknowledged"
            );
            expected.insert((format!("r{round}"), writer), (acked, sent));
        }

        let restarted = launch.start();
        let parts = std::fs::read_dir(dir.path().join("parts")).unwrap().count();
        assert!(parts > 0, "round {round}: no part was flushed");
        let counts = counts_by_round_and_writer(&restarted, "flushed");
        for (key, (acked, sent)) in &expected {
            let stored = counts.get(key).copied().unwrap_or(0);
            // At most one batch per writer was in flight at the kill: stored whole or not at all.
            assert!(
                stored == *acked || (stored == acked + BATCH && acked + BATCH <= *sent),
                "{key:?}: {acked} acknowledged, {sent} sent, {stored} stored after kill -9 and restart"
            );
        }
        restarted.kill9();
    }
}
