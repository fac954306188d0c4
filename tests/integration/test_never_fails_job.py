"""Whatever goes wrong on our side, the job runs and exits 0."""
import os
import time

from bclib import Cluster

c = Cluster()
build = c.build
good = open(os.path.join(c.work, "plugstack.good")).read().strip()
plugin = good.split()[1]


def run_job(label):
    job = c.sbatch("#!/bin/bash\necho hello-$SLURM_JOB_ID\nsleep 0.5\n", "-n1")
    state = c.wait_job(job)
    assert state["JobState"] == "COMPLETED" and state["ExitCode"] == "0:0", (label, state)
    print(f"ok {label}: job {job} completed with exit 0")
    return job


def log_has(text, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in open(c.slurmd_log, errors="replace").read():
            return True
        time.sleep(0.2)
    return False


cases = [
    ("unknown config key", f"optional {plugin} bogus=1 store={c.store}\n", "unknown key 'bogus'"),
    ("bad interval", f"optional {plugin} interval=fast\n", "interval= takes seconds"),
    ("missing monitor binary", f"optional {plugin} store={c.store} monitor=/nonexistent/bc-monitor rundir={c.run_dir}\n",
     "monitor binary /nonexistent/bc-monitor is not executable"),
    ("missing plugin file", f"optional {build}/spank/no_such_plugin.so\n", None),
]
try:
    for label, conf, expected_log in cases:
        c.plugstack(conf)
        job = run_job(label)
        if expected_log:
            assert log_has(expected_log), f"{label}: slurmd log lacks '{expected_log}'"
            assert log_has("bubble-chamber: "), "errors carry the bubble-chamber: prefix"
            print(f"ok {label}: logged '{expected_log}'")
        r = c.bcacct("-j", str(job), check=False)
        assert r.returncode == 1, f"{label}: job must not be recorded ({r.returncode}: {r.stdout})"

    # An unwritable store: the monitor starts, cannot open the store, logs it, and the job is unaffected.
    c.plugstack(good.replace(f"store={c.store}", "store=/proc/bc-unwritable/node.lmdb") + "\n")
    run_job("unwritable store")
    deadline = time.time() + 5
    while "cannot open store" not in open(c.monitor_log).read() and time.time() < deadline:
        time.sleep(0.2)
    assert "cannot open store" in open(c.monitor_log).read()
    print("ok unwritable store: logged by the monitor")
finally:
    c.restore_plugstack()
