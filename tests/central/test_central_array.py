"""A real Slurm job array (sbatch --array=1-3): every task is recorded with its ArrayJobID and ArrayTaskID, and
bcacct selects and prints them as sacct does (-j A_T one task, -j A every task, JobID "A_T"), from the node
store and through bcd (the monitors ship to it with munge).

This cluster has no slurmdbd, so sacct itself answers "accounting storage is disabled", and sacct -c (jobcomp)
of Slurm 22.05 does not read the array fields. The truth is Slurm's own rendering of the same job ids:
`squeue -t all -j A -o %i|%A|%F|%K` (JobID as sacct prints it, JobIDRaw, ArrayJobID, ArrayTaskID).
"""
import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

from bclib import Cluster

c = Cluster()
bcadm = os.path.join(c.build, "web", "bcadm")
work = tempfile.mkdtemp(prefix="bc-central-array-")
central = os.path.join(work, "central.lmdb")
conf = os.path.join(work, "bcd.conf")
open(conf, "w").write(f"listen=127.0.0.1:0\nstore={central}\nstatic_dir={work}\n"
                      "auth_secret=array-test-secret-0123456789\n")
c.run(bcadm, "db", "init", "--store", central)
env = {k: v for k, v in os.environ.items() if k not in ("AUTH_SECRET", "AUTH_DISABLE")}
bcd = subprocess.Popen([os.path.join(c.build, "web", "bcd"), "--config", conf, "--port-file", work + "/port"],
                       env=env, stderr=open(os.path.join(work, "bcd.log"), "w"))
try:
    for _ in range(100):
        if os.path.exists(work + "/port"):
            break
        time.sleep(0.05)
    url = f"http://127.0.0.1:{open(work + '/port').read().strip()}"
    good = open(os.path.join(c.work, "plugstack.good")).read().strip()
    c.plugstack(good + f" central={url}\n")

    array = c.sbatch("#!/bin/bash\n"
                     "echo task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID is job $SLURM_JOB_ID\n"
                     "timeout 1 sh -c 'while :; do :; done'\n"
                     "sleep 0.5\n", "--array=1-3")

    def squeue(jobs):
        out = c.run("squeue", "-t", "all", "-h", "-j", jobs, "-o", "%i|%A|%T|%F|%K").stdout.split()
        return [line.split("|") for line in out]

    deadline = time.time() + 120
    while time.time() < deadline:
        tasks = squeue(str(array))
        if len(tasks) == 3 and all(t[2] in ("COMPLETED", "FAILED", "CANCELLED") for t in tasks):
            break
        time.sleep(0.3)
    assert len(tasks) == 3 and all(t[2] == "COMPLETED" for t in tasks), tasks
    truth = sorted(f"{t[0]}|{t[1]}" for t in tasks)
    raw_ids = sorted(int(t[1]) for t in tasks)
    assert array in raw_ids and all(t[0].startswith(f"{array}_") for t in tasks), tasks  # the array's id is a task
    # %F and %K: Slurm's ArrayJobID and ArrayTaskID of each task.
    task_of = {int(t[1]): int(t[4]) for t in tasks}
    assert all(t[3] == str(array) for t in tasks), tasks
    for raw in raw_ids:
        c.wait_monitor_gone(raw, timeout=20)
    print(f"ok sbatch --array=1-3 is array {array}: squeue -t all says {truth}")

    def rows(*args, store=True):
        source = ["--store", c.store] if store else ["--central", url]
        r = c.run(c.bcacct_bin, *source, *args, "-P", "-n", "-o", "JobID,JobIDRaw")
        return sorted(r.stdout.split())

    second = next(raw for raw in raw_ids if task_of[raw] == 2)
    one_task = [f"{t[0]}|{t[1]}" for t in squeue(f"{array}_2")]
    assert one_task == [f"{array}_2|{second}"], one_task
    assert rows("-j", str(array)) == truth, rows("-j", str(array))
    assert rows("-j", f"{array}_2") == one_task
    assert rows("-j", str(second)) == one_task  # a task by its own id
    for raw in raw_ids:
        job = json.loads(c.bcacct("-j", f"{array}_{task_of[raw]}", "--json").stdout)["job"]
        assert job["id"] == raw and job["job_id"] == f"{array}_{task_of[raw]}", job
        assert job["array"] == {"job_id": array, "task_id": task_of[raw]}, job
    every = json.loads(c.bcacct("-j", str(array), "--json").stdout)["jobs"]  # the array's id: every task
    assert sorted(j["job"]["id"] for j in every) == raw_ids, every
    print("ok node store: bcacct -j A, -j A_2 and -j RAW print JobID/JobIDRaw as squeue does; --json has the array")

    # Through bcd: the monitors shipped every task; bcd's list filter and job documents carry the array.
    tool = os.path.join(c.build, "tests", "central", "bc-central-tool")
    deadline = time.time() + 30
    while time.time() < deadline:
        if int(c.run(tool, "pending", c.store).stdout.split()[1]) == 0 and \
                all(c.run(tool, "count", central, str(raw)).stdout.split()[1] == "1" for raw in raw_ids):
            break
        time.sleep(0.3)
    assert rows("-j", str(array), store=False) == truth, rows("-j", str(array), store=False)
    assert rows("-j", f"{array}_2", store=False) == one_task
    text = c.run(c.bcacct_bin, "--central", url, "-j", f"{array}_3").stdout
    last = next(raw for raw in raw_ids if task_of[raw] == 3)
    assert text.splitlines()[0].split() == ["JobID:", f"{array}_3"] and f"JobIDRaw:      {last}" in text, text
    cred = subprocess.run(["munge", "-n"], capture_output=True, text=True, check=True).stdout.strip()
    req = urllib.request.Request(f"{url}/api/v1/jobs?array={array}", headers={"X-Munge-Credential": cred})
    listed = json.loads(urllib.request.urlopen(req, timeout=10).read())["jobs"]
    assert sorted(f"{j['job_id']}|{j['id']}" for j in listed) == truth, listed
    assert all(j["array"] == {"job_id": array, "task_id": task_of[j["id"]]} for j in listed), listed
    print("ok through bcd: bcacct --central -j A / -j A_T equal squeue; GET /api/v1/jobs?array=A lists the tasks")
finally:
    c.restore_plugstack()
    bcd.send_signal(signal.SIGTERM)
    bcd.wait(timeout=20)
    subprocess.run(["rm", "-rf", work])
