#!/usr/bin/env bash
# summary: accounting store: ingest, query and size, and the same through SQLite (WAL, one row per sample)
#
# SQLite gets a 64 MiB page cache and a WITHOUT ROWID sample table keyed (job, node, series, time), the
# key its queries need; ingest is also measured keyed (job, node, time, series) ("sqlite_tm"), which
# inserts faster and queries a series by scanning.
# Knobs (environment): BENCH_PROCS (1000), BENCH_HOURS (24: the job that is queried and sized),
# BENCH_SQLITE_HOURS (same as BENCH_HOURS; 24 h in SQLite takes minutes and ~4 GB), BENCH_MONITORS (8: the
# node model's monitors, which share BENCH_PROCS), BENCH_INGEST_TICKS
# (600 ticks per ingest run; SQLite's data for the queries is bulk-loaded, its ingest speed is measured there), BENCH_DIR (/var/tmp/bc-bench-store: put it on a real disk, not tmpfs).
set -euo pipefail
: "${BC_SRC_DIR:?run through bench/run.sh}" "${BC_BUILD_DIR:?run through bench/run.sh}"
cmake --build "$BC_BUILD_DIR" --target store_bench bcacct >/dev/null
bench="$BC_BUILD_DIR/accounting_db/bench/store_bench"
bcacct="$BC_BUILD_DIR/sacct_ext/bcacct"
[ -x "$bench" ] || { echo "bench store: store_bench was not built (is libsqlite3-dev installed?)" >&2; exit 1; }
procs=${BENCH_PROCS:-1000}
hours=${BENCH_HOURS:-24}
sqlite_hours=${BENCH_SQLITE_HOURS:-$hours}
ticks=${BENCH_INGEST_TICKS:-600}
monitors=${BENCH_MONITORS:-8}
work=${BENCH_DIR:-/var/tmp/bc-bench-store}
mkdir -p "$work"
phases=${BENCH_PHASES:-ingest build query}
log="$work/bench.log"
: >"$log"
has() { case " $phases " in *" $1 "*) return 0 ;; esac; return 1; }

run() { "$@" | tee -a "$log"; }
value() { awk -v n="$1" '$1 == "BENCH" && $2 == n { v = $3 } END { if (v == "") exit 1; print v }' "$log"; }
ratio() {  # BENCH line: name = a / b
  local a b
  a=$(value "$2") && b=$(value "$3") || return 0
  awk -v n="$1" -v a="$a" -v b="$b" 'BEGIN { printf "BENCH %s %.3g x\n", n, a / b }' | tee -a "$log"
}
drop_caches() {  # cold cache, the same for both stores: before every cold run, the page cache (store files,
  # binaries, libraries), or where that is not allowed the store files and binaries
  sync
  if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
    echo "  (cold: dropped the page cache)" >&2
  else
    "$bench" evict "$work/job-lmdb" "$work/job-sqlite" "$bcacct" "$bench"
    echo "  (cold: evicted the store files and binaries; not root, so /proc/sys/vm/drop_caches was not used)" >&2
  fi
}
ms_of() {  # wall milliseconds of a command, its output discarded
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}

if has ingest; then
echo "== ingest: one monitor, $procs processes + the job total per tick, one transaction per tick, $ticks ticks" >&2
for d in default full none; do
  run "$bench" ingest lmdb "$work/ingest-lmdb" "$procs" "$ticks" "$d"
  run "$bench" ingest sqlite "$work/ingest-sqlite" "$procs" "$ticks" "$d"
  run "$bench" ingest sqlite_tm "$work/ingest-sqlite" "$procs" "$ticks" "$d"
  ratio "ingest_${d}_ratio_vs_sqlite" "store_ingest_${d}_samples_per_s" "sqlite_ingest_${d}_samples_per_s"
  ratio "ingest_${d}_cpu_ratio_vs_sqlite" "store_ingest_${d}_cpu_samples_per_s" "sqlite_ingest_${d}_cpu_samples_per_s"
  ratio "ingest_${d}_ratio_vs_sqlite_time_keyed" "store_ingest_${d}_samples_per_s" "sqlite_tm_ingest_${d}_samples_per_s"
