"""An acknowledged batch survives bcd's death and a power cut.

1. strace: for every ingest answered 200 that applied batches, LMDB wrote a meta page through a synchronous
   descriptor (O_DSYNC) or synced it, after the previous such answer, and every page written to data.mdb was
   synced (fdatasync or fsync) before the answer began to go out. That is what a power cut needs; a real one
   cannot be made here. A call that another thread's call interrupts in strace's output counts with the
   arguments of its start.
2. SIGKILL in a loop: four pushers send 9,000 batches while bcd is killed and restarted every 0.1 to 0.3 s.
   Every pusher resends until it gets 200. At the end the central store holds exactly the points of the node
   stores (nothing acknowledged lost, nothing doubled) and bcadm db check finds no problem."""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

build = os.environ["BC_BUILD"]
tool = f"{build}/tests/central/bc-central-tool"
bcadm = f"{build}/web/bcadm"
bcd_bin = f"{build}/web/bcd"
work = tempfile.mkdtemp(prefix="bc-durability-")
central = os.path.join(work, "central.lmdb")
t0 = int(time.time()) - 4000
rc = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
conf = os.path.join(work, "bcd.conf")
# ingest_auth=off: this test is about what is acknowledged, not who may push (test_central_ingest is).
open(conf, "w").write(f"listen=127.0.0.1:{port}\nstore={central}\nstatic_dir={work}\nauth_secret=durability-0123456789\n"
                      "ingest_auth=off\n")
base = f"http://127.0.0.1:{port}"


