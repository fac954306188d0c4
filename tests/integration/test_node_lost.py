"""A node lost in the middle of a two-node job (two_node_fixture.sh), with events and with bpf=off. Its slurmd,
its slurmstepds, its tasks and its monitor are killed with SIGKILL, everything in the node's namespaces, as
when a node crashes: killing slurmd alone leaves the node's steps and monitor running, and its data complete.

- The other node's data is complete: its record has the job's end there, and its processes their ends.
- The job record names the lost node as missing, with when its last data was taken, in bcacct --json
  (job.missing_nodes), bcacct's table (MissingNodes) and the web view's header; the job has an end.
Between the two modes the lost node is started again. Runs after it_two_nodes.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "web"))
from two_nodes_lib import (Bcd, bcacct, build, env, job_json, node_store, nodes, run, sbatch, shipping_to, testload,
                           wait_monitors_gone, work)
from webtest import probe

kept, lost = nodes


def lose_node_in_a_job(mode, bcd):
    job = sbatch(f"srun -N2 -n2 {testload} busy 6 /dev/null\n", "-N2", "-n2")
    bcd.wait_nodes(job, nodes, timeout=60)  # both nodes' data is in bcd before the node is lost
    pids = run("ip", "netns", "pids", f"ns{lost}").split()
    assert pids, f"nothing runs in {lost}'s namespace"
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    killed_at = time.time()
    print(f"{mode}: job {job}: {lost} lost at {time.strftime('%H:%M:%S')}: {len(pids)} processes killed")

    # The kept node's tasks run to their end; then the job is cancelled, as an admin would once Slurm has
    # marked the lost node down (SlurmdTimeout), and the kept node's monitor ends.
    deadline = time.time() + 60
    while time.time() < deadline:
        workers = [p for p in job_json(node_store(kept), job)["processes"] if p["command"] == "bc-testload"]
        if workers and all(p["end"] for p in workers):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{mode}: job {job}: {kept}'s tasks did not end")
    subprocess.run(["scancel", str(job)], env=env, check=False)
    wait_monitors_gone(job, timeout=30, among=[kept])
    deadline = time.time() + 20
    while True:
        data = job_json(bcd.store, job)
        if data["job"]["end"] or time.time() > deadline:
            break
        time.sleep(0.5)
    return job, data, killed_at


def check(mode, bcd, job, data, killed_at):
    j = data["job"]
    assert j["end"], f"{mode}: job {job}: no end once the kept node ended: {j}"
    assert [m["node"] for m in j["missing_nodes"]] == [lost], j["missing_nodes"]
    last = j["missing_nodes"][0]["last_data"]
    assert last, f"{lost} shipped data before it was lost, and its time should be named: {j['missing_nodes']}"
    records = {r["node"]: r for r in data["node_records"]}
    assert records[kept]["end"], records[kept]
    assert not records[lost]["end"], records[lost]
    kept_procs = [p for p in data["processes"] if p["node"] == kept]
    assert kept_procs and all(p["end"] for p in kept_procs), [p for p in kept_procs if not p["end"]]
    kept_store = job_json(node_store(kept), job)
    assert abs(records[kept]["cgroup_cpu_seconds"] - kept_store["node_records"][0]["cgroup_cpu_seconds"]) < 1e-6
    assert len(kept_procs) == len(kept_store["processes"]), (len(kept_procs), len(kept_store["processes"]))
    print(f"ok {mode}: job {job}: {kept} complete in bcd ({len(kept_procs)} processes, all ended, CPU "
          f"{records[kept]['cgroup_cpu_seconds']:.3f} s as in its store); {lost} named missing, last data {last} "
          f"({time.time() - killed_at:.1f} s after the loss)")

    table = subprocess.run([bcacct, "--store", bcd.store, "-j", str(job)], capture_output=True, text=True,
                           check=True).stdout
    line = next((l for l in table.splitlines() if l.startswith("MissingNodes:")), None)
    assert line and lost in line and "no end recorded" in line, table
    print(f"ok {mode}: bcacct table: {line.strip()}")

    out = probe(f"{bcd.url}/static/index.html?container=job_{job}")
    assert out["ready"], out
    assert out["fields"].get("missing_nodes", {}).get("value") == lost, out["fields"]
    print(f"ok {mode}: web view: missing data: {out['fields']['missing_nodes']['text']}")
    print("sacct's view, for the record:\n" + run("sacct", "-j", str(job), "-P", "--format=JobID,State,TotalCPU,NodeList"))


fixture_script = os.path.join(os.path.dirname(__file__), "two_node_fixture.sh")
bcd = Bcd()
try:
    for mode in ("events", "bpf=off"):
        with shipping_to(bcd, "bpf=off" if mode == "bpf=off" else ""):
            check(mode, bcd, *lose_node_in_a_job(mode, bcd))
        subprocess.run([fixture_script, "restart-node", work, build, lost], check=True)
        print(f"{lost} is back")
finally:
    bcd.stop()
