"""eBPF files and connects: a program opens 3 known files (one 10 000 times) and a missing one, connects to a
loopback listener and to a closed port; bcacct --files/--net (and --json) show exact counts and failures."""
import socket

from bclib import Cluster
from eventlib import job_dir, procs_by_pid, require_events, run_job, truth

c = Cluster()
out = job_dir(c, "evfiles")
for name in ("once", "often", "twice"):
    with open(f"{out}/{name}", "w") as f:
        f.write(name)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
open_port = listener.getsockname()[1]
closed = socket.socket()
closed.bind(("127.0.0.1", 0))
closed_port = closed.getsockname()[1]
closed.close()  # nothing listens there now: connects are refused

script = f"""#!/bin/bash
sleep 1
{c.testload} files {out} {out}/files.json
{c.testload} connect {open_port} {closed_port} {out}/connect.json
"""
try:
    job, state, data = run_job(c, script)
finally:
    listener.close()
require_events(data)
assert state["JobState"] == "COMPLETED", state
files_truth, conn_truth = truth(f"{out}/files.json"), truth(f"{out}/connect.json")
procs = procs_by_pid(data)
assert files_truth["pid"] in procs and conn_truth["pid"] in procs, "testload processes missing"
assert procs[files_truth["pid"]]["exit_code"] == 0

mine = {f["path"]: f for f in data["files"] if f["pid"] == files_truth["pid"]}
for path, t in files_truth["files"].items():
    assert path in mine, f"{path} missing from files of pid {files_truth['pid']}: {sorted(mine)}"
    f = mine[path]
    assert (f["opens"], f["failed"]) == (t["opens"], t["failed"]), (path, f, t)
    assert f["flags"] == "r", f
    print(f"ok {path}: opens {f['opens']} failed {f['failed']} (truth {t['opens']}, {t['failed']})")
assert files_truth["files"][f"{out}/often"]["opens"] == 10000

conns = {(x["address"], x["port"], x["protocol"]): x for x in data["connections"] if x["pid"] == conn_truth["pid"]}
good = conns.get(("127.0.0.1", open_port, "tcp"))
bad = conns.get(("127.0.0.1", closed_port, "tcp"))
assert good and bad, conns
assert conn_truth["open_ok"] == 1 and conn_truth["closed_ok"] == 0, conn_truth
assert (good["count"], good["failed"]) == (1, 0), good
assert (bad["count"], bad["failed"]) == (2, 2), bad
print("ok connects: listener 1 ok, closed port 2 refused")

text = c.bcacct("-j", str(job), "--files").stdout
row = [l for l in text.splitlines() if f"{out}/often" in l]
assert row and "10000" in row[0].split(), text
assert [l for l in text.splitlines() if f"{out}/missing" in l and l.split()[-3:-2] == ["1"]], text
all_text = c.bcacct("-j", str(job), "--files", "--all").stdout
assert [l for l in all_text.splitlines() if f"{out}/often" in l and "10000" in l.split()], all_text
net = c.bcacct("-j", str(job), "--net").stdout
print(net)
assert [l for l in net.splitlines() if str(closed_port) in l.split() and l.split()[-2:] == ["2", "2"]], net
assert [l for l in net.splitlines() if str(open_port) in l.split() and l.split()[-2:] == ["1", "0"]], net
print("ok --files, --files --all and --net tables")
