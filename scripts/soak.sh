#!/usr/bin/env bash
# Crash soak: the kill -9 durability tests with many more rounds than CI runs (default 50 per test).
# Each round kills the real server during ingest, flushes and compactions, restarts it and checks that
# every acknowledged point is there exactly once.   Usage: scripts/soak.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
export SOAK_ROUNDS="${1:-50}"
log "crash soak: $SOAK_ROUNDS rounds"
cargo test --release -p luminate --test crash_flush -- --nocapture
