"""Loss accounting: with a 4 KiB event ring, execs whose argv alone nearly fills the ring, in parallel, lose
events; the count is non-zero and shown by bcacct (JSON and header), never silent."""
import os

from bclib import Cluster
from eventlib import require_events, run_job

c = Cluster()
good = open(os.path.join(c.work, "plugstack.good")).read().strip()
c.plugstack(good + " bpf_ring_kib=4\n")
try:
    script = """#!/bin/bash
sleep 1
A=$(head -c 2500 /dev/zero | tr '\\0' x)
for i in $(seq 200); do /bin/true $A $A & done
wait
"""
    job, state, data = run_job(c, script)
finally:
    c.restore_plugstack()
require_events(data)
assert state["JobState"] == "COMPLETED", state
j = data["job"]
print("lost:", j["lost_events"], j["lost_events_by_cause"])
assert j["lost_events"] > 0, j
assert j["lost_events"] == sum(j["lost_events_by_cause"].values()), j
assert j["lost_events_by_cause"]["ring"] > 0, j
text = c.bcacct("-j", str(job)).stdout
line = [l for l in text.splitlines() if l.startswith("LostEvents:")]
assert line and line[0].split()[1] == str(j["lost_events"]) and "ring" in line[0], text
print("ok", line[0])
