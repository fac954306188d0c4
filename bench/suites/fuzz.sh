#!/usr/bin/env bash
# summary: every libFuzzer harness of tests/fuzz for 10 million inputs, one after another: executions, exec/s, findings
# build: own
#
# Builds the harnesses with clang (BC_FUZZ=ON: ASan+UBSan) in BC_FUZZ_BUILD_DIR (build-fuzz/), then runs
# each over its checked-in corpus (and with its dictionary, where it has one) for BENCH_FUZZ_RUNS inputs
# (10000000), new inputs going to a temporary directory. A finding (crash, UB, leak, timeout, out of memory)
# stops that harness and is kept in BENCH_FUZZ_FINDINGS (build-fuzz/bench-findings/<harness>/); the suite
# goes on with the next and exits 1 at the end. BENCH_FUZZ_HARNESSES (all) names a subset, e.g.
# "wire codec". BENCH_FUZZ_TIMEOUT (10) is libFuzzer's seconds per input; raise it when the run shares a
# busy machine at low priority, where a starved input can pass 10 s of wall time. Each harness's log is
# kept beside its findings. Prints, per harness:
#   BENCH fuzz_execs_<harness> N runs    BENCH fuzz_exec_per_s_<harness> N exec/s
#   BENCH fuzz_findings_<harness> N count   BENCH fuzz_seconds_<harness> N s
#   BENCH fuzz_slow_units_<harness> N count (inputs libFuzzer reported slow; replay them to tell load from a bug)
set -euo pipefail
: "${BC_SRC_DIR:?run through bench/run.sh}"
command -v clang++ >/dev/null || { echo "bench fuzz: clang is not installed (scripts/install-deps.sh)" >&2; exit 1; }
build=${BC_FUZZ_BUILD_DIR:-$BC_SRC_DIR/build-fuzz}
runs=${BENCH_FUZZ_RUNS:-10000000}
timeout=${BENCH_FUZZ_TIMEOUT:-10}
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$BC_SRC_DIR" -B "$build" -DBC_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target fuzz -j"$(nproc)" >/dev/null
findings_root=${BENCH_FUZZ_FINDINGS:-$build/bench-findings}
harnesses=${BENCH_FUZZ_HARNESSES:-$(cd "$BC_SRC_DIR/tests/fuzz/corpus" && ls)}
work=$(mktemp -d "${TMPDIR:-/tmp}/bc-bench-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for h in $harnesses; do
  findings=$findings_root/$h
  rm -rf "$findings" "$work/$h"
  mkdir -p "$findings" "$work/$h"
  start=$(date +%s)
  dict=()
  [ -f "$BC_SRC_DIR/tests/fuzz/dict/$h.dict" ] && dict=(-dict="$BC_SRC_DIR/tests/fuzz/dict/$h.dict")
  rc=0
  "$build/tests/fuzz/fuzz_$h" -runs="$runs" -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$findings/" "$work/$h" "$BC_SRC_DIR/tests/fuzz/corpus/$h" >"$findings/log" 2>&1 || rc=$?
  seconds=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$findings/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$findings/log" | tail -1)
  # crash-, leak-, timeout- and oom- files are findings; a slow-unit- file (an input past 10 s, which a
  # starved nice-19 run can report) is not, and is counted apart.
  count=$(find "$findings" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  slow=$(find "$findings" -type f -name 'slow-unit-*' | wc -l)
  echo "BENCH fuzz_execs_$h ${execs:-0} runs"
  echo "BENCH fuzz_exec_per_s_$h ${rate:-0} exec/s"
  echo "BENCH fuzz_findings_$h $count count"
  echo "BENCH fuzz_slow_units_$h $slow count"
  echo "BENCH fuzz_seconds_$h $seconds s"
  echo "fuzz: $h: ${seconds} s, exit $rc, log $findings/log" >&2
  if [ "$rc" != 0 ] || [ "$count" != 0 ]; then status=1; fi
done
exit $status
