#!/usr/bin/env bash
# summary: step start/stop latency added by the SPANK plugin (srun true, with vs without, without the task
#          handoff, and where the BPF events fail to load), the task's wait for its monitor (warm and first job
#          on the node), monitor CPU and RSS with events working, failing and off
# Runs on a private single-node cluster (root). Alternates with/without so drift hits both sides alike.
set -euo pipefail
: "${BC_BUILD_DIR:?run through ./bench/run.sh}"
[ "$(id -u)" = 0 ] || { echo "bench spank: needs root (starts slurmd)" >&2; exit 1; }
rounds=${BC_BENCH_ROUNDS:-20}
work=$BC_BUILD_DIR/bench-spank
rm -rf "$work"; mkdir -p "$work/store" "$work/run" "$work/log"
# On every address, as Slurm listens there (see tests/integration/cluster_fixture.sh).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }
with_plugin="optional $BC_BUILD_DIR/spank/bubble_chamber.so store=$work/store/node.lmdb monitor=$BC_BUILD_DIR/cgroup_monitor/bc-monitor interval=1 rundir=$work/run log=$work/log/monitor.log"
echo "$with_plugin" >"$work/plugstack.with"
echo "$with_plugin bpf_task_wait_ms=0" >"$work/plugstack.nowait"
echo "$with_plugin bpf=off" >"$work/plugstack.off"
# A node where the events fail to load: an object the verifier refuses at its instruction limit, as a kernel
# update did to ours once. A copy of its own, so no memory of an earlier run applies to it.
cp "$BC_BUILD_DIR/cgroup_monitor/bpf/bc_events_too_complex.bpf.o" "$work/refused.bpf.o"
echo "$with_plugin bpf_object=$work/refused.bpf.o" >"$work/plugstack.failing"
: >"$work/plugstack.without"
"$BC_SRC_DIR/scripts/slurm-cluster.sh" start "$work/cluster" --node bcbench --ctld-port "$(free_port)" \
  --slurmd-port "$(free_port)" --plugstack "$work/plugstack.with" --slurmd-debug verbose >/dev/null
trap '"$BC_SRC_DIR/scripts/slurm-cluster.sh" stop "$work/cluster"' EXIT
export SLURM_CONF=$work/cluster/slurm.conf

