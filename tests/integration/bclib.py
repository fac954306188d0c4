"""Helpers shared by the integration tests: the private cluster, jobs, bcacct."""
import json
import os
import subprocess
import sys
import time

SKIP = 77


class Cluster:
    def __init__(self):
        self.work = os.environ["BC_IT_WORK"]
        self.build = os.environ["BC_BUILD"]
        reason_file = os.path.join(self.work, "skip_reason")
        if os.path.exists(reason_file):
            print("SKIP:", open(reason_file).read().strip())
            sys.exit(SKIP)
        self.conf_dir = os.path.join(self.work, "cluster")
        self.env = dict(os.environ, SLURM_CONF=os.path.join(self.conf_dir, "slurm.conf"))
        self.store = os.path.join(self.work, "store", "node.lmdb")
        self.run_dir = os.path.join(self.work, "run")
        self.jobs_dir = os.path.join(self.work, "jobs")
        self.bcacct_bin = os.path.join(self.build, "sacct_ext", "bcacct")
        self.testload = os.path.join(self.build, "tests", "integration", "bc-testload")
        self.monitor_log = os.path.join(self.work, "log", "monitor.log")
        self.slurmd_log = os.path.join(self.conf_dir, "log", "slurmd.log")

    def run(self, *args, check=True, **kw):
        r = subprocess.run(list(args), env=self.env, capture_output=True, text=True, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"{args} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def plugstack(self, text):
        with open(os.path.join(self.conf_dir, "plugstack.conf"), "w") as f:
            f.write(text)

    def restore_plugstack(self):
        self.plugstack(open(os.path.join(self.work, "plugstack.good")).read())

    def sbatch(self, script, *options):
        path = os.path.join(self.jobs_dir, f"job-{time.time_ns()}.sh")
        with open(path, "w") as f:
            f.write(script)
        os.chmod(path, 0o755)
        r = self.run("sbatch", "--parsable", "-o", path + ".out", *options, path)
        return int(r.stdout.strip().split(";")[0])

    def job_state(self, job_id):
        r = self.run("scontrol", "show", "job", "-o", str(job_id))
        fields = dict(f.split("=", 1) for f in r.stdout.split() if "=" in f)
        return fields

    def wait_job(self, job_id, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.job_state(job_id)
            if st["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
                return st
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s")

    def monitor_pid(self, job_id):
        try:
            return int(open(os.path.join(self.run_dir, f"job_{job_id}.pid")).read())
        except (OSError, ValueError):
            return None

    def wait_monitor_gone(self, job_id, timeout=6.0):
        """Returns how long the monitor outlived the call; fails past timeout."""
        start = time.time()
        while time.time() - start < timeout:
            pid = self.monitor_pid(job_id)
            if pid is None or not os.path.exists(f"/proc/{pid}"):
                return time.time() - start
            time.sleep(0.1)
        raise AssertionError(f"monitor of job {job_id} still running {timeout}s after the job")

    def bcacct(self, *args, check=True):
        return self.run(self.bcacct_bin, "--store", self.store, *args, check=check)

    def bcacct_json(self, job_id):
        return json.loads(self.bcacct("-j", str(job_id), "--json").stdout)


def within(actual, expected, rel, what):
    if expected == 0:
        ok = actual == 0
    else:
        ok = abs(actual - expected) <= rel * abs(expected)
    assert ok, f"{what}: got {actual}, truth {expected} (allowed ±{rel*100:.0f}%)"
    print(f"ok {what}: {actual} vs truth {expected} ({(actual - expected) / expected * 100 if expected else 0:+.1f}%)")


def sacct_cpu_seconds(text):
    """sacct's TotalCPU, UserCPU, SystemCPU: [D-][HH:]MM:SS[.mmm]."""
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    parts = [float(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return days * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
