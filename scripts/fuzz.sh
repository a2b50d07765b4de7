#!/usr/bin/env bash
# Builds the fuzz targets of fuzz/ (libFuzzer, coverage-guided) and runs each for a given time, then
# prints the executions and executions per second of each in a table (docs/fuzzing.md).
#
#   scripts/fuzz.sh [--time SECONDS] [--runs N] [--smoke] [TARGET...]   default: 60 s each, every target
#
# `--runs N` stops each target after N executions instead (`--time` then bounds it too, if given).
# `--smoke`: built for a short run (what scripts/test.sh does in CI): opt-level 1 and no debug info, a
# lighter build whose executions are slower.
# Built with the flags `cargo fuzz build -s none` passes (SanitizerCoverage, `--cfg fuzzing`, debug
# assertions, release), by cargo itself: the stable toolchain is enough and cargo-fuzz need not be
# installed. Each target starts from its committed seeds (fuzz/corpus/<target>, read only) and a
# working corpus kept in the build cache between runs. Exits non-zero when a target crashed, failed
# an assertion, timed out or ran out of memory, naming the reproducer (fuzz/artifacts/<target>/...):
#   $CARGO_TARGET_DIR/<triple>/release/<target> fuzz/artifacts/<target>/crash-...  replays it.
# Fuzzers run under `nice -n ${FUZZ_NICE:-10}`: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

time_each=
runs=-1
smoke=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_each="$2"; shift 2 ;;
    --time=*) time_each="${1#--time=}"; shift ;;
    --runs) runs="$2"; shift 2 ;;
    --runs=*) runs="${1#--runs=}"; shift ;;
    --smoke) smoke=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
# Without --time: 60 s, or no time limit when --runs is given.
if [ -z "$time_each" ]; then
  if [ "$runs" = -1 ]; then time_each=60; else time_each=0; fi
fi
all=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^luminate-fuzz$')
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets <<<"$all"
fi
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$all" || { echo "no fuzz target $t (targets: $(echo $all))" >&2; exit 2; }
done

# libfuzzer-sys compiles libFuzzer (C++) in its build script.
command -v c++ >/dev/null || ensure_apt_packages g++
triple=$(rustc -vV | sed -n 's/^host: //p')
# What cargo-fuzz 0.12/0.13 passes for `build -s none` (src/project.rs): coverage counters and
# comparison tracing for libFuzzer, `cfg(fuzzing)`, debug assertions and overflow checks on.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
--cfg fuzzing -Clink-dead-code -Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions \
${FUZZ_RUSTFLAGS:-}"
bin_args=()
for t in "${targets[@]}"; do bin_args+=(--bin "$t"); done
profile=(--config profile.release.debug=1)
if [ "$smoke" = 1 ]; then
  profile=(--config profile.release.debug=0 --config "profile.release.opt-level=${FUZZ_SMOKE_OPT_LEVEL:-1}")
fi
log "building ${#targets[@]} fuzz target(s) for $triple$([ "$smoke" = 0 ] || echo " (smoke build)")"
build_started=$(date +%s)
cargo build --manifest-path fuzz/Cargo.toml --target "$triple" --release \
  "${profile[@]}" --quiet "${bin_args[@]}"
log "built in $(( $(date +%s) - build_started )) s"
bin_dir="$CARGO_TARGET_DIR/$triple/release"

work="$CARGO_TARGET_DIR/fuzz-corpus"
logs="$CARGO_TARGET_DIR/fuzz-logs"
mkdir -p "$logs"
failed=()
rows=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "fuzz/artifacts/$t" "fuzz/corpus/$t"
  log "fuzzing $t ($([ "$time_each" = 0 ] || echo "${time_each} s")$([ "$runs" = -1 ] || echo " $runs runs"))"
  status=0
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a decoder's memory must stay bounded
  # (targets assert tighter bounds themselves); -close_fd_mask: keep decoders' output out of the log.
  nice -n "${FUZZ_NICE:-10}" "$bin_dir/$t" "$work/$t" "fuzz/corpus/$t" \
    -max_total_time="$time_each" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$logs/$t.log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -1)
  result=ok
  if [ "$status" -ne 0 ]; then
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logs/$t.log" | tail -1)
    result="FAILED (exit $status): ${artifact:-see $logs/$t.log}"
    failed+=("$t")
    grep -m 20 -E 'panicked|ERROR|SUMMARY|assert' "$logs/$t.log" >&2 || true
  fi
  rows+=("$(printf '%-14s %14s %10s  %s' "$t" "${execs:-?}" "${rate:-?}" "$result")")
done

printf '%-14s %14s %10s  %s\n' target executions exec/s result
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets failed: ${failed[*]} (reproduce: $bin_dir/<target> <artifact>; logs in $logs)" >&2
  exit 1
fi
