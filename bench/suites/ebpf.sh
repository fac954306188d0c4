#!/usr/bin/env bash
# summary: eBPF events cost: the verifier's cost per program, opens, fork+exec, connects, make -j2 (bare / our collector / libbpf-tools), the kernel's floor (empty programs), unmonitored processes, 1 vs 32 jobs, loss at 100k events/s
# Needs root and BPF. Workloads run bare, monitored by our collector (bench/ebpf/driver, which tracks the workload
# as bc-monitor would) and under the libbpf-tools peer, in alternation, BC_BENCH_ROUNDS times; medians.
set -euo pipefail
: "${BC_BUILD_DIR:?run through ./bench/run.sh}"
[ "$(id -u)" = 0 ] || { echo "bench ebpf: needs root (loads BPF programs)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${BC_BENCH_ROUNDS:-5}
opens=${BC_BENCH_OPENS:-1000000}
work=$BC_BUILD_DIR/bench-ebpf
rm -rf "$work"; mkdir -p "$work/missing" "$work/results"

lib=$BC_BUILD_DIR/cgroup_monitor/bpf/libbc_events.a
[ -f "$lib" ] || { echo "bench ebpf: $lib not built" >&2; exit 1; }
if ! command -v opensnoop >/dev/null || ! command -v execsnoop >/dev/null; then
  echo "bench ebpf: installing libbpf-tools (the peer)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq libbpf-tools >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libbpf-tools >/dev/null; }
fi
if ! command -v perf >/dev/null; then
  echo "bench ebpf: installing linux-perf (splits the open loop's time between the kernel's dispatch and us)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq linux-perf >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; } ||
    echo "bench ebpf: linux-perf could not be installed; the perf split of the open loop is left out" >&2
fi
# The peer attaches classic tracepoints, which need tracefs; our collector uses raw tracepoints and does not.
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

cc -O2 -o "$work/openloop" "$here/ebpf/openloop.c"
cc -O2 -o "$work/forkexec" "$here/ebpf/forkexec.c"
cc -O2 -pthread -o "$work/tcpconnect" "$here/ebpf/tcpconnect.c"
g++ -std=c++20 -O2 -I"$BC_SRC_DIR/cgroup_monitor/bpf" -o "$work/driver" "$here/ebpf/driver.cpp" "$lib" \
  "$BC_BUILD_DIR/cgroup_monitor/bpf/libbc_events_memory.a" -lbpf
# Floors: empty programs on our hooks, on per-syscall tracepoints, and only the syscall tracing slow path.
clang -g -O2 -target bpf -I"/usr/include/$(gcc -print-multiarch)" -c "$here/ebpf/floor.bpf.c" -o "$work/floor.bpf.o"
cc -O2 -o "$work/floor" "$here/ebpf/floor.c" -lbpf
floor_modes="raw_all tp_exit slow_path"
drv=$work/driver
# Our side runs at the monitor's default niceness (bc-monitor --nice 10): the job wins the CPU.
ours() { "$drv" --nice 10 "$@"; }

# A small C project for make -j2: 48 translation units and a shared header.
proj=$work/proj; mkdir -p "$proj"
{
  echo '#pragma once'
  for i in $(seq 0 47); do echo "int f$i(int x);"; done
} >"$proj/common.h"
for i in $(seq 0 47); do
  cat >"$proj/u$i.c" <<EOF
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
static int table[256];
int f$i(int x) { for (int k = 0; k < 256; k++) table[k] = (k * $i + x) ^ (k << 3); int s = 0;
  for (int k = 0; k < 256; k++) s += table[k] % 7; return s; }
EOF
done
echo 'int main(void) { int s = 0;' >"$proj/main.c"
for i in $(seq 0 47); do echo "s += f$i($i);" >>"$proj/main.c"; done
echo 'return s == 42; }' >>"$proj/main.c"
sed -i '1i #include "common.h"' "$proj/main.c"
printf 'OBJS=%s main.o\nprog: $(OBJS)\n\tcc -o $@ $(OBJS)\n%%.o: %%.c common.h\n\tcc -O2 -c $< -o $@\nclean:\n\trm -f *.o prog\n' \
  "$(for i in $(seq 0 47); do printf 'u%d.o ' "$i"; done)" >"$proj/Makefile"

# run MODE NAME CMD...: MODE bare|ours|peer-open|peer-exec|peer-both; appends the workload's own figure (stdout)
# to results/NAME.MODE and the driver line to results/NAME.MODE.driver.
peer_pid=""
peer_start() {  # peer_start TOOL ARGS... (waits for its header: attached)
  local out=$work/peer.out
  : >"$out"
  "$@" >"$out" 2>&1 &
  peer_pid=$!
  for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
  sleep 0.2
}
peer_stop() {
  [ -n "$peer_pid" ] || return 0
  kill "$peer_pid" 2>/dev/null || true; wait "$peer_pid" 2>/dev/null || true
  peer_pid=""
}
trap 'peer_stop; kill $(jobs -p) 2>/dev/null || true' EXIT

run() {
  local mode=$1 name=$2; shift 2
  local out=$work/results/$name.$mode
  case $mode in
    bare) "$drv" --bare -- "$@" >>"$out" 2>>"$out.driver" ;;
    ours) ours -- "$@" >>"$out" 2>>"$out.driver" ;;
    peer-open) peer_start opensnoop; "$drv" --bare -- "$@" >>"$out" 2>>"$out.driver"; peer_stop ;;
    peer-exec) peer_start execsnoop; "$drv" --bare -- "$@" >>"$out" 2>>"$out.driver"; peer_stop ;;
    peer-both) peer_start opensnoop; local p1=$peer_pid; peer_start execsnoop
               "$drv" --bare -- "$@" >>"$out" 2>>"$out.driver"; peer_stop; peer_pid=$p1; peer_stop ;;
    floor-*) rm -f "$work/floor.ready"
             "$work/floor" "$work/floor.bpf.o" "${mode#floor-}" "$work/floor.ready" & local fp=$!
             for _ in $(seq 200); do [ -f "$work/floor.ready" ] && break; sleep 0.05; done
             "$drv" --bare -- "$@" >>"$out" 2>>"$out.driver"; kill "$fp"; wait "$fp" 2>/dev/null || true ;;
  esac
}
# wall time of the driver's child, for workloads that do not time themselves
wall_of() { sed -n 's/^DRIVER wall_us=\([0-9]*\).*/\1/p' "$1"; }

