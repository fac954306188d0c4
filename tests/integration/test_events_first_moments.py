"""eBPF events from a job's very first moment (issue 4: "a process that lives 1 ms is accounted exactly"): the
plugin hands each task to the monitor before its exec, so a batch script and an srun task whose first command
is /bin/true, and a sh -c tree at t=0, show with their true ppid, argv and exit codes, for sbatch and srun."""
import time

from bclib import Cluster
from eventlib import job_dir, require_events

c = Cluster()


def truth_text(path):
    with open(path) as f:
        return f.read().strip()


def srun_job(*args):
    """Runs srun under a unique job name; returns (exit status, job id) from Slurm's record of the job."""
    name = f"first-{time.time_ns()}"
    r = c.run("srun", "-n1", "-J", name, *args, check=False)
    jobs = c.run("scontrol", "show", "job", "-o").stdout.splitlines()
    ids = [int(l.split("JobId=")[1].split()[0]) for l in jobs if f" JobName={name} " in l]
    assert len(ids) == 1, (name, jobs)
    return r.returncode, ids[0]


def show(data):
    for p in data["processes"]:
        print(" ", p["pid"], p["ppid"], p["step"], p["argv"], p["exit_code"], p["exact"], p["cpu_seconds"])
    print("  lost:", data["job"]["lost_events"], data["job"]["lost_events_by_cause"])


def check_exact(p):
    assert p["exact"] and p["end"] is not None and p["start"] <= p["end"], p
    assert p["cpu_seconds"] > 0 and p["max_rss_bytes"] > 0, p


def check_tree(procs, sh_pid, parent_pid, inner, step, argv0="sh"):
    """sh -c inner (pid from its own $$) under parent_pid: /bin/true, sh -c "exit 3", then exit 4."""
    by_pid = {p["pid"]: p for p in procs}
    assert sh_pid in by_pid, f"the sh -c tree (pid {sh_pid}) is missing"
    sh = by_pid[sh_pid]
    assert sh["argv"] == [argv0, "-c", inner] and sh["ppid"] == parent_pid, (sh, parent_pid)
    assert sh["exit_code"] == 4 and sh["step"] == step, sh
    children = sorted((p for p in procs if p["ppid"] == sh_pid), key=lambda p: p["start"])
    assert [p["argv"] for p in children] == [["/bin/true"], ["sh", "-c", "exit 3"]], children
    assert [p["exit_code"] for p in children] == [0, 3], children
    for p in children + [sh]:
        check_exact(p)


# ---- sbatch: the batch script's first command is /bin/true, then a sh -c tree ----
out = job_dir(c, "first")
inner = f'echo $$ > {out}/sh.pid; /bin/true; sh -c "exit 3"; exit 4'
script = f"""#!/bin/sh
/bin/true
sh -c '{inner}'
echo $$ > {out}/batch.pid
"""
job = c.sbatch(script, "-n1")
state = c.wait_job(job)
c.wait_monitor_gone(job, timeout=15)
data = c.bcacct_json(job)
require_events(data)
print("sbatch job", job, state["JobState"])
show(data)
assert data["job"]["lost_events"] == 0, data["job"]
procs = data["processes"]
batch_pid = int(truth_text(f"{out}/batch.pid"))
shell = [p for p in procs if p["pid"] == batch_pid]
assert len(shell) == 1 and shell[0]["step"] == "batch" and shell[0]["argv"][0] == "/bin/sh", shell
check_exact(shell[0])
assert shell[0]["exit_code"] == 0, shell
first = sorted((p for p in procs if p["ppid"] == batch_pid), key=lambda p: p["start"])
assert first and first[0]["argv"] == ["/bin/true"] and first[0]["exit_code"] == 0, first
check_exact(first[0])
print("ok sbatch: the script's first command, /bin/true, with its ppid, argv and exit code")
check_tree(procs, int(truth_text(f"{out}/sh.pid")), batch_pid, inner, "batch")
print("ok sbatch: the sh -c tree after it, exact")

# ---- srun: a job whose only task is /bin/true ----
rc, job = srun_job("/bin/true")
assert rc == 0, rc
c.wait_monitor_gone(job, timeout=15)
data = c.bcacct_json(job)
require_events(data)
print("srun /bin/true job", job)
show(data)
assert data["job"]["lost_events"] == 0, data["job"]
trues = [p for p in data["processes"] if p["argv"] == ["/bin/true"]]
assert len(trues) == 1, data["processes"]
t = trues[0]
assert t["step"] == "0" and t["exit_code"] == 0 and t["exit_signal"] == 0, t
check_exact(t)
# Its parent is the step's slurmstepd, which the monitor does not record as a job process.
assert t["ppid"] > 1 and t["ppid"] not in {p["pid"] for p in data["processes"]}, t
print("ok srun /bin/true: one exact record, exit 0, parent slurmstepd")

# ---- srun: a sh -c tree as the task itself ----
out = job_dir(c, "first-srun")
inner = f'echo $$ > {out}/sh.pid; /bin/true; sh -c "exit 3"; exit 4'
rc, job = srun_job("sh", "-c", inner)
assert rc == 4, rc
c.wait_monitor_gone(job, timeout=15)
data = c.bcacct_json(job)
print("srun sh -c job", job)
show(data)
assert data["job"]["lost_events"] == 0, data["job"]
sh_pid = int(truth_text(f"{out}/sh.pid"))
sh = [p for p in data["processes"] if p["pid"] == sh_pid]
assert len(sh) == 1, data["processes"]
check_tree(data["processes"], sh_pid, sh[0]["ppid"], inner, "0", argv0="/usr/bin/sh")  # srun resolves argv[0]
assert sh[0]["ppid"] not in {p["pid"] for p in data["processes"]}, sh  # slurmstepd
print("ok srun sh -c: the task and its children, exact, with exit codes 4, 0, 3")

handed = [l for l in open(c.monitor_log) if f"job {job}: finished" in l]
assert handed and "1 tasks handed over" in handed[-1], handed
print("ok the monitor logs the task it was handed:", handed[-1].strip())