def post(body, timeout=10):
    req = urllib.request.Request(base + "/api/v1/ingest", data=body,
                                 headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (OSError, urllib.error.URLError) as e:
        return 0, str(e)


def start_bcd(prefix=()):
    p = subprocess.Popen([*prefix, bcd_bin, "--config", conf], stderr=open(os.path.join(work, "bcd.log"), "a"))
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p
        except OSError:
            time.sleep(0.02)
    raise SystemExit("bcd did not listen")


def node_bodies(name, job, ticks, per):
    store = os.path.join(work, f"{name}.lmdb")
    subprocess.run([tool, "node", store, str(job), name, "root", "0", str(ticks), "2", str(t0)], check=True)
    out = os.path.join(work, f"{name}.bodies")
    os.mkdir(out)
    subprocess.run([tool, "split", store, out, str(per)], check=True)
    return store, [open(os.path.join(out, f), "rb").read() for f in sorted(os.listdir(out), key=int)]


def count(store, job):
    out = subprocess.run([tool, "count", store, str(job)], capture_output=True, text=True, check=True).stdout.split()
    return dict(zip(out[::2], map(int, out[1::2])))


try:
    subprocess.run([bcadm, "db", "init", "--store", central], check=True, capture_output=True)

    # ---- 1. strace: a sync of data and meta before every 200.
    _, bodies = node_bodies("traced", 700, 30, 1)
    trace = os.path.join(work, "strace.out")
    bcd = start_bcd(["strace", "-f", "-qq", "-s", "48", "-o", trace, "-e",
                     "trace=openat,pwrite64,pwritev,write,fsync,fdatasync,msync,sendto,sendmsg,writev,send"])
    for body in bodies:
        st, answer = post(body)
        assert st == 200 and json.loads(answer)["applied"] == 1, (st, answer)
    # SIGTERM to bcd itself (strace would only detach), then strace ends with it.
    traced = subprocess.run(["pgrep", "-P", str(bcd.pid)], capture_output=True, text=True).stdout.split()
    for pid in traced:
        os.kill(int(pid), signal.SIGTERM)
    bcd.wait(timeout=30)
    data_fds, sync_fds = set(), set()
    dirty = committed = False
    answered = unsynced = 0
    sends = ("sendto", "sendmsg", "writev", "write", "send")
    started = {}  # pid -> a call's start, printed on its own line when another thread's call came between
    for line in open(trace):
        m = re.match(r"(\d+)\s+(.*)", line)
        if not m:
            continue
        pid, line = m.groups()
        if line.endswith("<unfinished ...>"):
            line = started[pid] = line[:-len("<unfinished ...>")]
            if not line.startswith(sends):
                continue  # a sync or a write to the store counts when it completed: on its "resumed" line
            # an answer counts from when it began to go out
        elif line.startswith("<... "):
            call_start = started.pop(pid, "")
            if call_start.startswith(sends):
                continue  # counted at its start
            line = call_start + re.sub(r"^<\.\.\. \w+ resumed>", "", line)
        m = re.match(r"(\w+)\((.*)", line)
        if not m:
            continue
        call, args = m.groups()
        ended = re.search(r"= (-?\d+)(?: [A-Z]\w* .*)?$", args)  # a call's start has no result yet
        result = int(ended.group(1)) if ended else 0
        if call == "openat" and "data.mdb" in args and result >= 0:
            data_fds.add(result)
            if "O_DSYNC" in args or "O_SYNC" in args:
                sync_fds.add(result)
            continue
        fd = re.match(r"\s*(\d+)", args)
        fd = int(fd.group(1)) if fd else -1
        if call in ("fdatasync", "fsync") and fd in data_fds:
            committed = committed or dirty  # a meta page written without O_DSYNC is on disk now
            dirty = False
        elif call in ("pwrite64", "pwritev", "writev", "write") and fd in data_fds:
            if fd in sync_fds:
                committed = True  # the meta page, on disk when the write returns
            else:
                dirty = True  # data pages, or a meta page that a sync must follow
        elif call in sends and "HTTP/1.1 200" in args:
            answered += 1
            if dirty or not committed:
                unsynced += 1
            committed = False
    assert answered == len(bodies), (answered, len(bodies), open(trace).read()[-3000:])
    assert unsynced == 0, f"{unsynced} of {answered} answers 200 were sent before data and meta were synced"
    print(f"ok strace: each of {answered} answers 200 came after an fdatasync of data.mdb and a synchronous "
          f"meta write (descriptors {sorted(sync_fds)} O_DSYNC)")

    # ---- 2. SIGKILL in a loop while four pushers send 9,000 batches.
    nodes = [node_bodies(f"n{i}", 710 + i, 2250, 1) for i in range(4)]
    bcd = start_bcd()
    acked = [0, 0, 0, 0]
    retries = [0]
    done = threading.Event()

    def pusher(i):
        for body in nodes[i][1]:
            while True:
                st, answer = post(body, timeout=20)
                if st == 200:
                    acked[i] += 1
                    break
                assert st in (0, 503), (st, answer)  # bcd dead or restarting, never a refusal
                retries[0] += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    kills = 0
    rnd = random.Random(16)
    while any(t.is_alive() for t in threads):
        time.sleep(rnd.uniform(0.1, 0.3))
        if not any(t.is_alive() for t in threads):
            break
        bcd.kill()
        bcd.wait()
        kills += 1
        bcd = start_bcd()
    for t in threads:
        t.join()
    bcd.terminate()
    bcd.wait(timeout=30)
    assert sum(acked) == sum(len(n[1]) for n in nodes), acked
    assert kills >= 10, f"only {kills} kills: the pushers finished too soon to test anything"
    for i, (store, _) in enumerate(nodes):
        want, got = count(store, 710 + i), count(central, 710 + i)
        assert got == want, (i, want, got)
    check = subprocess.run([bcadm, "db", "check", "--store", central], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    batches = sum(len(n[1]) for n in nodes)
    print(f"ok {batches} batches in {sum(acked)} requests, bcd killed {kills} times ({retries[0]} resends): "
          "the central store holds exactly the node stores' points, db check ok")
    rc = 0
finally:
    subprocess.run(["pkill", "-KILL", "-f", f"{bcd_bin} --config {conf}"])
    if rc == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work dir kept: {work}")
raise SystemExit(rc)