done
echo "== ingest: a node, $monitors monitors sharing $procs processes, each committing its own batch per tick" >&2
for d in default none; do
  run "$bench" ingest lmdb "$work/ingest-lmdb" "$procs" "$ticks" "$d" "$monitors"
  run "$bench" ingest sqlite "$work/ingest-sqlite" "$procs" "$ticks" "$d" "$monitors"
  ratio "ingest_node_${d}_ratio_vs_sqlite" "store_node_ingest_${d}_samples_per_s" "sqlite_node_ingest_${d}_samples_per_s"
  ratio "ingest_node_${d}_cpu_ratio_vs_sqlite" "store_node_ingest_${d}_cpu_samples_per_s" "sqlite_node_ingest_${d}_cpu_samples_per_s"
done
# The goal (>= 1 M samples/s "on one core, batched as a monitor does") is a CPU figure: samples per CPU-second
# of one monitor writing its job (BENCH_PROCS processes, one transaction per tick) at the default durability,
# user + system time with the per-commit fsync included. Wall clock at that durability also waits for the
# fsync, which the disk decides, not the core. The node model is printed beside it: there each of
# BENCH_MONITORS commits pays its own fsync for a share of the processes.
if v=$(value store_ingest_default_cpu_samples_per_s); then
  echo "BENCH ingest_goal_samples_per_cpu_s $v samples/cpu-s" | tee -a "$log"
  awk -v v="$v" 'BEGIN { printf "BENCH ingest_goal_met %d bool\n", (v >= 1e6) }' | tee -a "$log"
fi
if v=$(value store_node_ingest_default_cpu_samples_per_s); then
  echo "BENCH ingest_node_samples_per_cpu_s $v samples/cpu-s" | tee -a "$log"
fi
fi

if has build; then
echo "== a job of $procs processes x ${hours} h at 1 Hz (SQLite: ${sqlite_hours} h)" >&2
run "$bench" build lmdb "$work/job-lmdb" "$procs" "$hours"
run "$bench" build sqlite "$work/job-sqlite" "$procs" "$sqlite_hours"
ratio size_ratio_vs_sqlite sqlite_size_bytes_per_sample store_size_second_res_bytes_per_sample
fi

has query || exit 0
[ -d "$work/job-lmdb" ] && [ -d "$work/job-sqlite" ] || { echo "bench store: no job to query; run the build phase" >&2; exit 1; }
echo "== query: bcacct -j on the ${hours} h job, cold then warm" >&2
drop_caches
cold=$(ms_of "$bcacct" -j 1000 --store "$work/job-lmdb")
echo "BENCH bcacct_j_cold_ms $cold ms" | tee -a "$log"
warm=$(for i in 1 2 3 4 5; do ms_of "$bcacct" -j 1000 --store "$work/job-lmdb"; done | sort -n | sed -n 3p)
echo "BENCH bcacct_j_warm_ms $warm ms" | tee -a "$log"
"$bcacct" -j 1000 --store "$work/job-lmdb" >"$work/bcacct.txt"
head -12 "$work/bcacct.txt" >&2

echo "== query: the job's header and processes, and every series rolled up, store vs SQLite" >&2
drop_caches
run "$bench" query lmdb "$work/job-lmdb" cold
drop_caches
run "$bench" query sqlite "$work/job-sqlite" cold
run "$bench" query lmdb "$work/job-lmdb" warm
run "$bench" query sqlite "$work/job-sqlite" warm
for c in cold warm; do
  ratio "query_${c}_processes_ratio_vs_sqlite" "sqlite_${c}_job_processes_ms" "store_${c}_job_processes_ms"
  ratio "query_${c}_series_ratio_vs_sqlite" "sqlite_${c}_job_series_rollup_ms" "store_${c}_job_series_rollup_ms"
done
echo "(figures also in $log; remove $work when done)" >&2
