"""srun -n2 steps inside one batch job are merged under that job, with their step ids."""
import time

from bclib import Cluster

c = Cluster()
script = f"""#!/bin/bash
srun -n2 {c.testload} busy 0.8 /dev/null
srun -n1 sleep 1
"""
job = c.sbatch(script, "-n2")
state = c.wait_job(job)
assert state["JobState"] == "COMPLETED" and state["ExitCode"] == "0:0", state
c.wait_monitor_gone(job)
data = c.bcacct_json(job)
steps = {}
for p in data["processes"]:
    steps.setdefault(p["step"], []).append(p)
print({s: [p["command"] for p in ps] for s, ps in steps.items()})
loads = [p for p in steps.get("0", []) if p["command"] == "bc-testload"]
assert len(loads) == 2, f"step 0 should have 2 tasks: {steps.get('0')}"
assert len({p["pid"] for p in loads}) == 2
assert any(p["command"] == "sleep" for p in steps.get("1", [])), steps.get("1")
assert any(p["command"] == "slurm_script" for p in steps.get("batch", [])), steps.get("batch")
assert set(data["job"]["steps"]) >= {"0", "1", "batch"}, data["job"]["steps"]
assert len(data["job"]["nodes"]) == 1
print("ok steps 0, 1 and batch merged under job", job)

# One monitor per job per node: the batch step started it, the srun steps found it.
started = [l for l in open(c.monitor_log) if f"job {job}: started" in l]
assert len(started) == 1, f"expected exactly one monitor for job {job}, log has: {started}"
print("ok one monitor served the batch step and both srun steps")
