"""--bc-monitor=no opts one job out; a bad value is refused at submission, cleanly."""
from bclib import Cluster

c = Cluster()
job = c.sbatch("#!/bin/bash\nsleep 0.5\n", "--bc-monitor=no")
state = c.wait_job(job)
assert state["JobState"] == "COMPLETED", state
r = c.bcacct("-j", str(job), check=False)
assert r.returncode == 1 and "not found" in r.stderr, (r.returncode, r.stderr)
print("ok --bc-monitor=no: job ran unrecorded")

job_yes = c.sbatch("#!/bin/bash\nsleep 0.5\n", "--bc-monitor=yes")
c.wait_job(job_yes)
c.wait_monitor_gone(job_yes)
assert c.bcacct_json(job_yes)["job"]["id"] == job_yes
print("ok --bc-monitor=yes: job recorded")

r = c.run("srun", "--bc-monitor=maybe", "true", check=False)
assert r.returncode != 0, r
assert "--bc-monitor takes yes or no" in r.stderr, r.stderr
print("ok --bc-monitor=maybe refused:", r.stderr.strip().splitlines()[0])
