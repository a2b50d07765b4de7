#!/usr/bin/env bash
# Runs `luminate bench` on both storage backends with the same arguments — the embedded engine, then the
# ClickHouse backend against a clickhouse-server (the Debian package) started here as a child process on
# loopback ports with its data in a temporary directory — and prints the figures side by side with
# ratios. `luminate bench` checks every answer of each run against the exact reference; this script
# also checks that the two backends gave identical answers.
#
#   bench/backends.sh                     # the full dataset: 10 M points, ~2 M series (long: run it on a quiet machine)
#   bench/backends.sh --points 1000000    # a reduced run (a few minutes)
#
# Options: --points N  --customers N  --counter-points N  --repeat N  --seed N  --keep (keep the work dir)
#          --luminate PATH (a built binary; default: cargo build --release -p luminate)
# The two runs go one after the other: ClickHouse is started only for the second, so the embedded run
# has the machine to itself. Every server started here is stopped on exit (trap EXIT), whatever happens.
# Exit status: 0 when every answer of both runs is exact and they agree, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
source bench/lib/common.sh

parse_bench_options "$@"

ensure_apt_packages clickhouse-server curl
command -v python3 >/dev/null || ensure_apt_packages python3

ensure_luminate

WORK=$(mktemp -d "${TMPDIR:-/tmp}/luminate-backends.XXXXXX")
CH_PID=""
stop_clickhouse() { stop_pid "$CH_PID"; CH_PID=""; }
cleanup() {
  stop_clickhouse
  if [ "$KEEP" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A whole past hour, minute-aligned, the same for both runs.
HOUR_START=$(( ($(date +%s) / 60 * 60 - 7200) * 1000 ))
BENCH_ARGS=(--points "$POINTS" --customers "$CUSTOMERS" --counter-points "$COUNTER_POINTS"
            --seed "$SEED" --hour-start "$HOUR_START" --queries-repeat "$REPEAT" --json)

log "embedded engine: luminate bench (spawns its own server)"
status=0
"$LUMINATE" bench "${BENCH_ARGS[@]}" > "$WORK/embedded.json" || status=1

log "ClickHouse: start"
CH_PORT=$(free_port) CH_TCP=$(free_port)
start_clickhouse "$WORK/ch" "$CH_PORT" "$CH_TCP"
for _ in $(seq 600); do
  curl -sf -o /dev/null "http://127.0.0.1:$CH_PORT/ping" && break
  kill -0 "$CH_PID" 2>/dev/null || { echo "clickhouse-server exited; its log:" >&2; cat "$WORK/ch.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$CH_PORT/ping" || { echo "clickhouse-server did not answer" >&2; exit 1; }

log "ClickHouse backend: luminate bench --clickhouse 127.0.0.1:$CH_PORT"
"$LUMINATE" bench "${BENCH_ARGS[@]}" --clickhouse "127.0.0.1:$CH_PORT" --clickhouse-pid "$CH_PID" \
  > "$WORK/clickhouse.json" || status=1
stop_clickhouse

echo
python3 - "$WORK/embedded.json" "$WORK/clickhouse.json" <<'EOF' || status=1
import json, sys

emb, ch = (json.load(open(p)) for p in sys.argv[1:3])
d = emb["dataset"]
print(f"Dataset: {d['latency_points']:,} api_latency points ({d['latency_series']:,} series, "
      f"{d['customers']:,} customers, Zipf 1.1) + {d['counter_points']:,} requests_total points, seed {d['seed']}")
print("Ratio: ClickHouse backend / embedded engine for times, bytes and memory; embedded / ClickHouse for "
      "points/s. Above 1.00x the embedded engine is ahead.")
print("ClickHouse's memory and CPU are added to its Luminate's (they run as two processes).\n")

def fmt(v, digits):
    return "n/a" if v is None else f"{v:,.{digits}f}"

def same(a, b):
    """Equal answers; floats within 1e-9 relative (each backend adds f64 values in its own order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return a == b

def ratio(e, c, higher_is_better=False):
    if e is None or c is None or e == 0 or c == 0:
        return "n/a"
    return f"{(e / c if higher_is_better else c / e):.2f}x"

print(f"{'figure':<46} {'embedded':>14} {'ClickHouse':>14} {'ratio':>8}")
gib = lambda b: None if b is None else b / 2**30
rows = [
    ("ingest points/s", emb["ingest"]["points_per_second"], ch["ingest"]["points_per_second"], True, 0),
    ("server CPU s during ingest", emb["ingest"]["server_cpu_seconds"], ch["ingest"]["server_cpu_seconds"], False, 2),
    ("bytes/point on disk", emb["storage"]["bytes_per_point"], ch["storage"]["bytes_per_point"], False, 2),
    ("peak RSS GiB", gib(emb["storage"]["peak_rss_bytes"]), gib(ch["storage"]["peak_rss_bytes"]), False, 3),
    ("  of which Luminate", gib(emb["storage"]["luminate_peak_rss_bytes"]), gib(ch["storage"]["luminate_peak_rss_bytes"]), False, 3),
]
for label, e, c, higher, digits in rows:
    print(f"{label:<46} {fmt(e, digits):>14} {fmt(c, digits):>14} {ratio(e, c, higher):>8}")

print(f"\n{'query (median ms)':<46} {'embedded':>14} {'ClickHouse':>14} {'ratio':>8}  answers")
theirs = {q["name"]: q for q in ch["queries"]}
differ = 0
for q in emb["queries"]:
    c = theirs[q["name"]]
    equal = same(q["answer"], c["answer"])
    differ += not equal
    checks = "exact, equal" if equal and q["check"] == c["check"] == "ok" else \
        f"embedded {q['check']}, clickhouse {c['check']}, {'equal' if equal else 'DIFFERENT'}"
    print(f"{q['description'][:46]:<46} {q['median_ms']:>14.1f} {c['median_ms']:>14.1f} "
          f"{ratio(q['median_ms'], c['median_ms']):>8}  {checks}")
ok = emb["all_checks_passed"] and ch["all_checks_passed"] and differ == 0
print(f"\nAnswers: {'every answer exact on both backends, and identical' if ok else 'SOME DIFFER (see above)'}.")
sys.exit(0 if ok else 1)
EOF
exit $status
