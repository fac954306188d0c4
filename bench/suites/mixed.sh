#!/usr/bin/env bash
# summary: bcd reading while it ingests: read p99 and ingest rate under 200 wrk connections, this tree beside an older one
# Needs root (a private munged) and wrk. Each bcd starts from the same history (BC_BENCH_JOBS one-node jobs of
# 20 processes, BC_BENCH_RUNNING of them running), then takes bc-central-bench's push of 20 nodes x 50
# processes (BC_BENCH_TICKS ticks, 100 per request, munge) once alone and once while wrk reads with 200
# connections: the ingesting job's view, a running job's view, the job list, the running jobs, /metrics. The
# readers start 0.1 s after the push starts sending and read for as long as the push took alone.
# The older tree (BC_BENCH_BASELINE, a git revision; default the last commit before bcd read concurrently)
# is built into build-bench-baseline-REV and measured in the same run. Reads run with auth_disable, so
# what is measured is the store and the views, not munge.
set -euo pipefail
. "$(dirname "$0")/../lib/munge.sh"
: "${BC_BUILD_DIR:?run through ./bench/run.sh}"
[ "$(id -u)" = 0 ] || { echo "bench mixed: needs root (runs a private munged)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench mixed: needs wrk (apt-get install wrk)" >&2; exit 1; }
baseline=${BC_BENCH_BASELINE:-5c2ae0c}
jobs=${BC_BENCH_JOBS:-2000}; running=${BC_BENCH_RUNNING:-200}; ticks=${BC_BENCH_TICKS:-6000}
bench=$BC_BUILD_DIR/cgroup_monitor/bench-central/bc-central-bench
bcadm=$BC_BUILD_DIR/web/bcadm
work=$(mktemp -d /tmp/bc-bench-mixed-XXXXXX)
bcd_pid=
cleanup() {
  [ -z "$bcd_pid" ] || { kill -TERM "$bcd_pid" 2>/dev/null; wait "$bcd_pid" 2>/dev/null || true; }
  stop_munged "$work"
  rm -rf "$work"
}
trap cleanup EXIT

# The older bcd, built once per revision.
base_build=$BC_SRC_DIR/build-bench-baseline-$baseline
if [ ! -x "$base_build/web/bcd" ]; then
  echo "bench mixed: building bcd at $baseline into $base_build (once)" >&2
  mkdir -p "$base_build/src"
  git -C "$BC_SRC_DIR" archive "$baseline" | tar -x -C "$base_build/src"
  cmake -S "$base_build/src" -B "$base_build" -DCMAKE_BUILD_TYPE=Release >/dev/null 2>&1
  cmake --build "$base_build" -j"$(nproc)" --target bcd >/dev/null
fi

start_munged "$work"

"$bcadm" db init --store "$work/history.lmdb" >/dev/null
echo "bench mixed: writing the history ($jobs jobs)" >&2
"$bench" prefill "$work/history.lmdb" "$jobs" 20 3 "$running" >/dev/null

# A fresh bcd on a fresh copy of the history, so each measurement merges the same new data.
start_bcd() {
  [ -z "$bcd_pid" ] || { kill -TERM "$bcd_pid"; wait "$bcd_pid" || true; }
  rm -rf "$work/central.lmdb" "$work/port"
  cp -r "$work/history.lmdb" "$work/central.lmdb"
  printf '%s\n' "listen=127.0.0.1:0" "store=$work/central.lmdb" "static_dir=$work" \
    "auth_secret=bench-secret-0123456789" "auth_disable=yes" "munge_socket=$work/munge.sock" \
    "max_body_bytes=268435456" "threads=4" "max_connections_per_ip=1024" "metrics_jobs=on" >"$work/bcd.conf"
  "$1" --config "$work/bcd.conf" --port-file "$work/port" >/dev/null 2>>"$work/bcd.log" &
  bcd_pid=$!
  for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
  [ -s "$work/port" ] || { echo "bench mixed: bcd did not start:" >&2; tail -5 "$work/bcd.log" >&2; exit 1; }
  url=http://127.0.0.1:$(cat "$work/port")
}

cat >"$work/reads.lua" <<EOF
local paths = {"/api/v1/jobs/1000", "/api/v1/jobs/$((2000 + running / 2))", "/api/v1/jobs",
               "/api/v1/jobs?state=running", "/metrics"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[n % #paths + 1])
end
EOF

push() { "$bench" http "$url" 20 50 "$ticks" 4 100 --munge-socket "$work/munge.sock" "$@"; }
field() { awk -v name="$2" '{for (i = 1; i < NF; i += 2) if ($i == name) print $(i + 1)}' <<<"$1"; }
# wrk's 99th percentile in ms ("99%  12.34ms", or us / s).
p99_ms() {
  awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
    print (u == "us" ? v / 1000 : u == "s" ? v * 1000 : v) }' "$1"
}

measure() {  # name bcd
  local name=$1 bin=$2 alone mixed seconds duration
  start_bcd "$bin"
  alone=$(push)
  seconds=$(field "$alone" seconds)
  # The readers start once the push has made the ingesting job, and read for as long as the push took alone.
  duration=$(awk -v s="$seconds" 'BEGIN { printf "%d", s < 2 ? 2 : s + 0.5 }')
  start_bcd "$bin"
  rm -f "$work/ready"
  push --ready-file "$work/ready" >"$work/push.$name" &
  local push_pid=$!
  # The driver encodes every request first (seconds): the readers start when it starts sending.
  for _ in $(seq 600); do [ -e "$work/ready" ] && break; sleep 0.05; done
  sleep 0.1
  wrk -t2 -c200 -d"${duration}s" --latency -s "$work/reads.lua" "$url" >"$work/wrk.$name" 2>&1
  wait "$push_pid"
  mixed=$(cat "$work/push.$name")
  local rate_alone rate_mixed
  rate_alone=$(awk -v n="$(field "$alone" samples)" -v s="$seconds" 'BEGIN { print n / s }')
  rate_mixed=$(awk -v n="$(field "$mixed" samples)" -v s="$(field "$mixed" seconds)" 'BEGIN { print n / s }')
  echo "BENCH mixed_ingest_alone_$name $(printf '%.0f' "$rate_alone") samples/s"
  echo "BENCH mixed_ingest_with_reads_$name $(printf '%.0f' "$rate_mixed") samples/s"
  echo "BENCH mixed_ingest_kept_$name $(awk -v a="$rate_alone" -v m="$rate_mixed" 'BEGIN { printf "%.1f", 100 * m / a }') %"
  echo "BENCH mixed_read_p99_$name $(p99_ms "$work/wrk.$name") ms"
  echo "BENCH mixed_read_rate_$name $(awk '/^Requests\/sec/ { print $2 }' "$work/wrk.$name") requests/s"
  if grep -q "Non-2xx" "$work/wrk.$name"; then
    echo "bench mixed: $name answered errors:" >&2
    grep -E "Non-2xx|Socket errors" "$work/wrk.$name" >&2
  fi
}

measure baseline "$base_build/web/bcd"
measure new "$BC_BUILD_DIR/web/bcd"
