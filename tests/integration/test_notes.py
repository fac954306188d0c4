"""Efficiency notes on real jobs, each made to call for one, and a well-behaved job that gets none.

The thresholds file lowers the minimum run time (these jobs last seconds, not the default minute) and the
I/O rate. This cluster does not make memory a consumable resource (SelectTypeParameters=CR_Core): every job's
memory limit is the node's memory whatever it asks, so no job here can use most of its limit; the file sets
memory_low_min_bytes above the node's memory, as a site like it would, and the memory note is then checked
on its own with that line left out. Every other threshold is the default. bcacct --notes, --notes --json and
--seff are checked."""
import json
import os

from bclib import Cluster

c = Cluster()
work = os.path.join(c.jobs_dir, f"notes-{os.getpid()}")
os.makedirs(work, exist_ok=True)
os.chmod(work, 0o777)
conf = os.path.join(work, "notes.conf")
SETTINGS = "# short test jobs\nmin_elapsed_s = 1\nio_bound_bytes_per_s = 20e6\n"
with open(conf, "w") as f:
    f.write(SETTINGS + "memory_low_min_bytes = 1e15\n")
c.env["BC_NOTES_CONFIG"] = conf
t = c.testload


def run(script, *options):
    job = c.sbatch("#!/bin/bash\n" + script, *options)
    state = c.wait_job(job)
    assert state["JobState"] == "COMPLETED" and state["ExitCode"] == "0:0", state
    c.wait_monitor_gone(job)
    return job


def notes(job):
    doc = json.loads(c.bcacct("-j", str(job), "--notes", "--json").stdout)
    return {n["id"]: n["text"] for n in doc["notes"]}


jobs = {
    # 2 CPUs: both threads busy the whole time.
    "well-behaved": run(f"{t} threads 2 3 {work}/threads.json\n", "-c2"),
    # 2 CPUs and a sleep on one thread.
    "idle": run("sleep 3\n", "-c2"),
    # A shell loop of 600 short programs.
    "fork storm": run("for i in $(seq 600); do /bin/true; done\nsleep 1\n", "-c1"),
    # Three ranks; rank 2 computes ten times longer than the others.
    "imbalance": run("srun -n3 --overcommit sh -c "
                     f"'if [ $SLURM_PROCID = 2 ]; then {t} busy 2 /dev/null; else {t} busy 0.2 /dev/null; fi'\n",
                     "-n3", "--overcommit"),
    # Writing 400M past the page cache while the CPU waits.
    "io": run(f"dd if=/dev/zero of={work}/io.$SLURM_JOB_ID bs=1M count=400 oflag=direct status=none\n"
              f"rm -f {work}/io.$SLURM_JOB_ID\n", "-c1"),
}
got = {name: notes(job) for name, job in jobs.items()}
for name, n in got.items():
    print(f"{name} (job {jobs[name]}): {json.dumps(n, indent=1)}")

assert got["well-behaved"] == {}, got["well-behaved"]
print("ok a job that kept its 2 CPUs busy gets no note")
assert "cpu_efficiency" in got["idle"] and "of its 2 allocated CPUs" in got["idle"]["cpu_efficiency"], got["idle"]
assert "single_thread" in got["idle"], got["idle"]
print("ok a sleeping job on 2 CPUs: CPU efficiency and one thread noted")
assert "fork_storm" in got["fork storm"] and got["fork storm"]["fork_storm"].startswith("Processes: 60"), got["fork storm"]
print("ok the shell loop of 600 programs is a fork storm")
assert "rank 2 of step 0" in got["imbalance"].get("rank_imbalance", ""), got["imbalance"]
print("ok the rank that computed longest is named")
assert "io_bound" in got["io"], got["io"]
print("ok the job that waited for storage is I/O-bound")
for name in ("well-behaved", "idle", "fork storm", "imbalance"):
    others = set(got[name]) - {"cpu_efficiency", "single_thread", "fork_storm", "rank_imbalance", "one_process"}
    assert not others, (name, got[name])

text = c.bcacct("-j", str(jobs["idle"]), "--notes").stdout
assert text.startswith("- CPU: the job used 0.0 of its 2 allocated CPUs"), text
assert c.bcacct("-j", str(jobs["well-behaved"]), "--notes").stdout.startswith("No notes"), "well-behaved"
seff = c.bcacct("-j", str(jobs["idle"]), "--seff").stdout
for line in ("Job ID: ", "Cores per node: 2", "CPU Efficiency: ", "Memory Efficiency: ", " GB\n",
             "Per process (bubble-chamber)", "Notes:\n- CPU:"):
    assert line in seff, (line, seff)
print("ok --notes as text and --seff's layout:\n" + seff)

# The memory note at its default: the idle job used a sliver of the node's memory that was its limit.
with open(conf, "w") as f:
    f.write(SETTINGS)
limit = json.loads(c.bcacct("-j", str(jobs["idle"]), "--json").stdout)["job"]["mem_limit_bytes"]
memory = notes(jobs["idle"]).get("memory_low", "")
assert memory.startswith("Memory: the peak was ") and "requested" in memory and limit, (memory, limit)
print(f"ok with the default memory threshold, the idle job's {limit} bytes limit is noted: {memory}")

# A thresholds file with a mistake is a usage error that names it.
with open(conf, "a") as f:
    f.write("cpu_efficency_low = 0.3\n")
bad = c.bcacct("-j", str(jobs["idle"]), "--notes", check=False)
assert bad.returncode == 2 and f"{conf}:4: unknown key 'cpu_efficency_low'" in bad.stderr, (bad.returncode, bad.stderr)
print("ok a wrong thresholds file: exit 2,", bad.stderr.strip())
