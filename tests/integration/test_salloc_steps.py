"""salloc with sequential sruns: Slurm removes and recreates the job cgroup between steps, so each step gets a
new monitor. The job record must carry on: steps merged, and the job CPU of both steps counted."""
import json
import os
import time

from bclib import Cluster

c = Cluster()
out = os.path.join(c.jobs_dir, f"salloc-{time.time_ns()}")
os.makedirs(out)
script = (f"srun -n1 {c.testload} busy 1.0 {out}/s0.json; sleep 2.5; "
          f"srun -n1 {c.testload} busy 1.0 {out}/s1.json; echo JOBID=$SLURM_JOB_ID")
r = c.run("salloc", "-n1", "bash", "-c", script, timeout=120)
job = int([l for l in r.stdout.splitlines() if l.startswith("JOBID=")][0].split("=")[1])
c.wait_monitor_gone(job)

started = [l for l in open(c.monitor_log) if f"job {job}: started" in l]
assert len(started) == 2, f"expected a monitor per step lifetime, got {started}"
data = c.bcacct_json(job)
j = data["job"]
truth = sum(json.load(open(f"{out}/s{i}.json"))["cpu_seconds"] for i in (0, 1))
print("job:", json.dumps(j))
assert set(j["steps"]) >= {"0", "1"}, j["steps"]
assert j["end"] is not None
assert j["cpu_seconds"] >= 0.9 * truth, f"job CPU {j['cpu_seconds']} lost a step (both steps burned {truth})"
loads = [p for p in data["processes"] if p["command"] == "bc-testload"]
assert {p["step"] for p in loads} == {"0", "1"}, loads
print(f"ok two monitor lifetimes, one job: CPU {j['cpu_seconds']:.2f}s >= 90% of {truth:.2f}s")
