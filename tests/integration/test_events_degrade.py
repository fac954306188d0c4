"""Degradation: with bpf=off, and with a monitor that lacks CAP_BPF/CAP_SYS_ADMIN/CAP_PERFMON, the job still
completes, sampling recorded its processes, and the job record says why events are unavailable."""
import os

from bclib import Cluster, within
from eventlib import batch_shell, job_dir, run_job, truth

c = Cluster()
good = open(os.path.join(c.work, "plugstack.good")).read().strip()
out = job_dir(c, "evdegrade")
script = f"""#!/bin/bash
{c.testload} busy 1.5 {out}/busy.json
"""


def check(data, state, want_reason):
    assert state["JobState"] == "COMPLETED" and state["ExitCode"] == "0:0", state
    reason = data["job"]["events_unavailable"]
    assert reason and want_reason in reason, reason
    batch_shell(data)  # sampling saw the processes
    busy = [p for p in data["processes"] if p["argv"][1:2] == ["busy"]]
    assert len(busy) == 1, busy
    within(busy[0]["cpu_seconds"], truth(f"{out}/busy.json")["cpu_seconds"], 0.10, "sampled CPU of busy")
    assert busy[0]["exit_code"] is None and not busy[0]["exact"], busy  # no exit event without events
    assert data["files"] == [] and data["connections"] == [], data["files"][:3]
    print("ok:", reason)


c.plugstack(good + " bpf=off\n")
try:
    job, state, data = run_job(c, script)
finally:
    c.restore_plugstack()
check(data, state, "bpf=off")
text = c.bcacct("-j", str(job), "--files").stdout
assert "No files recorded" in text and "bpf=off" in text, text

# The same monitor, started without the capabilities BPF needs (dropped from its bounding set).
wrapper = os.path.join(out, "bc-monitor-nocap")
with open(wrapper, "w") as f:
    f.write(f"#!/bin/sh\nexec setpriv --bounding-set -bpf,-sys_admin,-perfmon "
            f"{c.build}/cgroup_monitor/bc-monitor \"$@\"\n")
os.chmod(wrapper, 0o755)
c.plugstack(good.replace(f"monitor={c.build}/cgroup_monitor/bc-monitor", f"monitor={wrapper}") + "\n")
try:
    job, state, data = run_job(c, script)
finally:
    c.restore_plugstack()
check(data, state, "events unavailable: ")
assert "bpf=off" not in data["job"]["events_unavailable"]
