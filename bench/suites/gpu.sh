#!/usr/bin/env bash
# summary: the monitor's cost per sample with the NVML path on and off; on a GPU node, what NVML lists against
# nvidia-smi --query-compute-apps. Without a GPU it runs against the fake NVML of tests/gpu (8 GPUs, one MIG).
# Knobs: BC_BENCH_PROCESSES (64), BC_BENCH_ROUNDS (50), BC_NVML (the library; default libnvidia-ml.so.1 when
# nvidia-smi is there, else the fake).
set -euo pipefail
: "${BC_BUILD_DIR:?run through ./bench/run.sh}"
bench="$BC_BUILD_DIR/cgroup_monitor/bench-monitor/bc-gpu-bench"
procs=${BC_BENCH_PROCESSES:-64}
rounds=${BC_BENCH_ROUNDS:-50}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if command -v nvidia-smi >/dev/null && [ -z "${BC_NVML:-}" ]; then
  # A real GPU: NVML's process list against nvidia-smi's (CUDA-less: whatever runs on the GPUs now).
  echo "== NVML on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) ($(nvidia-smi -L | wc -l) GPUs)"
  "$bench" libnvidia-ml.so.1 --list | sort >"$work/ours"
  nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits |
    tr -d ',' | sort >"$work/smi"
  echo "-- ours (pid uuid MiB)"; cat "$work/ours"
  echo "-- nvidia-smi"; cat "$work/smi"
  echo "BENCH gpu_processes_nvidia_smi $(wc -l <"$work/smi") count"
  echo "BENCH gpu_processes_matching $(comm -12 "$work/ours" "$work/smi" | wc -l) count"
  exec "$bench" libnvidia-ml.so.1 "$procs" "$rounds"
fi

library=${BC_NVML:-$BC_BUILD_DIR/tests/gpu/libbc_fake_nvml.so}
echo "== no GPU here: the fake NVML ($library), $procs processes on 8 GPUs, one in MIG mode"
export BC_FAKE_NVML_SCRIPT="$work/script" BC_GPU_BENCH_PIDS="$work"
{
  for i in 0 1 2 3 4 5 6; do echo "gpu $i $((7 - i)) GPU-bench-$i 85899345920"; done
  echo "gpu 7 0 GPU-bench-mig 85899345920 mig"
  echo "mig 7 1 MIG-bench-1 10737418240"
  for i in 0 1 2 3 4 5 6; do echo "util $i $((40 + i * 5))"; echo "used $i $((i + 1))073741824"; echo "power $i 250000"; done
  for ((p = 0; p < procs; p++)); do
    dev=$((p % 8)); [ "$dev" = 7 ] && dev=7/1
    echo "proc $dev pidfile=$work/$p 1073741824 $((p % 100))"
  done
} >"$BC_FAKE_NVML_SCRIPT"
"$bench" "$library" "$procs" "$rounds"
