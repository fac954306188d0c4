"""What the two-node tests share: the fixture's cluster (two_node_fixture.sh), its nodes' stores, and one bcd on
the host's side of the bridge that both nodes' plugstacks ship to."""
import contextlib
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


def job_fields(job):
    return dict(f.split("=", 1) for f in run("scontrol", "show", "job", "-o", str(job)).split() if "=" in f)


def wait_job(job, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        fields = job_fields(job)
        if fields["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"):
            return fields
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not end")


def monitor_pid_file(node, job):
    return os.path.join(work, f"run-{node}", f"job_{job}.pid")


def wait_monitors_gone(job, timeout=20, among=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(os.path.exists(monitor_pid_file(n, job)) for n in (among or nodes)):
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job}: monitors still running after {timeout} s")


def node_store(node):
    return os.path.join(work, f"store-{node}", "node.lmdb")


def job_json(store, job, missing_ok=False):
    """bcacct --json of the job; None, when missing_ok, while the store does not have it yet (exit 1)."""
    r = subprocess.run([bcacct, "--store", store, "-j", str(job), "--json"], env=env, capture_output=True, text=True)
    if r.returncode == 1 and missing_ok:
        return None
    assert r.returncode == 0, f"bcacct -j {job} --store {store}: {r.returncode} {r.stdout}{r.stderr}"
    return json.loads(r.stdout)


def sbatch(body, *options):
    script = os.path.join(jobs_dir, f"two-{time.time_ns()}.sh")
    open(script, "w").write("#!/bin/bash\n" + body)
    os.chmod(script, 0o755)
    return int(run("sbatch", "--parsable", *options, "-o", script + ".out", script).strip().split(";")[0])


def sacct_rows(job, fields="JobID,State,TotalCPU,ElapsedRaw,NodeList", timeout=30):
    """sacct's rows of a job once slurmdbd has its end (slurmctld sends it on)."""
    deadline = time.time() + timeout
    while True:
        out = run("sacct", "-j", str(job), "-P", "-n", f"--format={fields}")
        rows = [dict(zip(fields.split(","), line.split("|"))) for line in out.strip().splitlines()]
        if rows and rows[0]["State"] not in ("RUNNING", "PENDING") and rows[0].get("TotalCPU"):
            return rows
        if time.time() > deadline:
            raise AssertionError(f"sacct has no end for job {job}: {rows}")
        time.sleep(0.5)


class Bcd:
    """bcd on the host's side of the bridge, serving the repository's web view, no authentication."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bc-two-nodes-")
        self.store = os.path.join(self.dir, "central.lmdb")
        run(os.path.join(build, "web", "bcadm"), "db", "init", "--store", self.store)
        conf = os.path.join(self.dir, "bcd.conf")
        static = os.path.join(build, "web", "static")
        open(conf, "w").write(f"listen={fixture['HOST_ADDRESS']}:0\nstore={self.store}\nstatic_dir={static}\n"
                              "auth_disable=yes\n")
        self.proc = subprocess.Popen([os.path.join(build, "web", "bcd"), "--config", conf, "--port-file",
                                      self.dir + "/port"], stderr=open(os.path.join(self.dir, "bcd.log"), "w"))
        for _ in range(100):
            if os.path.exists(self.dir + "/port") and open(self.dir + "/port").read().strip():
                break
            time.sleep(0.05)
        self.url = f"http://{fixture['HOST_ADDRESS']}:{open(self.dir + '/port').read().strip()}"

    def get_json(self, path):
        return json.loads(urllib.request.urlopen(f"{self.url}{path}", timeout=10).read())

    def wait_nodes(self, job, want, timeout=20, ended=False):
        """The job as bcd's store holds it, once processes of every node in want have landed (and, with ended,
        every node's record has its end: the last batch of each has landed)."""
        deadline = time.time() + timeout
        while True:
            data = job_json(self.store, job, missing_ok=True)
            if data and sorted({p["node"] for p in data["processes"]}) == sorted(want) and \
                    (not ended or all(r["end"] for r in data["node_records"])):
                return data
            if time.time() > deadline:
                raise AssertionError(f"job {job}: bcd has no processes of every node of {want} after {timeout} s: "
                                     f"{data and sorted({p['node'] for p in data['processes']})}")
            time.sleep(0.5)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def shipping_to(bcd, extra=""):
    """Both nodes' plugstacks ship to bcd (every second), with extra plugstack arguments, while inside."""
    plugstacks = {n: os.path.join(cluster, f"plugstack.{n}.conf") for n in nodes}
    originals = {n: open(p).read() for n, p in plugstacks.items()}
    try:
        for n, p in plugstacks.items():
            open(p, "w").write(originals[n].strip() + f" central={bcd.url} ship_every=1 {extra}\n")
        yield
    finally:
        for n, p in plugstacks.items():
            open(p, "w").write(originals[n])
