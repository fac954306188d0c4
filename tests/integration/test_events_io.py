"""The storage bytes of a process that lives less than a sampling interval are its own (issue 4, "numbers must
be true"): the kernel folds a reaped child's /proc/PID/io into its parent, so without the exit event's bytes a
short dd's writes showed on the shell that ran it. The truth is the bytes dd wrote (the file sizes), and the
job's total must count them once."""
import os

from bclib import Cluster
from eventlib import batch_shell, job_dir, require_events, run_job

MiB = 1 << 20
c = Cluster()
out = job_dir(c, "evio")
# dd alone; dd under a short sh -c (the sh reaps dd and usually ends in the same tick; either may have been
# sampled or have a record from events only); and dd under an sh -c that sampling has seen (its exit is
# applied to its sampled record, and dd's bytes, folded into its exit figure, are not its own).
script = f"""#!/bin/bash
sleep 1
dd if=/dev/zero of={out}/alone bs=64k count=128 conv=fsync status=none
sh -c 'dd if=/dev/zero of={out}/nested bs=64k count=64 conv=fsync status=none'
sh -c 'sleep 0.6; dd if=/dev/zero of={out}/sampled bs=64k count=64 conv=fsync status=none'
sleep 1
"""
job, state, data = run_job(c, script)
require_events(data)
assert state["JobState"] == "COMPLETED", state
procs = data["processes"]
for p in procs:
    print(p["pid"], p["ppid"], p["argv"], p["exact"], p["read_bytes"], p["write_bytes"])
assert os.path.getsize(f"{out}/alone") == 8 * MiB and os.path.getsize(f"{out}/nested") == 4 * MiB
assert os.path.getsize(f"{out}/sampled") == 4 * MiB

shell = batch_shell(data)
alone = [p for p in procs if p["argv"][:1] == ["dd"] and f"of={out}/alone" in p["argv"]]
nested = [p for p in procs if p["argv"][:1] == ["dd"] and f"of={out}/nested" in p["argv"]]
sh = [p for p in procs if p["argv"][:2] == ["sh", "-c"] and "nested" in p["argv"][2]]
sampled = [p for p in procs if p["argv"][:1] == ["dd"] and f"of={out}/sampled" in p["argv"]]
sh2 = [p for p in procs if p["argv"][:2] == ["sh", "-c"] and "sampled" in p["argv"][2]]
assert len(alone) == 1 and len(nested) == 1 and len(sh) == 1 and len(sampled) == 1 and len(sh2) == 1, procs
alone, nested, sh, sampled, sh2 = alone[0], nested[0], sh[0], sampled[0], sh2[0]
for p in (alone, nested, sh, sampled, sh2):
    assert p["exact"], p
assert nested["ppid"] == sh["pid"] and sh["ppid"] == shell["pid"] and alone["ppid"] == shell["pid"]
assert sampled["ppid"] == sh2["pid"] and sh2["ppid"] == shell["pid"]

# Pages dirtied are counted when written: each dd's own bytes, within a few pages of metadata.
slack = 256 * 1024
assert 8 * MiB <= alone["write_bytes"] <= 8 * MiB + slack, alone
assert 4 * MiB <= nested["write_bytes"] <= 4 * MiB + slack, nested
assert 4 * MiB <= sampled["write_bytes"] <= 4 * MiB + slack, sampled
assert shell["write_bytes"] <= slack, shell
# Neither shell keeps its dd's bytes: not the short one (both end in one tick, the dd's exit is applied
# first), nor the sampled one (seen after it reaped dd; it is kept until dd's late exit event takes the bytes
# back out of its record).
assert sh["write_bytes"] <= slack, (sh, nested)
assert sh2["write_bytes"] <= slack, (sh2, sampled)
print("ok each dd has its own bytes (8, 4 and 4 MiB); the shells that ran them have none")

total = sum(p["write_bytes"] for p in procs)
assert 16 * MiB <= total <= 16 * MiB + 4 * slack, total
print(f"ok the job's processes add up to the 16 MiB written: {total} bytes")
