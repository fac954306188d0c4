"""Task ranks and thread counts on the real cluster, with events and with bpf=off.

srun -n4: every task prints its rank (SLURM_PROCID) and its pid, starts a helper and prints the helper's pid
too. Every one of those pids must carry its task's rank in bcacct's JSON and `-o Task`, and the process
table gets a Task column. A program that runs N threads beside its main one for 2 s shows N + 1."""
import os
import re

from bclib import Cluster

c = Cluster()
out = os.path.join(c.jobs_dir, f"ranks-{os.getpid()}")
os.makedirs(out, exist_ok=True)
os.chmod(out, 0o777)
N = 6
script = f"""#!/bin/bash
srun -n4 --overcommit -o {out}/rank.%t sh -c 'echo "task $SLURM_PROCID $$"; sleep 2 & echo "helper $SLURM_PROCID $!"; wait'
srun -n1 {c.testload} threads {N} 2 {out}/threads.json
"""


def printed_ranks():
    """pid -> rank, as the tasks printed them."""
    ranks = {}
    for rank in range(4):
        for line in open(os.path.join(out, f"rank.{rank}")):
            kind, procid, pid = line.split()
            assert int(procid) == rank, line
            ranks[int(pid)] = rank
    return ranks


def check(mode):
    job = c.sbatch(script, "-n4", "--overcommit")  # 4 tasks on this host's 2 CPUs
    state = c.wait_job(job)
    assert state["JobState"] == "COMPLETED" and state["ExitCode"] == "0:0", state
    c.wait_monitor_gone(job)
    data = c.bcacct_json(job)
    procs = {p["pid"]: p for p in data["processes"]}
    truth = printed_ranks()
    assert len(truth) == 8, truth
    for pid, rank in truth.items():
        assert pid in procs, f"{mode}: pid {pid} (rank {rank}) not recorded: {sorted(procs)}"
        assert procs[pid]["task"] == rank, f"{mode}: pid {pid} ({procs[pid]['command']}) has task " \
                                           f"{procs[pid]['task']}, printed rank {rank}"
    step0 = [p for p in data["processes"] if p["step"] == "0"]
    assert {p["task"] for p in step0} == {0, 1, 2, 3}, [(p["command"], p["task"]) for p in step0]
    # The batch script is task 0 of the batch step; nothing there is another rank.
    assert {p["task"] for p in data["processes"] if p["step"] == "batch"} <= {0}, data["processes"]
    print(f"ok {mode}: the 4 tasks of srun -n4 and their helpers carry the ranks they printed")

    listed = c.bcacct("-j", str(job), "-o", "PID,Task", "-P", "-n").stdout
    rows = dict(line.split("|") for line in listed.split("\n") if line)
    for pid, rank in truth.items():
        assert rows.get(str(pid)) == str(rank), (pid, rank, listed)
    report = c.bcacct("-j", str(job)).stdout
    header = next(line for line in report.split("\n") if re.match(r"\s*PID\s+PPID\s", line))
    assert re.search(r"\bStep\s+Task\b", header), header
    print(f"ok {mode}: bcacct -o Task and the process table's Task column")

    threads = [p for p in data["processes"] if p["argv"][1:3] == ["threads", str(N)]]
    assert len(threads) == 1, [p["argv"] for p in data["processes"]]
    assert threads[0]["max_threads"] == N + 1, threads[0]
    assert all(p["max_threads"] >= 1 for p in data["processes"] if p["command"] == "sleep"), data["processes"]
    listed = c.bcacct("-j", str(job), "-o", "PID,MaxThreads", "-P", "-n").stdout
    assert f"{threads[0]['pid']}|{N + 1}" in listed.split("\n"), listed
    print(f"ok {mode}: {N} threads beside the main one show as {N + 1}, in JSON and -o MaxThreads")


good = open(os.path.join(c.work, "plugstack.good")).read().strip()
check("events")
c.plugstack(good + " bpf=off\n")
try:
    check("bpf=off")
finally:
    c.restore_plugstack()
