#!/usr/bin/env bash
# The web UI's speed over the benchmark dataset, measured in Chromium (not a test: run it by hand).
# Builds the UI and the release binary, starts the server over a kept data directory and, the first
# time only, loads `luminate bench`'s dataset into it (10 M api_latency + 1.44 M requests_total points
# over one past hour, checked against the reference); later runs reuse that directory. Then
# bench/ui.mjs imports a 12-panel dashboard over that hour and opens it in headless Chromium several
# times, reading the UI's own performance measures: navigation → every panel drawn, each panel's query
# (client and server time) and drawing, a 50 series × 300 bucket chart and a 10 000-point range chart.
#
#   bench/ui.sh                      # full size; the first run loads for several minutes
#   bench/ui.sh --points 1000000     # smaller dataset (its own data directory)
#   bench/ui.sh --runs 10 --fresh    # more page loads; reload the data first
#   bench/ui.sh --cold 5             # five more browsers launched for one load each (cold loads)
#
# Options: --points N (default 10000000)  --runs N (page loads, default 5)  --fresh (drop the kept data)
#          --cold N (more fresh browsers, one cold load each; default 0: the first load is the one cold load)
#          --dir DIR (where the data is kept; default $CARGO_TARGET_DIR/ui-bench)
#          --luminate PATH (a built binary; default: cargo build --release -p luminate)  --json
#          UI_BENCH_MEMORY_BUDGET=bytes: the server's query_limits.memory_budget_bytes (default: the
#          server's own default, 1 GiB)
# The server started here is stopped on exit (trap EXIT), whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
source bench/lib/common.sh

POINTS=10000000 RUNS=5 COLD=0 FRESH=0 DIR="" LUMINATE="" JSON=""
while [ $# -gt 0 ]; do
  case "$1" in
    --points) POINTS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --cold) COLD=$2; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    --dir) DIR=$2; shift 2 ;;
    --luminate) LUMINATE=$2; shift 2 ;;
    --json) JSON=--json; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
DIR=${DIR:-$CARGO_TARGET_DIR/ui-bench}/$POINTS
[ -x /usr/bin/chromium ] || ensure_apt_packages chromium
build_ui
ensure_luminate

# A directory whose load did not finish (no hour_start) is started over.
if [ "$FRESH" = 1 ] || [ ! -f "$DIR/hour_start" ]; then rm -rf "$DIR"; fi
mkdir -p "$DIR"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
# The dataset has ~2 M series, past the default max_unique_series_per_metric (as `luminate bench` sets
# for the server it spawns); without auth no rate limit applies. The query memory budget is the
# server's default (1 GiB), under which the 12 panels' queries all run at once.
LUMINATE__CARDINALITY_LIMITS__MAX_UNIQUE_SERIES_PER_METRIC=100000000 LUMINATE__LOGGING__LEVEL=warn \
LUMINATE__QUERY_LIMITS__MEMORY_BUDGET_BYTES=${UI_BENCH_MEMORY_BUDGET:-1073741824} \
  "$LUMINATE" serve --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" > "$DIR/server.log" 2>&1 &
SERVER_PID=$!
trap 'stop_pid "$SERVER_PID"' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 600); do
  curl -sf -o /dev/null "$URL/api/v1/health" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited; its log:" >&2; cat "$DIR/server.log" >&2; exit 1; }
  sleep 0.1
done

if [ ! -f "$DIR/hour_start" ]; then
  # A whole past hour, minute-aligned; kept with the data so later runs query the same hour.
  HOUR_START=$(( ($(date +%s) / 60 * 60 - 7200) * 1000 ))
  COUNTER_POINTS=1440000
  [ "$POINTS" -lt 10000000 ] && COUNTER_POINTS=$(( POINTS * 144 / 1000 ))
  log "loading the benchmark dataset ($POINTS points) into $DIR/data"
  "$LUMINATE" bench --url "$URL" --points "$POINTS" --counter-points "$COUNTER_POINTS" \
    --hour-start "$HOUR_START" --queries-repeat 1 > "$DIR/load-report.txt"
  echo "$HOUR_START" > "$DIR/hour_start"
fi

node bench/ui.mjs "$URL" "$(cat "$DIR/hour_start")" "$RUNS" --cold "$COLD" $JSON
