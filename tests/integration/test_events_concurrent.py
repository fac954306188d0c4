"""Two concurrent jobs on one node share the node's BPF programs; each sees only its own processes and files."""
from bclib import Cluster
from eventlib import job_dir, require_events, truth

c = Cluster()
dirs = [job_dir(c, f"evconc{i}") for i in range(2)]
for d in dirs:
    for name in ("once", "often", "twice"):
        open(f"{d}/{name}", "w").close()
jobs = []
# Each job waits (up to a minute) for the other to start before its load, and for the other's load to end
# before it exits, so the two overlap even when Slurm starts the second a few seconds late (a CPU still
# held by an earlier test's completing job). `[ -e ]` is a stat, not an open: it adds no file to either job.
for i, d in enumerate(dirs):
    other = dirs[1 - i]
    script = f"""#!/bin/bash
touch {d}/started
for _ in $(seq 600); do [ -e {other}/started ] && break; sleep 0.1; done
sleep 1
{c.testload} files {d} {d}/files.json
touch {d}/loaded
for _ in $(seq 600); do [ -e {other}/loaded ] && break; sleep 0.1; done
sleep 0.5
"""
    jobs.append(c.sbatch(script, "-n1"))
for job in jobs:
    state = c.wait_job(job)
    assert state["JobState"] == "COMPLETED", state
for job in jobs:
    c.wait_monitor_gone(job, timeout=15)
datas = [c.bcacct_json(job) for job in jobs]
for data in datas:
    require_events(data)
starts = [d["job"]["start"] for d in datas]
ends = [d["job"]["end"] for d in datas]
assert max(starts) < min(ends), f"the jobs did not overlap: {starts} {ends}"
for i, data in enumerate(datas):
    mine, other = dirs[i], dirs[1 - i]
    t, t_other = truth(f"{mine}/files.json"), truth(f"{other}/files.json")
    pids = {p["pid"] for p in data["processes"]}
    assert t["pid"] in pids and t_other["pid"] not in pids, (t["pid"], t_other["pid"], pids)
    paths = {f["path"] for f in data["files"]}
    assert f"{mine}/often" in paths, paths
    assert not [p for p in paths if p.startswith(other)], [p for p in paths if p.startswith(other)]
    often = [f for f in data["files"] if f["path"] == f"{mine}/often"][0]
    assert often["opens"] == 10000, often
    print(f"ok job {jobs[i]} sees only its own processes and files")
