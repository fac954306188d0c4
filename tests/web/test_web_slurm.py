"""The web view of real sbatch jobs in headless Chromium, bcd reading the node store the monitor writes:
a finished job's header equals bcacct --json, its charts have points, its tree has the known hierarchy and
its files/connections tables match the store; a running job gets a new point within 3 s and shows its end."""
import os
import time

from bclib import Cluster
from webtest import Bcd, probe, screenshot_dir, token

c = Cluster()
shots = screenshot_dir()
# The known hierarchy: the batch shell -> sh -> sleep, a writer of 32 MiB, and a connect to port 9 (refused).
# The monitor attaches its eBPF probes within about a second of the job's start: the work starts after that.
script = """#!/bin/bash
sleep 1.5
bash -c 'exec 3<>/dev/tcp/127.0.0.1/9' 2>/dev/null
sh -c 'sleep 4; true' &
dd if=/dev/zero of=/tmp/bc-web-$SLURM_JOB_ID bs=1M count=32 conv=fsync status=none
sleep 1
wait
rm -f /tmp/bc-web-$SLURM_JOB_ID
"""
job = c.sbatch(script, "-n1")
st = c.wait_job(job)
assert st["JobState"] == "COMPLETED", st
c.wait_monitor_gone(job)
truth = c.bcacct_json(job)

# bcd reads the node store directly (LMDB readers never block the monitors). Its notes' thresholds judge
# jobs of seconds (and, as on any CR_Core cluster, where every limit is the node's memory, no memory limit).
notes_conf = os.path.join(c.jobs_dir, f"web-notes-{os.getpid()}.conf")
with open(notes_conf, "w") as f:
    f.write("min_elapsed_s = 1\nmemory_low_min_bytes = 1e15\n")