idle_pids=()
idle_start() {  # idle_start N: N other monitored jobs, each tracking a sleeping process
  local n=$1
  for k in $(seq "$n"); do
    rm -f "$work/idle.$k"
    "$drv" --nice 10 --idle --ready "$work/idle.$k" 2>/dev/null &  # not through a function: $! must be the driver
    idle_pids+=($!)
    for _ in $(seq 200); do [ -f "$work/idle.$k" ] && break; sleep 0.05; done
  done
}
idle_stop() {
  for p in "${idle_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${idle_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  idle_pids=()
}

# The verifier's cost of each program on this kernel, against the kernel's limit (our budget is a tenth of it).
"$BC_BUILD_DIR/cgroup_monitor/bc-monitor" --check-events --json --bpf-pin-dir /sys/fs/bpf/bc-bench >"$work/check.json" ||
  { echo "bench ebpf: the events do not load here:" >&2; cat "$work/check.json" >&2; exit 1; }
python3 - "$work/check.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for p in r["programs"]:
    print(f"BENCH ebpf_verified_insns_{p['name']} {p['verified_insns']} insns")
print(f"BENCH ebpf_verified_insns_max_share_of_limit {100 * max(p['verified_insns'] for p in r['programs']) / r['verifier_insn_limit']:.2f} %")
print(f"BENCH ebpf_load_ms {r['load_ms']:.1f} ms")
print(f"kernel: {r['kernel']}")
PY

