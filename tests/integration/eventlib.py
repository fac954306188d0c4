"""Helpers of the eBPF event tests: jobs whose records must have events, and lookups in bcacct's JSON."""
import json
import os
import sys
import time

from bclib import SKIP, Cluster


def job_dir(c, name):
    """A directory the job (any user) can write its truth files into."""
    d = os.path.join(c.jobs_dir, f"{name}-{time.time_ns()}")
    os.makedirs(d)
    os.chmod(d, 0o777)
    return d


def run_job(c, script, *options):
    """sbatch, wait for the job and its monitor; returns (job id, bcacct JSON)."""
    job = c.sbatch(script, "-n1", *options)
    state = c.wait_job(job)
    c.wait_monitor_gone(job, timeout=15)
    data = c.bcacct_json(job)
    return job, state, data


def require_events(data):
    """Events must have run for this job. Where BPF cannot load at all, skip loudly (fail under CI)."""
    reason = data["job"]["events_unavailable"]
    if reason is None:
        return
    msg = f"eBPF events did not run on this machine: {reason}"
    if os.environ.get("CI") == "true":
        raise AssertionError(msg + ", and CI must run the event tests")
    print("SKIP:", msg)
    sys.exit(SKIP)


def procs_by_pid(data):
    return {p["pid"]: p for p in data["processes"]}


def batch_shell(data):
    shells = [p for p in data["processes"] if p["step"] == "batch" and p["argv"][:1] == ["/bin/bash"]
              and len(p["argv"]) > 1 and p["argv"][1].endswith("/slurm_script")]
    assert len(shells) == 1, f"expected one batch shell, got {shells}"
    return shells[0]


def truth(path):
    with open(path) as f:
        return json.load(f)
