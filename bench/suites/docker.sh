#!/usr/bin/env bash
# summary: bc-docker: CPU of bc-docker + 10 monitors on 10 idle containers (% of a core), start latency of monitoring
# Needs root and Docker (installed and started by tests/docker/docker_fixture.sh when missing).
#   BC_BENCH_SECONDS   measuring window for the CPU figure (default 30)
#   BC_BENCH_ROUNDS    containers started for the latency figure (default 10)
set -euo pipefail
: "${BC_BUILD_DIR:?run through ./bench/run.sh}"
[ "$(id -u)" = 0 ] || { echo "bench docker: needs root (starts dockerd and containers)" >&2; exit 1; }
seconds=${BC_BENCH_SECONDS:-30}
rounds=${BC_BENCH_ROUNDS:-10}
work=$BC_BUILD_DIR/bench-docker
fixture=$BC_SRC_DIR/tests/docker/docker_fixture.sh
docker=/usr/bin/docker; [ -x $docker ] || docker=docker
rm -rf "$work"; mkdir -p "$work"
"$fixture" setup "$work/fixture"

bcd_pid=
cleanup() {
  ids=$($docker ps -aq --filter label=bc-bench=1 2>/dev/null || true)
  [ -z "$ids" ] || $docker rm -f $ids >/dev/null 2>&1 || true
  [ -z "$bcd_pid" ] || kill -TERM "$bcd_pid" 2>/dev/null || true
  "$fixture" cleanup "$work/fixture" || true
}
trap cleanup EXIT

"$BC_BUILD_DIR/docker_monitor/bc-docker" --config /dev/null --store "$work/node.lmdb" --run-dir "$work/run" \
  --state "$work/state" --log "$work/monitor.log" --monitor "$BC_BUILD_DIR/cgroup_monitor/bc-monitor" \
  --interval 1 --node bcbench >"$work/bc-docker.log" 2>&1 &
bcd_pid=$!
for _ in $(seq 100); do grep -q "connected to Docker" "$work/bc-docker.log" && break; sleep 0.1; done

key() { python3 -c "import sys; print((1<<63) | int(sys.argv[1][:12], 16))" "$1"; }

# 1. Ten idle containers: what monitoring them costs.
ids=()
for i in $(seq 10); do
  ids+=("$($docker run -d --network none --label bc-bench=1 --label bc-test=1 bc-busybox:test sleep 3600)")
done
pids=("$bcd_pid")
for id in "${ids[@]}"; do
  k=$(key "$id")
  for _ in $(seq 100); do [ -s "$work/run/job_$k.pid" ] && break; sleep 0.05; done
  pids+=("$(cat "$work/run/job_$k.pid")")
done
sleep 3  # past the monitors' start-up
python3 - "$seconds" "${pids[@]}" <<'PY'
import glob, os, sys, time
seconds, pids = float(sys.argv[1]), [int(p) for p in sys.argv[2:]]
tck = os.sysconf("SC_CLK_TCK")
def ticks(pid):  # /proc/PID/stat utime + stime: whole process, in clock ticks (10 ms, sampled)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tck
def run_ns(pid):  # schedstat: time on CPU in ns, exact; summed over the process's threads
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        with open(path) as f:
            total += int(f.read().split()[0])
    return total / 1e9
t0, a0, b0 = time.monotonic(), [ticks(p) for p in pids], [run_ns(p) for p in pids]
time.sleep(seconds)
t1, a1, b1 = time.monotonic(), [ticks(p) for p in pids], [run_ns(p) for p in pids]
wall = t1 - t0
stat = [y - x for x, y in zip(a0, a1)]
exact = [y - x for x, y in zip(b0, b1)]
print(f"BENCH docker_idle10_cpu_total {sum(exact) / wall * 100:.3f} %")
print(f"BENCH docker_idle10_cpu_bc_docker {exact[0] / wall * 100:.4f} %")
print(f"BENCH docker_idle10_cpu_per_monitor {sum(exact[1:]) / len(exact[1:]) / wall * 100:.4f} %")
print(f"BENCH docker_idle10_cpu_total_stat_ticks {sum(stat) / wall * 100:.3f} %")
print(f"# bc-docker + {len(pids) - 1} monitors over {wall:.1f} s: {sum(exact):.3f} s on CPU by schedstat, "
      f"{sum(stat):.2f} s by /proc/PID/stat ticks (goal: total <= 0.5 % of a core)")
PY
$docker rm -f "${ids[@]}" >/dev/null

# 2. Start latency: container State.StartedAt -> the monitor's start (its job record's start).
: >"$work/latency.ms"
for i in $(seq "$rounds"); do
  id=$($docker run -d --network none --label bc-bench=1 --label bc-test=1 bc-busybox:test sleep 1.2)
  k=$(key "$id")
  $docker wait "$id" >/dev/null
  for _ in $(seq 100); do [ -e "$work/run/job_$k.pid" ] || break; sleep 0.1; done
  started=$($docker inspect -f '{{.State.StartedAt}}' "$id")
  "$BC_BUILD_DIR/tests/docker/bc-docker-storedump" "$work/node.lmdb" "$k" >"$work/job.json"
  python3 - "$started" "$work/job.json" >>"$work/latency.ms" <<'PY'
import json, re, sys
from datetime import datetime, timezone
def t(text):
    m = re.match(r"(.{19})(?:\.(\d+))?Z$", text)
    return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp() + \
        (float("0." + m.group(2)) if m.group(2) else 0.0)
print(f"{(t(json.load(open(sys.argv[2]))['job']['start']) - t(sys.argv[1])) * 1000:.1f}")
PY
  $docker rm "$id" >/dev/null
done
python3 - "$work/latency.ms" <<'PY'
import statistics, sys
ms = [float(x) for x in open(sys.argv[1]).read().split()]
print(f"BENCH docker_start_latency_median {statistics.median(ms):.1f} ms")
print(f"BENCH docker_start_latency_max {max(ms):.1f} ms")
print(f"# {len(ms)} containers, State.StartedAt to the monitor's start: {' '.join(f'{x:.0f}' for x in ms)} ms (goal <= 200 ms)")
PY