ms() { python3 -c 'import time; print(time.monotonic_ns()//1000)'; }
run_srun() {  # prints microseconds for one `srun true`
  local t0 t1; t0=$(ms); srun -n1 true; t1=$(ms); echo $((t1 - t0))
}
srun -n1 true  # warm up caches and the node
# The first job where the events fail: its monitor pays the one refusal, its task waits its bounded time.
cp "$work/plugstack.failing" "$work/cluster/plugstack.conf"
log_lines_before=$(wc -l <"$work/cluster/log/slurmd.log")
run_srun >"$work/failing_first.us"
first_failing_timeouts=$(tail -n +"$((log_lines_before + 1))" "$work/cluster/log/slurmd.log" | grep -c "task not handed to the monitor" || true)
for _ in $(seq 200); do ls "$work"/run/*.pid >/dev/null 2>&1 || break; sleep 0.1; done
: >"$work/with.us"; : >"$work/without.us"; : >"$work/nowait.us"; : >"$work/failing.us"
for i in $(seq "$rounds"); do
  cp "$work/plugstack.without" "$work/cluster/plugstack.conf"; run_srun >>"$work/without.us"
  cp "$work/plugstack.with" "$work/cluster/plugstack.conf"; run_srun >>"$work/with.us"
  cp "$work/plugstack.nowait" "$work/cluster/plugstack.conf"; run_srun >>"$work/nowait.us"
  cp "$work/plugstack.failing" "$work/cluster/plugstack.conf"; run_srun >>"$work/failing.us"
done
warm_waits=$(grep -c "tracked by the monitor after" "$work/cluster/log/slurmd.log" || true)

# The first job on an idle node: its monitor loads the BPF programs while the task waits. Each round waits
# until every earlier monitor is gone (the last one unpins the programs).
cold_rounds=${BC_BENCH_COLD_ROUNDS:-5}
cp "$work/plugstack.with" "$work/cluster/plugstack.conf"
: >"$work/cold.us"
for i in $(seq "$cold_rounds"); do
  for _ in $(seq 100); do ls "$work"/run/*.pid >/dev/null 2>&1 || break; sleep 0.1; done
  run_srun >>"$work/cold.us"
done

# Monitor cost on a job like the quickstart demo, 10 s long with a busy child and 20 sleepers: with the events
# working, failing (remembered: no load) and off.
cost_job() {  # cost_job PLUGSTACK OUT.json
  cp "$1" "$work/cluster/plugstack.conf"
  local job
  job=$(sbatch --parsable -n1 -o /dev/null --wrap "for i in \$(seq 20); do sleep 10 & done; timeout 10 sh -c 'while :; do :; done'; wait")
  while squeue -h -j "$job" 2>/dev/null | grep -q .; do sleep 0.5; done
  for _ in $(seq 50); do [ -f "$work/run/job_$job.pid" ] || break; sleep 0.2; done
  "$BC_BUILD_DIR/sacct_ext/bcacct" --store "$work/store/node.lmdb" -j "$job" --json >"$2"
}
cost_rounds=${BC_BENCH_COST_ROUNDS:-3}
for i in $(seq "$cost_rounds"); do
  cost_job "$work/plugstack.with" "$work/job.with.$i.json"
  cost_job "$work/plugstack.failing" "$work/job.failing.$i.json"
  cost_job "$work/plugstack.off" "$work/job.off.$i.json"
done
cp "$work/plugstack.with" "$work/cluster/plugstack.conf"

python3 - "$work" "$rounds" "$warm_waits" "$cost_rounds" "$first_failing_timeouts" <<'PY'
import json, re, statistics, sys
work, rounds, warm_waits, cost_rounds, first_failing_timeouts = sys.argv[1], *map(int, sys.argv[2:])
def load(name): return [int(x) / 1000.0 for x in open(f"{work}/{name}.us").read().split()]
w, wo, nw, cold = load("with"), load("without"), load("nowait"), load("cold")
failing, failing_first = load("failing"), load("failing_first")
mw, mwo, mnw, mf = statistics.median(w), statistics.median(wo), statistics.median(nw), statistics.median(failing)
print(f"BENCH spank_srun_true_median_without {mwo:.1f} ms")
print(f"BENCH spank_srun_true_median_with {mw:.1f} ms")
print(f"BENCH spank_srun_true_median_with_no_task_wait {mnw:.1f} ms")
print(f"BENCH spank_added_latency_median {mw - mwo:.1f} ms")
# Where the events fail to load (remembered on the node): the goal is at most 50 ms over no plugin.
print(f"BENCH spank_srun_true_median_bpf_failing {mf:.1f} ms")
print(f"BENCH spank_added_latency_bpf_failing_median {mf - mwo:.1f} ms")
print(f"BENCH spank_srun_true_first_job_bpf_failing {failing_first[0]:.1f} ms")
print(f"BENCH spank_task_handoff_added_latency_median {mw - mnw:.1f} ms")
print(f"BENCH spank_srun_true_ratio {mw / mwo:.3f} x")
print(f"BENCH spank_srun_true_first_job_on_node_median {statistics.median(cold):.1f} ms")
# Each task's own wait for its monitor, from the plugin's log line (slurmd at debug level verbose).
waits = [float(x) for x in re.findall(r"bubble-chamber: job \d+: task \d+ tracked by the monitor after ([\d.]+) ms",
                                       open(f"{work}/cluster/log/slurmd.log").read())]
warm, first = waits[:warm_waits], waits[warm_waits:]
if warm:
    print(f"BENCH spank_task_wait_median {statistics.median(warm):.2f} ms")
    print(f"BENCH spank_task_wait_max {max(warm):.2f} ms")
if first:
    print(f"BENCH spank_task_wait_first_job_on_node_median {statistics.median(first):.2f} ms")
late = len(re.findall(r"task not handed to the monitor", open(f"{work}/cluster/log/slurmd.log").read()))
print(f"BENCH spank_task_handoff_timeouts {late - first_failing_timeouts} count")
print(f"BENCH spank_task_handoff_timeouts_first_job_bpf_failing {first_failing_timeouts} count")
# The plugin's own time inside slurmstepd at step start, from its log line.
inplugin = [float(x) for x in re.findall(r"bubble-chamber: job \d+: monitor (?:started|already running) \(([\d.]+) ms\)",
                                          open(f"{work}/cluster/log/slurmd.log").read())]
if inplugin:
    print(f"BENCH spank_in_plugin_start_median {statistics.median(inplugin):.2f} ms")
    print(f"BENCH spank_in_plugin_start_max {max(inplugin):.2f} ms")
# Medians of the cost jobs; the spread says what noise is.
costs = {}
for name, suffix in (("with", ""), ("failing", "_bpf_failing"), ("off", "_bpf_off")):
    jobs = [json.load(open(f"{work}/job.{name}.{i}.json"))["job"] for i in range(1, cost_rounds + 1)]
    cpu = [j["monitor_cpu_seconds"] for j in jobs]
    costs[name] = cpu
    print(f"BENCH monitor_cpu_seconds_10s_job{suffix} {statistics.median(cpu):.3f} s")
    print(f"BENCH monitor_cpu_seconds_10s_job{suffix}_min {min(cpu):.3f} s")
    print(f"BENCH monitor_cpu_seconds_10s_job{suffix}_max {max(cpu):.3f} s")
    print(f"BENCH monitor_max_rss{suffix} {statistics.median(j['monitor_max_rss_bytes'] for j in jobs) / 1048576:.1f} MiB")
    if name == "with":
        print(f"BENCH monitor_cpu_share_of_core {statistics.median(cpu) / 10.0 * 100:.3f} %")
print(f"BENCH monitor_cpu_bpf_failing_vs_off {statistics.median(costs['failing']) / statistics.median(costs['off']):.3f} x")
print(f"\n{rounds} rounds each; srun true with plugin: median {mw:.1f} ms (min {min(w):.1f}), without: {mwo:.1f} ms "
      f"(min {min(wo):.1f}), events failing: {mf:.1f} ms (min {min(failing):.1f})")
PY
