"""A real Slurm job's data reaches bcd although bcd was down for the whole job: the node store spools it,
the next monitor on the node ships the leftovers once bcd is up, and bcd then holds exactly the node
store's processes and samples (no loss, no duplicates). bcd serves HTTPS, and the plugin's ca_file= reaches
the monitors: with a CA that did not sign bcd's certificate a monitor ships nothing and says why."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import tlslib
from bclib import Cluster

c = Cluster()
tool = os.path.join(c.build, "tests", "central", "bc-central-tool")
bcadm = os.path.join(c.build, "web", "bcadm")


def count(store, job):
    out = c.run(tool, "count", store, str(job)).stdout.split()
    return dict(zip(out[::2], map(int, out[1::2])))


def pending():
    return int(c.run(tool, "pending", c.store).stdout.split()[1])


def ingest_counter(name):  # one of bcd's /metrics counters
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    return int([l for l in text.splitlines() if l.startswith(name + " ")][0].split()[1])


def processes(store, job):
    data = json.loads(c.run(c.bcacct_bin, "--store", store, "-j", str(job), "--json").stdout)
    return sorted((p["node"], p["pid"], p["command"], p["cpu_seconds"], p["write_bytes"]) for p in data["processes"])


s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()  # nothing listens here while the first job runs
url = f"https://127.0.0.1:{port}"
tlslib.trust()
work = tempfile.mkdtemp(prefix="bc-central-slurm-")
central = os.path.join(work, "central.lmdb")
good = open(os.path.join(c.work, "plugstack.good")).read().strip()
c.plugstack(good + f" central={url} ca_file={tlslib.CA}\n")
bcd = None
try:
    before = pending()
    job1 = c.sbatch("#!/bin/bash\n"
                    "timeout 2 sh -c 'while :; do :; done' &\n"
                    "sleep 1\n"  # the monitor's events are attached by then
                    "dd if=/dev/zero of=" + work + "/out bs=1M count=8 conv=fsync status=none\n"
                    "sleep 1.5; wait\n")
    assert c.wait_job(job1)["JobState"] == "COMPLETED"
    c.wait_monitor_gone(job1, timeout=20)
    spooled = pending() - before
    assert spooled >= 5, f"job {job1}: only {spooled} batches in the outbox"
    assert "left in the node store's outbox" in open(c.monitor_log).read()
    print(f"ok bcd down for the whole job {job1}: {spooled} batches wait in the node store's outbox")

    conf = os.path.join(work, "bcd.conf")
    open(conf, "w").write(f"listen=127.0.0.1:{port}\nstore={central}\nstatic_dir={work}\nauth_disable=yes\n" +
                          tlslib.bcd_conf())
    c.run(bcadm, "db", "init", "--store", central)
    bcd = subprocess.Popen([os.path.join(c.build, "web", "bcd"), "--config", conf, "--port-file", work + "/port"],
                           stderr=open(os.path.join(work, "bcd.log"), "w"))
    for _ in range(100):
        if os.path.exists(work + "/port"):
            break
        time.sleep(0.05)
    # A monitor trusting another CA refuses bcd: nothing is sent, the monitor log says why, all stays spooled.
    c.plugstack(good + f" central={url} ca_file={tlslib.OTHER_CA}\n")
    log_before = os.path.getsize(c.monitor_log)
    spooled_before = pending()
    job_refused = c.sbatch("#!/bin/bash\nsleep 1\n")
    assert c.wait_job(job_refused)["JobState"] == "COMPLETED"
    c.wait_monitor_gone(job_refused, timeout=20)
    with open(c.monitor_log) as f:
        f.seek(log_before)
        refusal = f.read()
    assert f"shipping to {url}: failed, will retry with backoff: {url}/api/v1/ingest: SSL certificate problem" \
        in refusal, refusal
    assert pending() > spooled_before and ingest_counter("bcd_ingest_requests_total") == 0, pending()
    print(f"ok job {job_refused} with ca_file= another CA: its monitor refused bcd, naming the URL and curl's "
          "reason; nothing sent")
    # The next job's monitor, with the CA that signed bcd, ships its own data and what the others left.
    c.plugstack(good + f" central={url} ca_file={tlslib.CA}\n")
    job2 = c.sbatch("#!/bin/bash\nsleep 1\n")
    assert c.wait_job(job2)["JobState"] == "COMPLETED"
    c.wait_monitor_gone(job2, timeout=20)
    deadline = time.time() + 20
    while pending() and time.time() < deadline:
        time.sleep(0.2)
    assert pending() == 0, f"{pending()} batches still unshipped"
    r = c.run(bcadm, "ship", "--store", c.store, "--central", url, "--ca-file", tlslib.CA)
    assert "shipped 0 batch(es)" in r.stdout, r.stdout
    for job in (job1, job_refused, job2):
        node_side, central_side = count(c.store, job), count(central, job)
        assert central_side == node_side and node_side["points"] > 0, (job, node_side, central_side)
        assert processes(central, job) == processes(c.store, job), job
        for view in (["--files", "--all"], ["--net"]):
            node_view = c.run(c.bcacct_bin, "--store", c.store, "-j", str(job), *view).stdout
            assert c.run(c.bcacct_bin, "--store", central, "-j", str(job), *view).stdout == node_view, (job, view)
        print(f"ok job {job}: bcd holds what the node store holds: {central_side}")
    assert ingest_counter("bcd_ingest_batches_total") >= spooled
    files = c.run(c.bcacct_bin, "--store", central, "-j", str(job1), "--files", "--all").stdout
    assert work + "/out" in files or "events unavailable" in c.bcacct("-j", str(job1)).stdout, files
    print("ok the next monitor on the node shipped the leftovers; bcadm ship found nothing left")

    # ---- ship_every=3: while bcd keeps up, the monitor sends a round at most every 3 s (the ticks since the
    # last round in one request) instead of one request per tick (0.2 s here), and its last ticks at exit.
    c.plugstack(good + f" central={url} ca_file={tlslib.CA} ship_every=3\n")
    requests_before = ingest_counter("bcd_ingest_requests_total")
    batches_before = ingest_counter("bcd_ingest_batches_total")
    job3 = c.sbatch("#!/bin/bash\nsleep 7\n")
    assert c.wait_job(job3)["JobState"] == "COMPLETED"
    c.wait_monitor_gone(job3, timeout=20)
    requests = ingest_counter("bcd_ingest_requests_total") - requests_before
    batches = ingest_counter("bcd_ingest_batches_total") - batches_before
    assert pending() == 0, f"{pending()} batches still unshipped"
    node_side, central_side = count(c.store, job3), count(central, job3)
    assert central_side == node_side and node_side["points"] > 0, (job3, node_side, central_side)
    # 35 to 40 ticks: rounds at the start, after 3 s and 6 s, and the last one at exit.
    assert batches >= 25 and requests <= 6, (batches, requests)
    print(f"ok ship_every=3: job {job3}'s {batches} batches reached bcd in {requests} requests, all of them stored")
finally:
    c.restore_plugstack()
    if bcd:
        bcd.send_signal(signal.SIGTERM)
        bcd.wait(timeout=20)
    subprocess.run(["rm", "-rf", work])
