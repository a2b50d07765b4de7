#!/usr/bin/env bash
# Runs Luminate's end-to-end benchmark dataset and query set against its peers, one system after the
# other, and prints side-by-side tables with ratios:
# - DuckDB and chDB (ClickHouse in-process), the PyPI packages, driven in-process from Python by
#   bench/inprocess.py: the dataset's TSV files loaded into a table, settled on disk, the query set in SQL;
# - VictoriaMetrics and ClickHouse, the Debian packages, started here as child processes on loopback ports
#   with their data in a temporary directory. Remote write is measured too: Luminate and a fresh
#   VictoriaMetrics each load the same dataset through Prometheus remote write 1.0 at /api/v1/write, sent
#   by the same sender (`luminate bench --protocol remote-write`, 2 connections). Last, the PromQL set
#   (peers.py promql_queries) runs against Luminate's /prometheus API and VictoriaMetrics' own.
# Luminate (`luminate bench`) checks its answers against the exact reference; DuckDB's and chDB's are
# checked against the same reference and Luminate's, ClickHouse's against Luminate's; VictoriaMetrics' are
# compared where MetricsQL can express the same query and marked approximate where it cannot.
#
#   bench/peers.sh                                      # every system, full dataset: 10 M points, ~2 M series
#   bench/peers.sh --systems luminate,duckdb,chdb       # issue 16's table: Luminate against DuckDB and chDB
#   bench/peers.sh --points 200000                      # a small smoke run (a minute or two)
#   bench/peers.sh --promql-only                        # only the PromQL comparison (Luminate, VictoriaMetrics)
#   bench/peers.sh --systems luminate,clickhouse,luminate-clickhouse   # issue 18: Luminate on ClickHouse
#                                                       # against the same clickhouse-server queried directly
# Options: --points N  --customers N  --counter-points N  --repeat N  --seed N  --keep (keep the work dir)
#          --luminate PATH (a built binary; default: cargo build --release -p luminate)  --promql-only
#          --systems LIST  comma-separated among luminate, duckdb, chdb, victoriametrics, clickhouse,
#                          luminate-clickhouse (Luminate's ClickHouse backend over the clickhouse peer's
#                          server, which it implies) (default: all; Luminate always runs, every ratio is
#                          against it, and luminate-clickhouse's also against ClickHouse queried directly)
#          --report FILE   also write the whole report (every figure, answer and ratio) as JSON to FILE;
#                          it is always written to the work directory as report.json
# The systems run one after the other, never at the same time, so each has the machine to itself.
# Every server started here is stopped on exit (trap EXIT), whatever happens.
# Exit status: 0 when every answer that must be exact is, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
source bench/lib/common.sh

