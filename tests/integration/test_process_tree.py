"""sbatch a job with a known process tree; bcacct must list every process with true numbers."""
import json
import os
import time

from bclib import Cluster, within

c = Cluster()
tag = f"tree-{time.time_ns()}"
out = os.path.join(c.jobs_dir, tag)
os.makedirs(out)
os.chmod(out, 0o777)
MIB = 1024 * 1024
script = f"""#!/bin/bash
T={c.testload}
$T busy 3 {out}/busy.json &
$T write {out}/data 67108864 1.0 {out}/write.json &
$T alloc 200 2 {out}/alloc.json &
sh -c 'sleep 1.2; true' &
wait
"""
job = c.sbatch(script, "-n1", "-J", "bc-tree")
slurm_view = c.job_state(job)

# While the job runs: the monitor must exist and must not be inside any of the job's cgroups.
monitor_cgroups = None
deadline = time.time() + 20
while time.time() < deadline and monitor_cgroups is None:
    pid = c.monitor_pid(job)
    if pid:
        try:
            monitor_cgroups = open(f"/proc/{pid}/cgroup").read()
        except OSError:
            pass
    time.sleep(0.05)
assert monitor_cgroups is not None, "no monitor appeared for the job"
# The job's own cgroup files, read while it runs, are the truth for its allocation.
import glob
job_limit = job_cpus = None
for limit_file in glob.glob(f"/sys/fs/cgroup/memory/slurm_*/uid_*/job_{job}/memory.limit_in_bytes"):
    job_limit = int(open(limit_file).read())
for cpus_file in glob.glob(f"/sys/fs/cgroup/cpuset/slurm_*/uid_*/job_{job}/cpuset.cpus"):
    text = open(cpus_file).read().strip()
    job_cpus = sum(int(r.split("-")[-1]) - int(r.split("-")[0]) + 1 for r in text.split(",") if r)
assert job_limit and job_cpus, "the job's memory and cpuset cgroups exist while it runs"
assert f"/job_{job}" not in monitor_cgroups, f"monitor sits in the job's cgroup:\n{monitor_cgroups}"
print("ok monitor outside the job's cgroups")

state = c.wait_job(job)
assert state["JobState"] == "COMPLETED" and state["ExitCode"] == "0:0", state
lingered = c.wait_monitor_gone(job)
print(f"ok monitor gone {lingered:.2f}s after the job was seen complete")

data = c.bcacct_json(job)
print(json.dumps(data["job"], indent=1))
procs = data["processes"]
for p in procs:
    print(p["pid"], p["ppid"], p["step"], p["command"], p["argv"], p["cpu_seconds"], p["max_rss_bytes"], p["write_bytes"])

truth = {name: json.load(open(f"{out}/{name}.json")) for name in ("busy", "write", "alloc")}
by_pid = {p["pid"]: p for p in procs}

# Every workload process is there, with its argv and the right parent.
# Slurm runs the batch script as "/bin/bash .../slurm_script", so its comm is "slurm_script".
batch_shell = [p for p in procs if p["step"] == "batch" and p["argv"][:1] == ["/bin/bash"]
               and p["argv"][1].endswith("/slurm_script")]
assert len(batch_shell) == 1, f"expected one batch shell, got {batch_shell}"
shell_pid = batch_shell[0]["pid"]
for name, t in truth.items():
    assert t["pid"] in by_pid, f"{name} process {t['pid']} missing"
    p = by_pid[t["pid"]]
    assert p["ppid"] == shell_pid == t["ppid"], f"{name}: ppid {p['ppid']}, truth {t['ppid']}"
    assert p["argv"][1] == name, p["argv"]
    assert p["step"] == "batch", p
    assert p["end"] is not None and p["start"] < p["end"], p

# The short-lived tree: sh -> sleep, both seen, linked.
sh = [p for p in procs if p["command"] == "sh" and p["argv"][:2] == ["sh", "-c"]]
sleep = [p for p in procs if p["command"] == "sleep"]
assert len(sh) == 1 and len(sleep) == 1, (sh, sleep)
assert sh[0]["ppid"] == shell_pid and sleep[0]["ppid"] == sh[0]["pid"]
print("ok process tree and ppid links")

# Numbers within 10% of what the processes themselves measured.
within(by_pid[truth["busy"]["pid"]]["cpu_seconds"], truth["busy"]["cpu_seconds"], 0.10, "busy CPU seconds")
within(by_pid[truth["write"]["pid"]]["write_bytes"], truth["write"]["bytes_written"], 0.10, "write_bytes")
within(by_pid[truth["alloc"]["pid"]]["max_rss_bytes"], truth["alloc"]["vm_hwm_bytes"], 0.10, "MaxRSS")
assert truth["alloc"]["vm_hwm_bytes"] >= 200 * MIB

# Job totals: the cgroup CPU covers at least what the workloads burned; I/O sums the processes.
j = data["job"]
assert j["id"] == job and j["end"] is not None
assert j["cpu_seconds"] >= 0.95 * sum(t["cpu_seconds"] for t in truth.values()), j
within(j["write_bytes"], truth["write"]["bytes_written"], 0.10, "job write_bytes")
assert j["max_rss_bytes"] >= 200 * MIB, j
assert "batch" in j["steps"], j
# What the job asked for, against Slurm's own view of it.
assert j["name"] == "bc-tree", j
assert j["alloc_cpus"] == int(slurm_view["NumCPUs"]), (j, slurm_view["NumCPUs"])
assert j["alloc_cpus"] == job_cpus, (j, job_cpus)
assert j["mem_limit_bytes"] == (job_limit if job_limit < 1 << 62 else None), (j, job_limit)
assert 0 < j["cpu_efficiency"] <= 1.05, j
print(f"ok name, {j['alloc_cpus']} CPUs, {j['mem_limit_bytes']} bytes limit, efficiency {j['cpu_efficiency']:.3f}")

# --tree shows the same hierarchy: sleep indented under sh, sh under the batch shell.
tree = c.bcacct("-j", str(job), "--tree").stdout
print(tree)
lines = tree.splitlines()
def line_of(pid):
    found = [i for i, l in enumerate(lines) if f" {pid} " in l or l.lstrip("│├└─ ").startswith(f"{pid} ")]
    assert found, f"pid {pid} not in tree"
    return found[0]
def depth(i):
    return len(lines[i]) - len(lines[i].lstrip(" │├└─"))
shell_i, sh_i, sleep_i = line_of(shell_pid), line_of(sh[0]["pid"]), line_of(sleep[0]["pid"])
assert shell_i < sh_i < sleep_i and depth(shell_i) < depth(sh_i) < depth(sleep_i), tree
assert "sh -c sleep 1.2; true" in lines[sh_i]
print("ok --tree nests sleep under sh under the batch shell")