bcd = Bcd(c.store, extra_conf=f"notes_config={notes_conf}\n")
try:
    page = f"{bcd.base}/static/index.html?container=job_{job}&token={token(f'job_{job}')}"
    out = probe(page, "--screenshot", os.path.join(shots, "slurm-finished-desktop.png"),
                "--files-filter", f"bc-web-{job}", "--connections-filter", "127.0.0.1")
    assert out["ready"], out
    f = {k: v["value"] for k, v in out["fields"].items()}
    j = truth["job"]
    for key in ("cpu_seconds", "max_rss_bytes", "read_bytes", "write_bytes"):
        assert float(f[key]) == float(j[key]), (key, f[key], j[key])
    assert f["user"] == j["user"] and f["nodes"] == ",".join(j["nodes"]) and f["start"] == j["start"] \
        and f["end"] == j["end"] and f["state"] == "completed", (f, j)
    assert int(f["processes"]) == len(truth["processes"]), (f["processes"], len(truth["processes"]))
    assert int(f["lost_events"]) == j.get("lost_events", 0), (f["lost_events"], j.get("lost_events"))
    if j.get("cpu_efficiency") is not None:
        assert abs(float(f["efficiency"]) - 100 * j["cpu_efficiency"]) < 1e-9, (f["efficiency"], j["cpu_efficiency"])
    print(f"ok header equals bcacct --json: cpu {f['cpu_seconds']} s, MaxRSS {f['max_rss_bytes']}, "
          f"write {f['write_bytes']} bytes")
    n_total = int(out["points"]["total"])
    assert n_total >= 4 and int(out["points"]["cpu"].split("x")[0]) >= 3, out["points"]
    print(f"ok charts have points: {out['points']}")
    rows = {r["text"]: r for r in out["tree_rows"]}
    shell = next(r for t, r in rows.items() if t.startswith("/bin/bash") and t.endswith("slurm_script"))
    sh = rows["sh -c sleep 4; true"]
    sleep = rows["sleep 4"]
    assert sh["level"] == shell["level"] + 1 and sleep["level"] == sh["level"] + 1, (shell, sh, sleep)
    order = [r["pid"] for r in out["tree_rows"]]
    assert order.index(shell["pid"]) < order.index(sh["pid"]) < order.index(sleep["pid"]), order
    print("ok tree shows slurm_script -> sh -> sleep")
    # The notes block says what the API's notes say: this job mostly slept on its CPU.
    api_notes = bcd.get_json(f"/api/v1/jobs/{job}/notes", {"X-Munge-Credential": bcd.cred("root")})["notes"]
    assert "cpu_efficiency" in [n["id"] for n in api_notes], api_notes
    assert out["notes"] == [{"id": n["id"], "text": n["text"]} for n in api_notes], (out["notes"], api_notes)
    print(f"ok notes block: {[n['text'] for n in out['notes']]}")
    # Files and connections: the page shows exactly what the store has for the job.
    files = bcd.get_json(f"/api/v1/jobs/{job}/files", {"X-Munge-Credential": bcd.cred("root")})["files"]
    conns = bcd.get_json(f"/api/v1/jobs/{job}/connections", {"X-Munge-Credential": bcd.cred("root")})["connections"]
    if files:
        ours = [x for x in files if x["path"] == f"/tmp/bc-web-{job}"]
        assert ours, f"the store has no record of the job's output file among {len(files)}"
        shown = [r for r in out["files_filtered"] if r[2] == f"/tmp/bc-web-{job}"]
        assert [(r[0], r[1], r[3], r[4]) for r in shown] == \
            [(str(x["pid"]), x["command"], x["flags"], str(x["opens"])) for x in ours], (shown, ours)
        assert "w" in shown[0][3] and shown[0][1] == "dd", shown
        print(f"ok files table, filtered, shows dd writing the job's output file ({len(files)} files in all)")
    else:
        assert out["files"] and "No files recorded" in out["files"][0][0], out["files"]
        print("ok no events recorded for this job (" + (f.get("events_unavailable") or "no reason stored") +
              "): the files table says so")
    if files:
        ours = [x for x in conns if x["address"] == "127.0.0.1" and x["port"] == 9]
        assert ours and ours[0]["protocol"] == "tcp" and ours[0]["failed"] >= 1, conns
        shown = [r for r in out["connections_filtered"] if r[2] == "127.0.0.1" and r[3] == "9"]
        assert [(r[0], r[4], r[5], r[6]) for r in shown] == \
            [(str(x["pid"]), x["protocol"], str(x["count"]), str(x["failed"])) for x in ours], (shown, ours)
        print("ok connections table shows the refused connect to 127.0.0.1:9")
    else:
        assert len(out["connections"]) == max(1, len(conns)), (out["connections"], conns)

    # A running job: live points, then its end. It runs long enough that the page is streaming before it
    # ends even when Chromium is slow to start on a loaded machine (with 7 s it once ended first, and the
    # probe then waited in vain for a second point).
    live_job = c.sbatch("#!/bin/bash\ntimeout 20 sh -c 'while :; do :; done'\nsleep 1\n", "-n1")
    deadline = time.time() + 30
    while time.time() < deadline and bcd.get(f"/api/v1/jobs/{live_job}", {"X-Munge-Credential": bcd.cred("root")})[0] != 200:
        time.sleep(0.3)
    page = f"{bcd.base}/static/index.html?container=job_{live_job}&token={token(f'job_{live_job}')}"
    out = probe(page, "--live", "40", "--screenshot", os.path.join(shots, "slurm-live.png"))
    assert out["ready"], out
    assert out["new_point_ms"] <= 3000, f"no new point within 3 s ({out['new_point_ms']} ms)"
    assert out["ended"] and "Job ended" in out["live"], out["live"]
    # One stream, no polling: after the end, one reload of the views (job, tree, files, connections, notes and
    # 4 series).
    assert out["requests_while_live"] <= 10, f"{out['requests_while_live']} requests while streaming"
    print(f"ok live: a new point {out['new_point_ms']} ms after the first, the end shown, "
          f"{out['requests_while_live']} requests while streaming")
    c.wait_job(live_job)

    # Ranks: srun -n4 where each task's helper burns a different amount of CPU. The tree has a rank column,
    # and the CPU chart grouped per rank shows one line per rank whose CPU is its processes' in bcacct.
    rank_job = c.sbatch(f"#!/bin/bash\nsrun -n4 --overcommit sh -c '{c.testload} busy 0.$((SLURM_PROCID + 3)) "
                        "/dev/null & wait'\n", "-n4", "--overcommit")
    assert c.wait_job(rank_job)["JobState"] == "COMPLETED"
    c.wait_monitor_gone(rank_job)
    ranks = c.bcacct_json(rank_job)["processes"]
    per_rank = {}
    for p in ranks:
        if p["task"] is not None and p["step"] == "0":  # the batch script is task 0 of its own step
            per_rank[p["task"]] = per_rank.get(p["task"], 0) + p["cpu_seconds"]
    assert sorted(per_rank) == [0, 1, 2, 3], ranks
    answer = bcd.get_json(f"/api/v1/jobs/{rank_job}/series?metric=cpu&top=8&group=task",
                          {"X-Munge-Credential": bcd.cred("root")})
    keys = [s["key"] for s in answer["series"]]
    assert keys[:5] == ["total", "task:0:0", "task:0:1", "task:0:2", "task:0:3"] and keys[5:] in ([], ["other"]), keys
    for s in answer["series"][1:5]:
        rank = int(s["key"].split(":")[2])
        charted = sum(s["cpu_seconds"])
        assert abs(charted - per_rank[rank]) <= 0.05 + 0.1 * per_rank[rank], (rank, charted, per_rank[rank])
    print("ok series group=task: one series per rank, each with its processes' CPU in bcacct:",
          {r: round(v, 2) for r, v in sorted(per_rank.items())})
    page = f"{bcd.base}/static/index.html?container=job_{rank_job}&group=task&token={token(f'job_{rank_job}')}"
    out = probe(page, "--screenshot", os.path.join(shots, "slurm-ranks.png"))
    assert out["ready"], out
    assert out["rank_header"] and out["group_control"] and out["cpu_caption"].startswith("CPU per rank"), out
    labels = out["labels_cpu"].split("|")
    assert labels[:4] == ["rank 0", "rank 1", "rank 2", "rank 3"], labels
    by_pid = {p["pid"]: p for p in ranks}
    for r in out["tree_rows"]:
        want = by_pid[r["pid"]]["task"]
        assert r["rank"] == ("" if want is None else str(want)), (r, by_pid[r["pid"]])
    print(f"ok page: a rank column on {len(out['tree_rows'])} rows, the CPU chart per rank ({labels})")

    # Threads over time: a program that runs 6 threads beside its main one for 4 s. Its series has 7 at the
    # seconds it ran them, and the page's threads chart has a line for it.
    thread_job = c.sbatch(f"#!/bin/bash\n{c.testload} threads 6 4 /dev/null\n", "-c2")
    assert c.wait_job(thread_job)["JobState"] == "COMPLETED"
    c.wait_monitor_gone(thread_job)
    root = lambda: {"X-Munge-Credential": bcd.cred("root")}  # a credential is good for one request
    procs = bcd.get_json(f"/api/v1/jobs/{thread_job}/processes", root())["processes"]
    runner = next(p for p in procs if p["argv"][1:3] == ["threads", "6"])
    assert runner["max_threads"] == 7, runner
    one = bcd.get_json(f"/api/v1/jobs/{thread_job}/series?metric=threads&resolution=s&process={runner['series']}",
                       root())["series"][0]
    counts = one["threads_max"]
    assert max(counts) == 7 and counts.count(7) >= 2, counts
    total = bcd.get_json(f"/api/v1/jobs/{thread_job}/series?metric=threads&resolution=s", root())["series"][0]
    assert max(total["threads_max"]) >= 8, total["threads_max"]  # the batch shell's thread, and the 7
    print(f"ok threads over time: the program's series {counts}, the job's most at once {max(total['threads_max'])}")
    out = probe(f"{bcd.base}/static/index.html?container=job_{thread_job}&token={token(f'job_{thread_job}')}")
    assert out["ready"] and f"{runner['pid']} " in out["labels_threads"], out["labels_threads"]
    print(f"ok page: the threads chart shows {out['labels_threads']}")
finally:
    bcd.stop()
