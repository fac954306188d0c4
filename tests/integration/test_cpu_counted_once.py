"""Every CPU second counted once, and the job's span is its processes': the processes' CPU must add up to the job's, as the kernel counted it in
the job's cgroup, for the shapes that broke that in the field, with events and with bpf=off:
  - wrapper chains (timeout, sh -c, env, nested shells) whose innermost process is the busy one, each
    ending within one sampling interval of its parent: the parent was credited with a child's CPU as last
    sampled, and what the grandchild did after that was charged twice;
  - a two-thread process and a shell loop that end at once, and srun -n2 tasks: their last interval was
    lost, as the processes were reaped by slurmstepd before a sample could see their final figures;
  - hundreds of short processes, each too short to be sampled.

The job's Start and End are its first process's start and its last process's end, never the monitor's
ticks, so its Elapsed agrees with Slurm's (whole seconds, so up to 1 s apart, plus the moments before the
first process and after the last: Slurm counts from the allocation to the step's completion).

Tolerance: 3% of the job's CPU, or 0.05 s for a small job. The cgroup also holds slurmstepd and the
plugin's hooks (a few tens of milliseconds per step), which no process record holds; the sampler reads
/proc in clock ticks of 10 ms. The interval is 1 s here, so a lost last interval would miss by far more.
"""
import os
import time
from datetime import datetime

from bclib import Cluster
from eventlib import job_dir, run_job

c = Cluster()
good = open(os.path.join(c.work, "plugstack.good")).read().strip()
T = c.testload


def workload(out):
    return f"""#!/bin/bash
timeout 60 sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'
env BC_TEST=1 bash -c 'bash -c "{T} threads 2 1.0 {out}/threads.json"'
sh -c 'sh -c "{T} busy 0.5 {out}/busy.json"; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'
for i in $(seq 300); do /bin/true; done
srun -n2 {T} threads 1 0.7 /dev/null
"""


def check(mode):
    out = job_dir(c, f"once-{mode}")
    c.plugstack(f"{good} interval=1{' bpf=off' if mode == 'bpf=off' else ''}\n")
    try:
        job, state, data = run_job(c, workload(out), "-n2")
    finally:
        c.restore_plugstack()
    assert state["JobState"] == "COMPLETED" and state["ExitCode"] == "0:0", state
    j = data["job"]
    procs = data["processes"]
    if mode == "events":
        assert j["events_unavailable"] is None, j["events_unavailable"]
    job_cpu = j["cpu_seconds"]
    summed = sum(p["cpu_seconds"] for p in procs)
    by_command = {}
    for p in procs:
        by_command[p["command"]] = by_command.get(p["command"], 0) + p["cpu_seconds"]
    print(f"{mode}: job {job}, cgroup CPU {job_cpu:.3f} s, {len(procs)} processes summing to {summed:.3f} s "
          f"({summed / job_cpu:.3f}x)")
    print("  by command:", {k: round(v, 3) for k, v in sorted(by_command.items(), key=lambda e: -e[1])[:10]})
    assert job_cpu > 3.0, j  # the workload burns about 4.5 s: the cgroup saw it
    tolerance = max(0.03 * job_cpu, 0.05)
    assert abs(summed - job_cpu) <= tolerance, (
        f"{mode}: the processes sum to {summed:.3f} s, the job used {job_cpu:.3f} s (tolerance {tolerance:.3f} s)")
    print(f"ok {mode}: within {abs(summed - job_cpu):.3f} s of the job's CPU")
    check_span(mode, state, data)


def epoch(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def slurm_epoch(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


def check_span(mode, state, data):
    j, procs = data["job"], data["processes"]
    first = min(epoch(p["start"]) for p in procs)
    last = max(epoch(p["end"]) for p in procs)
    assert abs(epoch(j["start"]) - first) < 0.002, (j["start"], first)
    assert abs(epoch(j["end"]) - last) < 0.002, (j["end"], last)
    elapsed = last - first
    slurm_elapsed = slurm_epoch(state["EndTime"]) - slurm_epoch(state["StartTime"])
    print(f"{mode}: Start {j['start']} (Slurm {state['StartTime']}), Elapsed {elapsed:.2f} s (Slurm {slurm_elapsed:.0f} s)")
    assert abs(elapsed - slurm_elapsed) <= 1.5, (elapsed, slurm_elapsed)


check("events")
check("bpf=off")
