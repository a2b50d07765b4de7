#!/usr/bin/env bash
# The soak (docs/operations.md, "Soak"): a release build of the server, spawned by `luminate soak`, takes
# 200 000 points/s of writes under idempotency keys and every kind of question for 30 minutes, and is
# killed with SIGKILL and restarted 100 times meanwhile; then every acknowledged point must be stored
# exactly once (checked live, after one more kill -9, and after a graceful stop that exits 0). Prints
# the report: errors, acknowledged against stored, restarts, latency per question, RSS, fds and disk a
# minute at a time. Exit status 1 when anything was lost or doubled, a question failed while the server
# was up, or the rate was not reached.
#
#   scripts/soak.sh [luminate soak options]     e.g. --duration 2h --kills 40 --rate 300000 --json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_toolchain
build_ui
log "building luminate (release)"
cargo build --release --quiet -p luminate
log "soak: luminate soak $*"
exec "$CARGO_TARGET_DIR/release/luminate" soak "$@"