echo "bench ebpf: $rounds rounds; workloads alternate bare / ours / peer; load:$(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$rounds"); do
  echo "  round $r" >&2
  # (a) opens
  run bare open "$work/openloop" "$opens"
  run ours open "$work/openloop" "$opens"
  run peer-open open "$work/openloop" "$opens"
  for m in $floor_modes; do run "floor-$m" open "$work/openloop" "$opens"; done
  # (b) fork+exec
  run bare forkexec "$work/forkexec" 2000
  run ours forkexec "$work/forkexec" 2000
  run peer-exec forkexec "$work/forkexec" 2000
  for m in $floor_modes; do run "floor-$m" forkexec "$work/forkexec" 2000; done
  # (c) connects (libbpf-tools' tcpconnect needs kprobes/fentry, which this kernel lacks: no peer)
  run bare connect "$work/tcpconnect" 50000
  run ours connect "$work/tcpconnect" 50000
  for m in $floor_modes; do run "floor-$m" connect "$work/tcpconnect" 50000; done
  # (d) make -j2
  for mode in bare ours peer-both; do
    make -s -C "$proj" clean >/dev/null
    run "$mode" make make -s -j2 -C "$proj"
  done
  # unmonitored processes on a node where another job is monitored; the peer filters on another pid
  idle_start 1
  "$drv" --bare -- "$work/openloop" "$opens" >>"$work/results/unmon.ours" 2>/dev/null
  idle_stop
  sleep 1000 & other=$!
  peer_start opensnoop -p "$other"
  "$drv" --bare -- "$work/openloop" "$opens" >>"$work/results/unmon.peer" 2>/dev/null
  peer_stop; kill "$other"; wait "$other" 2>/dev/null || true
  "$drv" --bare -- "$work/openloop" "$opens" >>"$work/results/unmon.bare" 2>/dev/null
  # 1 monitored job vs 32 (31 others, idle, each with its slot, ring and maps)
  ours -- "$work/openloop" "$opens" >>"$work/results/jobs.1" 2>/dev/null
  idle_start 31
  ours -- "$work/openloop" "$opens" >>"$work/results/jobs.32" 2>>"$work/results/jobs.32.driver"
  idle_stop
done

# Loss at 100k events/s sustained for 5 s: opens with 1 in 10 of a new path (10k names/s through the ring),
# then every open of a new path (100k ring events/s; the driver drains every 0.1 s and pumps on wakeups).
ours -- "$work/openloop" --rate 500000 100000 10 "$work/missing" >"$work/results/rate.mixed" \
  2>"$work/results/rate.mixed.driver"
ours --interval 0.1 --ring-bytes 8388608 -- "$work/openloop" --rate 500000 100000 1 "$work/missing" \
  >"$work/results/rate.names" \
  2>"$work/results/rate.names.driver"

