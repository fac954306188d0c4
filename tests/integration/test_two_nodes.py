"""Real multi-node jobs on two slurmd nodes (two_node_fixture.sh: each node in a network and UTS namespace
of its own, with its own node store and run dir; both ship to one bcd on the host's side).

- sbatch -N2 whose script calls srun: each node's processes are recorded under the node they ran on. The
  job's environment carries the batch host's SLURMD_NODENAME to the other node (srun passes it on), so the
  plugin names the node as slurmstepd knows itself.
- srun -N2 -n4 from a login shell: the same.
- With events and with bpf=off.
- bcd holds one job per Slurm job, with each node's record and processes; the job's CPU is the sum of the
  nodes' cgroup CPU, and the processes of each node sum to that node's.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

SKIP = 77
work = os.environ["BC_IT2_WORK"]
build = os.environ["BC_BUILD"]
if os.path.exists(os.path.join(work, "skip_reason")):
    print("SKIP:", open(os.path.join(work, "skip_reason")).read().strip())
    sys.exit(SKIP)
fixture = dict(line.strip().split("=", 1) for line in open(os.path.join(work, "env")))
nodes = fixture["NODES"].split()
cluster = os.path.join(work, "cluster")
env = dict(os.environ, SLURM_CONF=os.path.join(cluster, "slurm.conf"))
bcacct = os.path.join(build, "sacct_ext", "bcacct")
testload = os.path.join(build, "tests", "integration", "bc-testload")
jobs_dir = os.path.join(work, "jobs")


def run(*args, **kw):
    r = subprocess.run(list(args), env=env, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{args}: {r.returncode} {r.stdout}{r.stderr}"
    return r.stdout


def wait_job(job, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        fields = dict(f.split("=", 1) for f in run("scontrol", "show", "job", "-o", str(job)).split() if "=" in f)
        if fields["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"):
            return fields
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not end")


def wait_monitors_gone(job, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(os.path.exists(os.path.join(work, f"run-{n}", f"job_{job}.pid")) for n in nodes):
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job}: monitors still running after {timeout} s")


def node_store(node):
    return os.path.join(work, f"store-{node}", "node.lmdb")


def job_json(store, job):
    return json.loads(run(bcacct, "--store", store, "-j", str(job), "--json"))


def check_node_stores(job, what):
    """Each node's store holds that node's part, named after that node, and nothing of the other."""
    for node in nodes:
        data = job_json(node_store(node), job)
        named = {p["node"] for p in data["processes"]}
        assert named == {node}, f"{what}: {node}'s store names its processes {named}"
        assert data["job"]["nodes"] == [node], (what, node, data["job"]["nodes"])
        workers = [p for p in data["processes"] if p["command"] == "bc-testload"]
        assert workers, f"{what}: no bc-testload process recorded on {node}"
        print(f"ok {what}: {node} recorded {len(data['processes'])} processes under its own name "
              f"({len(workers)} bc-testload)")


def check_jobs(mode, url):
    """An sbatch -N2 job whose script calls srun, and srun -N2 -n4 from this shell."""
    script = os.path.join(jobs_dir, f"two-{time.time_ns()}.sh")
    open(script, "w").write(f"#!/bin/bash\nsrun -N2 -n2 {testload} busy 1.0 /dev/null\n")
    os.chmod(script, 0o755)
    job = int(run("sbatch", "--parsable", "-N2", "-n2", "-o", script + ".out", script).strip().split(";")[0])
    state = wait_job(job)
    assert state["JobState"] == "COMPLETED", state
    wait_monitors_gone(job)
    check_node_stores(job, f"{mode}: sbatch -N2 job {job} with srun inside")

    run("srun", "-N2", "-n4", testload, "busy", "0.6", "/dev/null", timeout=120)
    srun_job = max(int(j) for j in run("squeue", "-h", "-t", "all", "-o", "%i").split())
    wait_monitors_gone(srun_job)
    check_node_stores(srun_job, f"{mode}: srun -N2 -n4 job {srun_job}")

    # One job in bcd, from both nodes.
    for j in (job, srun_job):
        deadline = time.time() + 20
        while True:
            data = job_json(central, j)
            if sorted({p["node"] for p in data["processes"]}) == sorted(nodes) or time.time() > deadline:
                break
            time.sleep(0.5)
        assert data["job"]["nodes"] == sorted(nodes), (j, data["job"]["nodes"])
        doc = json.loads(urllib.request.urlopen(f"{url}/api/v1/jobs/{j}", timeout=10).read())
        records = {r["node"]: r for r in doc["node_records"]}
        assert sorted(records) == sorted(nodes), (j, list(records))
        node_cpu = {n: job_json(node_store(n), j)["job"]["cpu_seconds"] for n in nodes}
        total = sum(node_cpu.values())
        assert abs(data["job"]["cpu_seconds"] - total) < 1e-6, (j, data["job"]["cpu_seconds"], node_cpu)
        for n in nodes:
            procs = sum(p["cpu_seconds"] for p in data["processes"] if p["node"] == n)
            assert abs(procs - node_cpu[n]) <= max(0.03 * node_cpu[n], 0.05), (j, n, procs, node_cpu[n])
        print(f"ok {mode}: job {j} in bcd: nodes {sorted(records)}, CPU {total:.3f} s = "
              + " + ".join(f"{node_cpu[n]:.3f} ({n})" for n in nodes))


# The plugstacks ship to one bcd on the host's side of the bridge.
bcd_dir = tempfile.mkdtemp(prefix="bc-two-nodes-")
central = os.path.join(bcd_dir, "central.lmdb")
run(os.path.join(build, "web", "bcadm"), "db", "init", "--store", central)
conf = os.path.join(bcd_dir, "bcd.conf")
open(conf, "w").write(f"listen={fixture['HOST_ADDRESS']}:0\nstore={central}\nstatic_dir={bcd_dir}\nauth_disable=yes\n")
bcd = subprocess.Popen([os.path.join(build, "web", "bcd"), "--config", conf, "--port-file", bcd_dir + "/port"],
                       stderr=open(os.path.join(bcd_dir, "bcd.log"), "w"))
plugstacks = {n: os.path.join(cluster, f"plugstack.{n}.conf") for n in nodes}
originals = {n: open(p).read() for n, p in plugstacks.items()}
try:
    for _ in range(100):
        if os.path.exists(bcd_dir + "/port") and open(bcd_dir + "/port").read().strip():
            break
        time.sleep(0.05)
    url = f"http://{fixture['HOST_ADDRESS']}:{open(bcd_dir + '/port').read().strip()}"
    for mode in ("events", "bpf=off"):
        for n, p in plugstacks.items():
            off = " bpf=off" if mode == "bpf=off" else ""
            open(p, "w").write(originals[n].strip() + f" central={url} ship_every=1{off}\n")
        check_jobs(mode, url)
finally:
    for n, p in plugstacks.items():
        open(p, "w").write(originals[n])
    bcd.terminate()
    bcd.wait(timeout=10)
