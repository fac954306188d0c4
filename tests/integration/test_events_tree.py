"""eBPF process lifecycle: sh -c with 3 children (one living 5 ms), each exec with its true ppid, argv and exit
status, a process killed by a signal; and processes outside the job (a busy open loop) never appear."""
import os
import subprocess

from bclib import Cluster
from eventlib import batch_shell, job_dir, require_events, run_job

c = Cluster()
out = job_dir(c, "evtree")
outside = job_dir(c, "outside")
inner = 'sleep 0.005; /bin/sh -c "exit 3"; /bin/false; exit 5'
script = f"""#!/bin/bash
sleep 1
sh -c '{inner}'
sh -c 'kill -TERM $$'
sleep 0.5
"""
# A busy open loop outside the job, on the same node, for the whole job.
loop = subprocess.Popen(["/bin/sh", "-c", f"while :; do {c.testload} files {outside} {outside}/r.json; done"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    job, state, data = run_job(c, script)
finally:
    loop.kill()
    loop.wait()
require_events(data)
assert state["JobState"] == "COMPLETED", state
procs = data["processes"]
for p in procs:
    print(p["pid"], p["ppid"], p["command"], p["argv"], p["exit_code"], p["exit_signal"], p["exact"], p["start"], p["end"])
print("lost events:", data["job"]["lost_events"], data["job"]["lost_events_by_cause"])
assert data["job"]["lost_events"] == 0, data["job"]

shell = batch_shell(data)
outer = [p for p in procs if p["argv"] == ["sh", "-c", inner]]
assert len(outer) == 1, outer
outer = outer[0]
assert outer["ppid"] == shell["pid"], (outer, shell)
assert outer["exit_code"] == 5 and outer["exit_signal"] == 0, outer
children = sorted((p for p in procs if p["ppid"] == outer["pid"]), key=lambda p: p["start"])
assert [p["argv"] for p in children] == [["sleep", "0.005"], ["/bin/sh", "-c", "exit 3"], ["/bin/false"]], children
assert [p["exit_code"] for p in children] == [0, 3, 1], children
for p in children + [outer]:
    assert p["exact"] and p["end"] is not None and p["start"] <= p["end"], p
    assert p["cpu_seconds"] > 0 and p["max_rss_bytes"] > 0, p
assert children[0]["command"] == "sleep" and children[0]["exe"].endswith("/sleep"), children[0]
print("ok sh -c: 3 children with their ppid, argv and exit codes 0, 3, 1; sh exit 5")

killed = [p for p in procs if p["argv"] == ["sh", "-c", "kill -TERM $$"]]
assert len(killed) == 1 and killed[0]["exit_signal"] == 15 and killed[0]["exit_code"] == -1, killed
print("ok a process killed by SIGTERM shows the signal")

# The 5 ms process: sampling every 0.2 s would usually miss it; events give it a full record.
sleep5 = children[0]
print("ok 5 ms process recorded:", sleep5["start"], sleep5["end"])

text = c.bcacct("-j", str(job)).stdout
assert "3:0" in text and "0:15" in text and "LostEvents:    0" in text and "Events:        on" in text, text
tree = c.bcacct("-j", str(job), "--tree").stdout
assert "exit 3:0" in tree and "exit 1:0" in tree, tree
print("ok exit codes in the table and the tree")

# Nothing of the loop outside the job: not its processes, not its files.
loop_paths = [f for f in data["files"] if f["path"].startswith(outside)]
assert not loop_paths, loop_paths[:3]
assert not [p for p in procs if any(outside in a for a in p["argv"])], "an outside process was recorded"
assert os.path.exists(f"{outside}/r.json"), "the outside loop did not run"
print("ok the busy open loop outside the job never appears")