# Our programs' own time per run, from the kernel's BPF statistics (on only for these runs: they cost two
# clock reads per program run): the sys_exit program for an unmonitored open loop (another job monitored,
# so the programs are attached) and for a monitored one. Runs of other processes on the node are included.
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q -w kernel.bpf_stats_enabled=1
prog_stats() {  # prints "run_time_ns run_cnt" of our pinned sys_exit program
  local pin; pin=$(ls -d /sys/fs/bpf/bc-bench/*/prog_sys_exit 2>/dev/null | head -1)
  [ -n "$pin" ] || { echo "0 0"; return; }
  bpftool -j prog show pinned "$pin" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("run_time_ns", 0), d.get("run_cnt", 0))'
}
idle_start 1
before=$(prog_stats); "$drv" --bare -- "$work/openloop" "$opens" >/dev/null 2>&1; after=$(prog_stats)
echo "$before $after" >"$work/results/stats.unmonitored"
idle_stop
before=$(prog_stats); ours -- "$work/openloop" "$opens" >/dev/null 2>&1; after=$(prog_stats)
echo "$before $after" >"$work/results/stats.monitored"
sysctl -q -w kernel.bpf_stats_enabled="$stats_was"

# Where the open loop's time goes, from perf's CPU-clock samples rather than wall-clock differences (which
# swing by several percent between runs here): the share in our programs and the helpers and maps they call,
# and the share in the kernel's dispatch to any program on sys_exit (what an empty program costs too). Only the
# loop's own samples count (the driver's are left out).
perf_split() {  # perf_split NAME CMD...: "ours_pct dispatch_pct" of the samples
  local data=$work/perf.$1.data; shift
  perf record -q -e cpu-clock -F 20000 -o "$data" -- "$@" >/dev/null 2>&1 || { echo "nan nan"; return; }
  perf script -i "$data" --comms openloop -F ip,sym --hide-call-graph 2>/dev/null | python3 -c '
import re, sys
ours = re.compile(r"bpf_prog_\w+_(bc_\w+|hash_step|walk_up_step|walk_down_step|threads_step)$|^(bpf_get_current_\w+|bpf_probe_read_\w+|strncpy_from_user_nofault|copy_from_kernel_nofault|__?htab_\w+|htab_\w+|lookup_nulls_elem_raw|bpf_ktime_get_boot_ns|bpf_ringbuf_\w+|bpf_loop|array_map_\w+|bpf_map_\w+)$")
dispatch = re.compile(r"^(bpf_trace_run\d|__bpf_trace_\w+|syscall_exit_work|syscall_trace_enter|trace_call_bpf)$")
n = o = d = 0
for line in sys.stdin:
    fields = line.split()
    if not fields: continue
    sym = fields[-1]
    n += 1
    if ours.search(sym): o += 1
    elif dispatch.match(sym): d += 1
print(f"{100 * o / max(n, 1):.2f} {100 * d / max(n, 1):.2f}")'
}
if command -v perf >/dev/null; then
  idle_start 1
  perf_split unmonitored "$work/openloop" "$opens" >"$work/results/perf.unmonitored"
  idle_stop
  perf_split monitored "$drv" --nice 10 -- "$work/openloop" "$opens" >"$work/results/perf.monitored"
fi

for f in "$work"/results/make.*.driver; do wall_of "$f" >"${f%.driver}"; done

python3 - "$work/results" <<'PY'
import os, re, statistics, sys
res = sys.argv[1]
def vals(name):
    p = os.path.join(res, name)
    return [float(x) for x in open(p).read().split()] if os.path.exists(p) else []
def med(name):
    v = vals(name)
    return statistics.median(v) if v else float("nan")
def mn(name):
    v = vals(name)
    return min(v) if v else float("nan")
def line(name, value, unit): print(f"BENCH {name} {value:.3f} {unit}")
rows = [("open", "ns per open+close", "open.bare", "open.ours", "open.peer-open", "opensnoop"),
        ("forkexec", "us per fork+exec", "forkexec.bare", "forkexec.ours", "forkexec.peer-exec", "execsnoop"),
        ("connect", "us per connect", "connect.bare", "connect.ours", None, None),
        ("make", "us per make -j2", "make.bare", "make.ours", "make.peer-both", "opensnoop+execsnoop"),
        ("unmonitored_open", "ns per open+close", "unmon.bare", "unmon.ours", "unmon.peer", "opensnoop -p other")]
table = []
for key, unit, b, o, p, peer in rows:
    mb, mo = med(b), med(o)
    line(f"ebpf_{key}_bare", mb, unit.split()[0])
    line(f"ebpf_{key}_ours", mo, unit.split()[0])
    line(f"ebpf_{key}_ours_vs_bare", mo / mb, "x")
    mp = med(p) if p else float("nan")
    if p:
        line(f"ebpf_{key}_peer", mp, unit.split()[0])
        line(f"ebpf_{key}_peer_vs_bare", mp / mb, "x")
        line(f"ebpf_{key}_ours_vs_peer", mo / mp, "x")
    # Minimums too: on a shared machine other work only ever adds time, so the fastest round is the cleanest.
    nb, no = mn(b), mn(o)
    line(f"ebpf_{key}_ours_vs_bare_min", no / nb, "x")
    if p:
        line(f"ebpf_{key}_peer_vs_bare_min", mn(p) / nb, "x")
    table.append((key, unit, mb, mo, mp, peer))
# The kernel's floor: the same workloads with empty programs, so the cost splits into the kernel's share
# (running any program on these hooks) and ours (what our programs do).
floors = {"raw_all": "empty programs on our five raw tracepoints",
          "tp_exit": "empty programs on syscalls:sys_exit_openat and sys_exit_connect",
          "slow_path": "syscall tracing slow path only (an empty program on syscalls:sys_exit_acct)"}
floor_table = []
for key in ("open", "forkexec", "connect"):
    mb, mo = med(f"{key}.bare"), med(f"{key}.ours")
    for mode in floors:
        mf = med(f"{key}.floor-{mode}")
        line(f"ebpf_{key}_floor_{mode}", mf, "ns" if key == "open" else "us")
        line(f"ebpf_{key}_floor_{mode}_vs_bare", mf / mb, "x")
    mf = med(f"{key}.floor-raw_all")
    # Of ours' added cost, the part an empty program on the same hooks already costs.
    if mo > mb:
        line(f"ebpf_{key}_kernel_share_of_added_cost", min(1.0, max(0.0, (mf - mb) / (mo - mb))) * 100, "%")
    floor_table.append((key, mb, mo, [med(f"{key}.floor-{m}") for m in floors]))
for name in ("unmonitored", "monitored"):
    v = vals(f"stats.{name}")
    if len(v) == 4 and v[3] > v[1]:
        line(f"ebpf_sys_exit_prog_ns_per_run_{name}_open_loop", (v[2] - v[0]) / (v[3] - v[1]), "ns")
for name in ("unmonitored", "monitored"):
    v = vals(f"perf.{name}")
    if len(v) == 2:
        line(f"ebpf_{name}_open_perf_ours_share", v[0], "%")
        line(f"ebpf_{name}_open_perf_dispatch_share", v[1], "%")
j1, j32 = med("jobs.1"), med("jobs.32")
line("ebpf_open_1_job", j1, "ns"); line("ebpf_open_32_jobs", j32, "ns"); line("ebpf_open_32_vs_1_jobs", j32 / j1, "x")
line("ebpf_open_32_vs_1_jobs_min", mn("jobs.32") / mn("jobs.1"), "x")
def driver(name):
    p = os.path.join(res, name)
    return dict(re.findall(r"(\w+)=(\d+)", open(p).read())) if os.path.exists(p) else {}
for name in ("rate.mixed", "rate.names"):
    d = driver(name + ".driver")
    rate = med(name)
    line(f"ebpf_{name.replace('.', '_')}_rate", rate, "opens/s")
    line(f"ebpf_{name.replace('.', '_')}_lost", float(d.get("lost", "nan")), "events")
    line(f"ebpf_{name.replace('.', '_')}_seen", float(d.get("opens", "nan")), "opens")
# Are our counts complete? The monitored open loop must report every open.
d = driver("open.ours.driver")
print()
print("medians (and ratios of the fastest rounds)")
print(f"{'workload':18} {'unit':20} {'bare':>10} {'ours':>10} {'peer':>10}  {'ours/bare':>15} {'peer/bare':>15}  peer")
for key, unit, mb, mo, mp, peer in table:
    b, o, p = [r for r in rows if r[0] == key][0][2:5]
    ps = f"{mp:10.1f}" if mp == mp else f"{'n/a':>10}"
    pr = f"{mp / mb:6.3f} ({mn(p) / mn(b):6.3f})" if mp == mp else f"{'n/a':>15}"
    print(f"{key:18} {unit:20} {mb:10.1f} {mo:10.1f} {ps}  {mo / mb:6.3f} ({mn(o) / mn(b):6.3f}) {pr}  {peer or 'none (needs kprobes)'}")
print(f"{'1 vs 32 jobs':18} {'ns per open+close':20} {j1:10.1f} {j32:10.1f} {'':>10}  {j32 / j1:9.3f}   (1 job / 32 jobs)")
print()
print("floors (bare run with empty programs attached): " + "; ".join(f"{k}: {v}" for k, v in floors.items()))
print(f"{'workload':18} {'bare':>10} {'ours':>10} " + " ".join(f"{k:>10}" for k in floors))
for key, mb, mo, fl in floor_table:
    print(f"{key:18} {mb:10.1f} {mo:10.1f} " + " ".join(f"{f:10.1f}" for f in fl) +
          "   ratios: " + " ".join(f"{f / mb:.3f}" for f in fl) + f"  ours {mo / mb:.3f}")
print(f"load average at the end: {open('/proc/loadavg').read().split()[:3]} (2 CPUs; other work on the machine skews ratios)")
PY
