"""Real multi-node jobs on two slurmd nodes (two_node_fixture.sh: each node in a network and UTS namespace
of its own, with its own node store and run dir; both ship to one bcd on the host's side; Slurm's accounting
runs with slurmdbd and MariaDB).

- sbatch -N2 whose script calls srun: each node's processes are recorded under the node they ran on. The
  job's environment carries the batch host's SLURMD_NODENAME to the other node (srun passes it on), so the
  plugin names the node as slurmstepd knows itself.
- srun -N2 -n4 from a login shell: the same.
- With events and with bpf=off.
- bcd holds one job per Slurm job, with each node's record and processes; the job's CPU is the sum of the
  nodes' cgroup CPU, and the processes of each node sum to that node's (3% or 0.05 s, as it_vs_sacct).
- The job's CPU equals sacct's TotalCPU within 1%: both read the nodes' cgroup CPU counters, summed over the
  nodes. Each job's tasks spin for 2.5 s (2.5 to 5 s of CPU on this two-core host), so that the few
  milliseconds by which the two differ (a step's last moment between jobacct_gather's polls, slurmstepd's
  own work) stay well inside it.
- The web view of the job in headless Chromium shows the node column, each process on its own node, and both
  nodes in the header; the job's allocation is recorded and no node is missing.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "web"))
from bclib import sacct_cpu_seconds
from two_nodes_lib import (Bcd, job_json, node_store, nodes, run, sacct_rows, sbatch, shipping_to,
                           testload, wait_job, wait_monitors_gone)
from webtest import probe


def check_node_stores(job, what):
    """Each node's store holds that node's part, named after that node, and nothing of the other."""
    for node in nodes:
        data = job_json(node_store(node), job)
        named = {p["node"] for p in data["processes"]}
        assert named == {node}, f"{what}: {node}'s store names its processes {named}"
        assert data["job"]["nodes"] == [node], (what, node, data["job"]["nodes"])
        assert data["job"]["allocated_nodes"] == sorted(nodes), (what, node, data["job"]["allocated_nodes"])
        workers = [p for p in data["processes"] if p["command"] == "bc-testload"]
        assert workers, f"{what}: no bc-testload process recorded on {node}"
        print(f"ok {what}: {node} recorded {len(data['processes'])} processes under its own name "
              f"({len(workers)} bc-testload)")


def check_in_bcd(mode, bcd, job):
    data = bcd.wait_nodes(job, nodes, ended=True)
    assert data["job"]["nodes"] == sorted(nodes), (job, data["job"]["nodes"])
    assert data["job"]["allocated_nodes"] == sorted(nodes), (job, data["job"]["allocated_nodes"])
    assert data["job"]["missing_nodes"] == [], (job, data["job"]["missing_nodes"])
    doc = bcd.get_json(f"/api/v1/jobs/{job}")
    records = {r["node"]: r for r in doc["node_records"]}
    assert sorted(records) == sorted(nodes), (job, list(records))
    node_cpu = {n: job_json(node_store(n), job)["job"]["cpu_seconds"] for n in nodes}
    total = sum(node_cpu.values())
    assert abs(data["job"]["cpu_seconds"] - total) < 1e-6, (job, data["job"]["cpu_seconds"], node_cpu)
    for n in nodes:
        procs = sum(p["cpu_seconds"] for p in data["processes"] if p["node"] == n)
        assert abs(procs - node_cpu[n]) <= max(0.03 * node_cpu[n], 0.05), (job, n, procs, node_cpu[n])
    sacct = sacct_rows(job)[0]
    theirs = sacct_cpu_seconds(sacct["TotalCPU"])
    assert abs(total - theirs) <= 0.01 * theirs, f"{mode} job {job}: CPU {total:.3f} s, sacct {theirs:.3f} s"
    print(f"ok {mode}: job {job} in bcd: nodes {sorted(records)}, CPU {total:.3f} s = "
          + " + ".join(f"{node_cpu[n]:.3f} ({n})" for n in nodes) + f"; sacct TotalCPU {theirs:.3f} s "
          f"({sacct['NodeList']})")
    return data


def check_web(bcd, job, data):
    """What a user sees: the node column, each process on the node it ran on."""
    out = probe(f"{bcd.url}/static/index.html?container=job_{job}")
    assert out["ready"], out
    assert out["fields"]["nodes"]["value"] == ",".join(sorted(nodes)), out["fields"]["nodes"]
    assert "missing_nodes" not in out["fields"], out["fields"]
    truth = {(p["pid"], p["node"]) for p in data["processes"]}
    shown = [(r["pid"], r["node"]) for r in out["tree_rows"]]
    assert shown and all(node for _, node in shown), f"no node column: {out['tree_rows'][:3]}"
    assert all(row in truth for row in shown), [row for row in shown if row not in truth]
    assert {node for _, node in shown} == set(nodes), shown
    print(f"ok web view of job {job}: {len(shown)} process rows, each with its node "
          f"({', '.join(f'{n}: {sum(1 for _, m in shown if m == n)}' for n in nodes)})")


def check_jobs(mode, bcd):
    """An sbatch -N2 job whose script calls srun, and srun -N2 -n4 from this shell."""
    job = sbatch(f"srun -N2 -n2 {testload} busy 2.5 /dev/null\n", "-N2", "-n2")
    state = wait_job(job)
    assert state["JobState"] == "COMPLETED", state
    wait_monitors_gone(job)
    check_node_stores(job, f"{mode}: sbatch -N2 job {job} with srun inside")

    run("srun", "-N2", "-n4", testload, "busy", "2.5", "/dev/null", timeout=120)
    srun_job = max(int(j) for j in run("squeue", "-h", "-t", "all", "-o", "%i").split())
    wait_monitors_gone(srun_job)
    check_node_stores(srun_job, f"{mode}: srun -N2 -n4 job {srun_job}")

    data = check_in_bcd(mode, bcd, job)
    check_in_bcd(mode, bcd, srun_job)
    return job, data


bcd = Bcd()
try:
    for mode in ("events", "bpf=off"):
        with shipping_to(bcd, "bpf=off" if mode == "bpf=off" else ""):
            job, data = check_jobs(mode, bcd)
        if mode == "events":
            check_web(bcd, job, data)
finally:
    bcd.stop()
