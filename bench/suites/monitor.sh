#!/usr/bin/env bash
# summary: the monitor's CPU per sample of a job's processes, with their Slurm ranks known and without
# (ProcessTable::sample + commit over real sleeping processes). Knobs: BC_BENCH_RANKS (8 tasks),
# BC_BENCH_CHILDREN (60 helpers per task), BC_BENCH_THREADS (4 per helper), BC_BENCH_ROUNDS (50 per table).
set -euo pipefail
: "${BC_BUILD_DIR:?run through ./bench/run.sh}"
exec "$BC_BUILD_DIR/cgroup_monitor/bench-monitor/bc-table-bench" "${BC_BENCH_RANKS:-8}" "${BC_BENCH_CHILDREN:-60}" \
  "${BC_BENCH_THREADS:-4}" "${BC_BENCH_ROUNDS:-50}"