# --promql-only, --systems and --report are this script's own; the others are shared with bench/backends.sh.
ALL_SYSTEMS=luminate,duckdb,chdb,victoriametrics,clickhouse,luminate-clickhouse
PROMQL_ONLY=0 SYSTEMS=$ALL_SYSTEMS REPORT="" ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --promql-only) PROMQL_ONLY=1; shift ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --report) REPORT=$2; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
parse_bench_options ${ARGS[@]+"${ARGS[@]}"}
for system in ${SYSTEMS//,/ }; do
  [[ ",$ALL_SYSTEMS," == *",$system,"* ]] || { echo "unknown system $system (known: $ALL_SYSTEMS)" >&2; exit 2; }
done
[ "$PROMQL_ONLY" = 0 ] || SYSTEMS=luminate,victoriametrics
# Luminate on ClickHouse is measured against the clickhouse peer's server, in the same run.
[[ ",$SYSTEMS," != *",luminate-clickhouse,"* ]] || SYSTEMS=$SYSTEMS,clickhouse
selected() { [[ ",$SYSTEMS," == *",$1,"* ]]; }
[ -z "$REPORT" ] || REPORT=$(realpath -m "$REPORT")

apt_needed=(curl)
selected victoriametrics && apt_needed+=(victoria-metrics)
selected clickhouse && apt_needed+=(clickhouse-server)
ensure_apt_packages "${apt_needed[@]}"
command -v python3 >/dev/null || ensure_apt_packages python3
# The in-process peers: the newest PyPI releases into the test tools' environment (its python3 comes
# first on PATH from here on); the report records the versions that ran.
if selected duckdb || selected chdb; then ensure_pip_packages duckdb chdb; fi

ensure_luminate

WORK=$(mktemp -d "${TMPDIR:-/tmp}/luminate-peers.XXXXXX")
SERVER_PID=""
stop_server() { stop_pid "$SERVER_PID"; SERVER_PID=""; }
cleanup() {
  stop_server
  if [ "$KEEP" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

peak_rss() { awk '/^VmHWM:/ { printf "%d\n", $2 * 1024 }' "/proc/$1/status"; }
now() { date +%s.%N; }
wait_http() { # URL: up to 60 s for a server to answer
  for _ in $(seq 600); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited; its log:" >&2; cat "$WORK"/*.log >&2; exit 1; }
    sleep 0.1
  done
  echo "no answer from $1" >&2; exit 1
}
# ingest_figures SECONDS DIR PID → the JSON of one system's ingest, disk and memory figures
ingest_figures() {
  local total=$(( POINTS + COUNTER_POINTS )) bytes
  bytes=$(du -sb "$2" | cut -f1)
  python3 -c "import json, sys; s, b, rss, n = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]);
print(json.dumps({'seconds': s, 'points_per_second': n / s, 'disk_bytes': b, 'bytes_per_point': b / n, 'peak_rss_bytes': rss}))" \
    "$1" "$bytes" "$(peak_rss "$3")" "$total"
}

# A whole past hour, minute-aligned, the same for every system.
HOUR_START=$(( ($(date +%s) / 60 * 60 - 7200) * 1000 ))
DATASET_ARGS=(--points "$POINTS" --customers "$CUSTOMERS" --counter-points "$COUNTER_POINTS"
              --seed "$SEED" --hour-start "$HOUR_START")

log "dataset: $POINTS api_latency + $COUNTER_POINTS requests_total points into $WORK/dataset"
"$LUMINATE" bench "${DATASET_ARGS[@]}" --dataset-out "$WORK/dataset"
META="$WORK/dataset/meta.json"
# The Prometheus text files are VictoriaMetrics' alone (1.35 GB at full size).
selected victoriametrics || rm -rf "${WORK:?}/dataset/vm"

if [ "$PROMQL_ONLY" = 0 ]; then
  log "Luminate: luminate bench (spawns its own server)"
  "$LUMINATE" bench "${DATASET_ARGS[@]}" --queries-repeat "$REPEAT" --json > "$WORK/luminate.json" \
    || log "luminate bench: some answers differ from the reference (the table shows which)"
  if selected victoriametrics; then
    log "Luminate: luminate bench --protocol remote-write (a fresh server; every answer checked once)"
    "$LUMINATE" bench "${DATASET_ARGS[@]}" --protocol remote-write --queries-repeat 1 --json \
      > "$WORK/luminate.rw.json" || log "luminate bench --protocol remote-write: some answers differ"
  fi
fi

# ---------------------------------------------------------------------------- DuckDB and chDB, in-process
# One Python process per system (its peak RSS is the system's), database in the work directory.
for system in duckdb chdb; do
  selected "$system" || continue
  log "$system: load, settle and queries in-process (bench/inprocess.py)"
  mkdir -p "$WORK/$system"
  python3 bench/inprocess.py run "$system" "$WORK/dataset" "$WORK/$system" "$REPEAT" > "$WORK/$system.json"
  rm -rf "${WORK:?}/$system" # its figures are taken: give the disk back before the next system
done

if selected victoriametrics; then
  # ------------------------------------------------------------------------------------ Luminate (PromQL)
  # `luminate serve` with the limits `luminate bench` gives its own server (bench/server.rs), plus a query
  # timeout as long as VictoriaMetrics' -search.maxQueryDuration below; loaded by `luminate bench --url
  # --load-only` (JSON, 2 connections). Every other query limit keeps its default.
  start_luminate() { # DIR: luminate serve over DIR on a free port; sets LUM_URL and SERVER_PID
    local port
    port=$(free_port)
    LUM_URL="http://127.0.0.1:$port"
    LUMINATE__CARDINALITY_LIMITS__MAX_UNIQUE_SERIES_PER_METRIC=100000000 \
    LUMINATE__RATE_LIMITS__METRICS_PER_SECOND=1000000000 \
    LUMINATE__RATE_LIMITS__WRITE_REQUESTS_PER_SECOND=1000000 \
    LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND=1000000 \
    LUMINATE__QUERY_LIMITS__MAX_QUERY_TIMEOUT=600s LUMINATE__LOGGING__LEVEL=warn \
      "$LUMINATE" serve --listen "127.0.0.1:$port" --data-dir "$1" > "$1.log" 2>&1 &
    SERVER_PID=$!
    wait_http "$LUM_URL/api/v1/health"
  }
  log "Luminate: start for PromQL"
  start_luminate "$WORK/luminate-promql"
  log "Luminate: load (luminate bench --url --load-only)"
  "$LUMINATE" bench "${DATASET_ARGS[@]}" --url "$LUM_URL" --load-only --json > "$WORK/luminate.promql-load.json"
  log "Luminate: PromQL queries at /prometheus"
  python3 bench/peers.py promql luminate "$LUM_URL/prometheus" "$META" "$REPEAT" > "$WORK/luminate.promql.json"
  stop_server

  # ------------------------------------------------------------------------------------------ VictoriaMetrics
  start_vm() { # DIR: VictoriaMetrics over DIR/data on a free port; sets VM_URL and SERVER_PID
    local port
    port=$(free_port)
    VM_URL="http://127.0.0.1:$port"
    mkdir -p "$1"
    victoria-metrics -storageDataPath="$1/data" -httpListenAddr="127.0.0.1:$port" \
      -retentionPeriod=100y -search.latencyOffset=0s -search.disableCache \
      -search.maxUniqueTimeseries=100000000 -search.maxQueryDuration=600s -search.maxSamplesPerQuery=10000000000 \
      -loggerLevel=ERROR > "$1.log" 2>&1 &
    SERVER_PID=$!
    wait_http "$VM_URL/health"
  }
  log "VictoriaMetrics: start"
  start_vm "$WORK/vm"
  log "VictoriaMetrics: import (Prometheus text, 2 connections)"
  started=$(now)
  (cd "$WORK/dataset/vm" && ls ./*.prom | xargs -P 2 -I{} curl -sSf --data-binary @{} "$VM_URL/api/v1/import/prometheus")
  curl -sSf "$VM_URL/internal/force_flush" >/dev/null
  seconds=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$started" "$(now)")
  sleep 2 # let the flushed parts settle before measuring the directory
  python3 bench/peers.py vm-count "$VM_URL" "$META"
  log "VictoriaMetrics: PromQL queries"
  python3 bench/peers.py promql victoriametrics "$VM_URL" "$META" "$REPEAT" > "$WORK/vm.promql.json"
  promql_table() {
    echo
    python3 bench/peers.py promql-table "$WORK/luminate.promql.json" "$WORK/vm.promql.json" "$META" "$WORK/dataset"
  }
  if [ "$PROMQL_ONLY" = 1 ]; then
    stop_server
    promql_table
    exit
  fi
  log "VictoriaMetrics: queries"
  python3 bench/peers.py queries victoriametrics "$VM_URL" "$META" "$REPEAT" > "$WORK/vm.queries.json"
  ingest_figures "$seconds" "$WORK/vm/data" "$SERVER_PID" > "$WORK/vm.ingest.json"
  stop_server

  log "VictoriaMetrics: start afresh for remote write"
  start_vm "$WORK/vm-rw"
  log "VictoriaMetrics: remote write 1.0 at /api/v1/write (luminate bench --protocol remote-write --load-only, 2 connections)"
  "$LUMINATE" bench "${DATASET_ARGS[@]}" --protocol remote-write --load-only --url "$VM_URL" --json \
    > "$WORK/vm.rw.json"
  curl -sSf "$VM_URL/internal/force_flush" >/dev/null
  python3 bench/peers.py vm-count "$VM_URL" "$META"
  stop_server
fi

if selected clickhouse; then
  # ----------------------------------------------------------------------------------------------- ClickHouse
  log "ClickHouse: start"
  CH_PORT=$(free_port) CH_TCP=$(free_port)
  CH_URL="http://127.0.0.1:$CH_PORT"
  start_clickhouse "$WORK/ch" "$CH_PORT" "$CH_TCP"
  SERVER_PID=$CH_PID
  wait_http "$CH_URL/ping"
  ch() { curl -sSf "$CH_URL/" --data-binary "$1"; }
  # One column per dimension, as the ClickHouse backend stores them; ms timestamps; ordered for the
  # per-customer and per-series scans.
  ch "CREATE TABLE points (metric String, customer_id String, endpoint String, region String,
      status_code String, ts UInt64, value Float64) ENGINE = MergeTree()
      PARTITION BY toDate(intDiv(ts, 1000)) ORDER BY (metric, customer_id, endpoint, region, status_code, ts)"
  log "ClickHouse: insert (TabSeparated, 2 connections)"
  started=$(now)
  (cd "$WORK/dataset/ch" && ls ./*.tsv | xargs -P 2 -I{} curl -sSf --data-binary @{} \
    "$CH_URL/?query=INSERT%20INTO%20points%20FORMAT%20TabSeparated")
  seconds=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$started" "$(now)")
  ch "OPTIMIZE TABLE points FINAL" # merge the inserted parts, as a settled table would be
  log "ClickHouse: queries"
  python3 bench/peers.py queries clickhouse "$CH_URL" "$META" "$REPEAT" > "$WORK/ch.queries.json"
  ingest_figures "$seconds" "$WORK/ch/data" "$SERVER_PID" > "$WORK/ch.ingest.json"
  if selected luminate-clickhouse; then
    # Its own database on the same server, after the direct figures are taken; settled (OPTIMIZE
    # FINAL) before its queries, as the direct table is.
    log "Luminate on ClickHouse: luminate bench --clickhouse (its own database on the same server)"
    "$LUMINATE" bench "${DATASET_ARGS[@]}" --queries-repeat "$REPEAT" --clickhouse "127.0.0.1:$CH_PORT" \
      --clickhouse-pid "$CH_PID" --json > "$WORK/luminate-ch.json" \
      || log "luminate bench --clickhouse: some answers differ from the reference (the table shows which)"
  fi
  stop_server
fi

# Every system's figures under its display name, in the order of the table's columns.
python3 - "$WORK" <<'EOF'
import json, os, sys
work = sys.argv[1]
load = lambda name: json.load(open(f"{work}/{name}.json"))
systems = {}
if os.path.exists(f"{work}/duckdb.json"):
    systems["DuckDB"] = load("duckdb")
if os.path.exists(f"{work}/chdb.json"):
    systems["chDB"] = load("chdb")
if os.path.exists(f"{work}/vm.queries.json"):
    vm_ingest = load("vm.ingest")
    vm_ingest["remote_write_points_per_second"] = load("vm.rw")["ingest"]["points_per_second"]
    systems["VictoriaMetrics"] = {"ingest": vm_ingest, "queries": load("vm.queries")}
if os.path.exists(f"{work}/ch.queries.json"):
    systems["ClickHouse"] = {"ingest": load("ch.ingest"), "queries": load("ch.queries")}
if os.path.exists(f"{work}/luminate-ch.json"):
    sys.path.insert(0, "bench")
    from peers import LUMINATE_CLICKHOUSE, luminate_clickhouse_system
    systems[LUMINATE_CLICKHOUSE] = luminate_clickhouse_system(f"{work}/luminate-ch.json")
json.dump(systems, open(f"{work}/systems.json", "w"))
EOF
echo
status=0
table_args=("$WORK/luminate.json" "$WORK/systems.json" --report "$WORK/report.json")
selected victoriametrics && table_args+=(--remote-write "$WORK/luminate.rw.json")
python3 bench/peers.py table "${table_args[@]}" || status=1
if selected victoriametrics; then promql_table || status=1; fi
if [ -n "$REPORT" ]; then cp "$WORK/report.json" "$REPORT"; log "report: $REPORT"; fi
exit "$status"
