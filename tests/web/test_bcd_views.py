"""bcd's per-job views (processes, tree, series, stream) against a real bcd and munged: values agree with the
job records, who may read what, bad input gets a 4xx and bcd keeps serving, live streams and their bound."""
import gzip
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from webtest import Bcd, require_root, ensure_user, token

require_root("test users and munged")
build = os.environ["BC_BUILD"]
alice, bob = ensure_user("bctest_alice"), ensure_user("bctest_bob")
work = tempfile.mkdtemp(prefix="bc-views-")
store = os.path.join(work, "central.lmdb")
subprocess.run([f"{build}/tests/integration/bc-make-store", store, f"41:bctest_alice:{alice}:done",
                f"42:bctest_alice:{alice}:running", f"43:bctest_bob:{bob}:done"], check=True)
# A 50-process job of 300 one-second ticks, aligned to a minute (1800000000 % 60 == 0).
subprocess.run([f"{build}/tests/web/bc-web-store", store, "7", "bctest_alice", str(alice), "50", "300"], check=True,
               stdout=subprocess.DEVNULL)
static = os.path.join(work, "static")
os.makedirs(static)
bcd = Bcd(store, static, extra_conf="max_streams=3\n")
def as_root():
    return {"X-Munge-Credential": bcd.cred("root")}


def close(a, b, what, rel=1e-6):
    assert abs(a - b) <= rel * max(1.0, abs(b)), f"{what}: {a} != {b}"


def sse(path, until, timeout=15):
    """Reads a stream's events [(name, data)] until until(events) is true or the stream ends."""
    host, port = bcd.base[len("http://"):].split(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    # HTTP/1.0: no chunked encoding to take apart; the body ends when the server closes.
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    buf, events, deadline = b"", [], time.time() + timeout
    head = None
    while time.time() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        if head is None and b"\r\n\r\n" in buf:
            head, buf = buf.split(b"\r\n\r\n", 1)
        text = buf.decode(errors="replace")
        lines = text.replace("\r\n", "\n").split("\n")
        events, name, data = [], None, []
        for ln in lines:
            if ln.startswith("event: "):
                name = ln[7:]
            elif ln.startswith("data: "):
                data.append(ln[6:])
            elif ln == "" and name:
                events.append((name, "\n".join(data)))
                name, data = None, []
        if until(events):
            break
    s.close()
    return (head or b"").decode(), events


try:
    # --- processes and tree
    procs = bcd.get_json("/api/v1/jobs/job_41/processes", as_root())["processes"]
    assert [(p["pid"], p["ppid"], p["argv"]) for p in procs] == [(100, 1, ["bash"]), (101, 100, ["work"])], procs
    assert procs[0]["cpu_seconds"] == 1.25 and procs[0]["write_bytes"] == 4096 and procs[0]["end"], procs[0]
    tree = bcd.get_json("/api/v1/jobs/41/tree", as_root())["processes"]
    assert [(p["pid"], p["depth"], p["parent"], p["children"]) for p in tree] == [(100, 0, -1, 1), (101, 1, 0, 0)], tree
    print("ok processes and tree of job 41 (bash -> work)")

    # --- series: second resolution, then minutes; every CPU second of the record is in the series once
    header = bcd.get_json("/api/v1/jobs/7", as_root())
    assert [r["node"] for r in header["node_records"]] == ["node001"] and header["node_records"][0]["lost_events"] == 0
    s = bcd.get_json("/api/v1/jobs/job_7/series", as_root())
    assert s["resolution"] == "second" and s["width_s"] == 1, s["resolution"]
    total = s["series"][0]
    assert total["key"] == "total" and len(total["t"]) == 300, len(total["t"])
    close(sum(total["cpu_seconds"]), header["job"]["cpu_seconds"], "job cpu: series sum vs record")
    close(max(total["rss_max_bytes"]), header["job"]["max_rss_bytes"], "job peak rss: series vs record")
    m = bcd.get_json("/api/v1/jobs/job_7/series?resolution=m&metric=cpu", as_root())
    assert m["resolution"] == "minute" and len(m["series"][0]["t"]) == 5, m["series"][0]["t"]
    assert "rss_mean_bytes" not in m["series"][0], "metric=cpu returns only CPU columns"
    close(sum(m["series"][0]["cpu_seconds"]), header["job"]["cpu_seconds"], "job cpu: minute buckets vs record")
    # auto picks minutes for a window over an hour, seconds for a short one
    a = bcd.get_json("/api/v1/jobs/job_7/series?from=1800000000&to=1800007200", as_root())
    assert a["resolution"] == "minute", a["resolution"]
    a = bcd.get_json("/api/v1/jobs/job_7/series?from=1800000100&to=1800000159", as_root())
    assert a["resolution"] == "second" and a["series"][0]["t"] == list(range(1800000100, 1800000160))
    print("ok series: 300 seconds, 5 minutes, auto resolution by window; sums equal the job record")

    # --- compact answers: at second resolution (one sample per bucket) each max equals its mean, so it is
    # sent once and named in "same"; counts are integers; CPU percent to 0.01, true to the minute means
    assert total["same"] == {"cpu_percent_max": "cpu_percent_mean", "rss_mean_bytes": "rss_max_bytes",
                             "threads_mean": "threads_max"}, total.get("same")
    assert "cpu_percent_max" not in total and "rss_mean_bytes" not in total, sorted(total)
    for c in ("t", "samples", "rss_max_bytes", "read_bytes", "write_bytes", "threads_max"):
        assert all(type(v) is int for v in total[c]), c
    mall = bcd.get_json("/api/v1/jobs/job_7/series?resolution=m", as_root())["series"][0]
    assert "same" not in mall and all(x >= n for x, n in zip(mall["cpu_percent_max"], mall["cpu_percent_mean"])), mall
    for i, minute in enumerate(mall["t"]):
        secs = [k for k, t in enumerate(total["t"]) if minute <= t < minute + 60]
        # the first point of the job has no interval yet, so no CPU percent: it counts for nothing in the mean
        weights = [0 if total["t"][k] == total["t"][0] else 1 for k in secs]
        mean = sum(total["cpu_percent_mean"][k] * w for k, w in zip(secs, weights)) / sum(weights)
        assert abs(mean - mall["cpu_percent_mean"][i]) <= 0.011, (i, mean, mall["cpu_percent_mean"][i])
        rss = sum(total["rss_max_bytes"][k] for k in secs) // len(secs)
        assert abs(rss - mall["rss_mean_bytes"][i]) <= 1, (i, rss, mall["rss_mean_bytes"][i])
        threads = [total["threads_max"][k] for k in secs]
        assert abs(sum(threads) / len(secs) - mall["threads_mean"][i]) <= 0.006, (i, threads, mall["threads_mean"][i])
        assert max(threads) == mall["threads_max"][i], (i, threads, mall["threads_max"][i])
    # bc-web-store's 50 processes run 1 to 4 threads each (125), and 2 more now and then.
    assert 125 <= min(total["threads_max"]) and max(total["threads_max"]) <= 225, total["threads_max"]
    print("ok compact series: duplicate max columns named in same, integers, minute means agree with seconds, "
          f"threads {min(total['threads_max'])} to {max(total['threads_max'])}")
    th = bcd.get_json("/api/v1/jobs/job_7/series?metric=threads&top=3&resolution=m", as_root())["series"]
    assert [s["key"] for s in th][-1] == "other" and len(th) == 5, [s["key"] for s in th]
    assert sorted(c for c in th[0] if c not in ("key", "label", "same")) == ["samples", "t", "threads_max",
                                                                             "threads_mean"], sorted(th[0])
    assert all(max(s["threads_max"]) == 6 for s in th[1:4]), [max(s["threads_max"]) for s in th[1:4]]
    print("ok metric=threads: the 3 processes with the most threads (4, and 2 more at times) and other")

    # --- gzip: a browser gets the same answer compressed; curl and bcacct (no Accept-Encoding) as is
    def raw(path, headers):
        with urllib.request.urlopen(urllib.request.Request(bcd.base + path, headers=headers), timeout=10) as r:
            return r.headers, r.read()
    for view in ("series", "tree", "series?top=5&metric=cpu"):
        plain_h, plain = raw(f"/api/v1/jobs/7/{view}", as_root())
        gz_h, packed = raw(f"/api/v1/jobs/7/{view}", {**as_root(), "Accept-Encoding": "gzip, deflate, br"})
        assert plain_h.get("Content-Encoding") is None and gz_h["Content-Encoding"] == "gzip", (view, gz_h)
        assert "Accept-Encoding" in gz_h["Vary"] and "Accept-Encoding" in plain_h["Vary"], gz_h
        assert gzip.decompress(packed) == plain and len(packed) < len(plain) / 2, (view, len(packed), len(plain))
        refused_h, body = raw(f"/api/v1/jobs/7/{view}", {**as_root(), "Accept-Encoding": "gzip;q=0, identity"})
        assert refused_h.get("Content-Encoding") is None and body == plain, view
    print("ok gzip answers equal the plain ones; q=0 refuses gzip")

    # per process and top N + other
    procs7 = {p["key"]: p for p in bcd.get_json("/api/v1/jobs/7/processes", as_root())["processes"]}
    one = bcd.get_json("/api/v1/jobs/7/series?process=3", as_root())["series"]
    assert len(one) == 1 and one[0]["key"] == "node001:3", one[0]["key"]
    close(sum(one[0]["cpu_seconds"]), procs7["node001:3"]["cpu_seconds"], "process 3 cpu: series vs record")
    top = bcd.get_json("/api/v1/jobs/7/series?top=5&metric=cpu&resolution=m", as_root())["series"]
    keys = [x["key"] for x in top]
    assert keys[0] == "total" and keys[-1] == "other" and len(keys) == 7, keys
    assert "cpu_percent_max" not in top[-1] and "same" not in top[-1], "other has no maxima"
    # a series with the total's buckets leaves t out (other always; these processes ran the whole job)
    assert "t" not in top[-1] and all("t" not in x for x in top[1:]) and len(top[0]["t"]) == 5, top
    assert all(len(x["cpu_seconds"]) == len(top[0]["t"]) for x in top), [len(x["cpu_seconds"]) for x in top]
    heaviest = sorted(procs7.values(), key=lambda p: -p["cpu_seconds"])[:5]
    assert keys[1:6] == [p["key"] for p in heaviest], (keys, [p["key"] for p in heaviest])
    for i in range(5):
        close(sum(x["cpu_seconds"][i] for x in top[1:]), top[0]["cpu_seconds"][i],
              f"minute {i}: top 5 + other = total")
    print("ok series per process and top 5 + other add up to the job total")

    # --- files and connections, as bc-web-store wrote them
    files = bcd.get_json("/api/v1/jobs/7/files", as_root())["files"]
    assert len(files) == 51, len(files)
    missing = [f for f in files if f["path"] == "/etc/missing.conf"]
    assert missing and missing[0]["opens"] == 3 and missing[0]["failed"] == 3 and missing[0]["pid"] == 10000, missing
    f10 = [f for f in files if f["pid"] == 10010]
    assert [(f["path"], f["flags"], f["process"], f["command"]) for f in f10] == \
        [("/scratch/case10.dat", "r", "node001:11", "solver")], f10
    conns = bcd.get_json("/api/v1/jobs/job_7/connections", as_root())["connections"]
    assert sorted((c["address"], c["port"], c["protocol"], c["count"], c["failed"]) for c in conns) == \
        [("10.0.0.0", 5000, "tcp", 2, 0), ("10.0.0.1", 5000, "tcp", 2, 0), ("10.0.0.2", 5000, "tcp", 2, 1)], conns
    files41 = bcd.get_json("/api/v1/jobs/41/files", as_root())["files"]  # bc-make-store's: one per process
    assert sorted((f["path"], f["pid"]) for f in files41) == [("/scratch/bash.dat", 100), ("/scratch/work.dat", 101)], \
        files41
    # the same names and times as bcacct --json (read from the store directly): first_open, first_connect
    acct = json.loads(subprocess.run([f"{build}/sacct_ext/bcacct", "--store", store, "-j", "7", "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    acct_files, acct_conns = acct["files"], acct["connections"]
    assert sorted((f["path"], f["pid"], f["first_open"]) for f in files) == \
        sorted((f["path"], f["pid"], f["first_open"]) for f in acct_files), (files[:2], acct_files[:2])
    assert sorted((c["address"], c["first_connect"]) for c in conns) == \
        sorted((c["address"], c["first_connect"]) for c in acct_conns), (conns, acct_conns)
    assert files[0]["first_open"] == "2027-01-15T08:00:00.000Z", files[0]  # bc-web-store's first tick
    print("ok files and connections of job 7, with their processes")

    # --- ids, bad input: 4xx, and bcd keeps serving
    bad = [("/api/v1/jobs/zz/series", 400), ("/api/v1/jobs/job_x/tree", 400),
           ("/api/v1/jobs/abcdef012345/tree", 404), ("/api/v1/jobs/999/processes", 404),
           ("/api/v1/jobs/7/series?metric=bogus", 400), ("/api/v1/jobs/7/series?resolution=week", 400),
           ("/api/v1/jobs/7/series?from=abc", 400), ("/api/v1/jobs/7/series?from=20&to=10", 400),
           ("/api/v1/jobs/7/series?top=1000", 400), ("/api/v1/jobs/7/series?top=2&process=1", 400),
           ("/api/v1/jobs/7/series?process=9999", 404), ("/api/v1/jobs/7/series?process=-1", 400),
           ("/api/v1/jobs/7/stream?since=x", 400), ("/api/v1/jobs/7/tree/extra", 404),
           # numbers: a lone sign, past 64 bits, or past what seconds make in milliseconds: 400, never 500
           ("/api/v1/jobs/7/series?from=-", 400), ("/api/v1/jobs/7/series?top=-", 400),
           ("/api/v1/jobs/7/series?process=-", 400), ("/api/v1/jobs/7/stream?since=-", 400),
           ("/api/v1/jobs/7/series?to=99999999999999999999", 400), ("/api/v1/jobs/7/series?from=+5", 400),
           ("/api/v1/jobs/7/series?from=%205", 400), ("/api/v1/jobs?from=-", 400),
           ("/api/v1/jobs?from=9223372036854775807", 400), ("/api/v1/jobs?to=-9223372036854775808", 400),
           ("/api/v1/jobs?array=99999999999", 400)]
    for path, want in bad:
        st, body = bcd.get(path, as_root())
        assert st == want and "error" in json.loads(body), (path, st, body)
    assert bcd.get("/api/v1/health")[0] == 200
    print(f"ok {len(bad)} bad requests answered with their 4xx; bcd still serves")

    # --- authorization on every view
    for v in ["processes", "tree", "series", "files", "connections"]:
        assert bcd.get(f"/api/v1/jobs/41/{v}")[0] == 401
        assert bcd.get(f"/api/v1/jobs/41/{v}?token={token('job_41')}")[0] == 200
        assert bcd.get(f"/api/v1/jobs/job_41/{v}", {"Authorization": "Bearer " + token("job_41")})[0] == 200
        assert bcd.get(f"/api/v1/jobs/41/{v}?token={token('job_43')}")[0] == 403
        assert bcd.get(f"/api/v1/jobs/41/{v}?token={token('job_41', exp=int(time.time()) - 5)}")[0] == 401
        t = token("job_43").split(".")
        forged = t[0] + "." + token("job_41").split(".")[1] + "." + t[2]
        assert bcd.get(f"/api/v1/jobs/41/{v}?token={forged}")[0] == 401
        assert bcd.get(f"/api/v1/jobs/41/{v}?token={token('job_41', key='another-secret-abcdefgh')}")[0] == 401
        assert bcd.get(f"/api/v1/jobs/41/{v}", {"X-Munge-Credential": bcd.cred("bctest_alice")})[0] == 200
        assert bcd.get(f"/api/v1/jobs/43/{v}", {"X-Munge-Credential": bcd.cred("bctest_alice")})[0] == 403
        assert bcd.get(f"/api/v1/jobs/43/{v}", {"X-Munge-Credential": bcd.cred("bctest_bob")})[0] == 200
        assert bcd.get(f"/api/v1/jobs/43/{v}", as_root())[0] == 200
    st, _ = bcd.get(f"/api/v1/jobs/41/stream?token={token('job_43')}")
    assert st == 403
    print("ok views: token for job A cannot read job B; expired, tampered, other secret refused; "
          "a user sees only own jobs, root all")

    # --- streams: a finished job sends its last points and ends; a live job sends new points each second
    head, ev = sse(f"/api/v1/jobs/41/stream?token={token('job_41')}", lambda e: any(n == "end" for n, _ in e))
    assert "text/event-stream" in head and [n for n, _ in ev][-1] == "end", (head, ev)
    job = json.loads(next(d for n, d in ev if n == "job"))
    assert job["job"]["id"] == 41 and "processes" not in job, job
    print("ok stream of a finished job: header, samples, then the end event")

    writer = subprocess.Popen([f"{build}/tests/web/bc-web-store", store, "8", "bctest_alice", str(alice), "3", "6",
                               "live"], stdout=subprocess.DEVNULL)
    time.sleep(1.2)
    t0 = time.time()
    head, ev = sse(f"/api/v1/jobs/8/stream?token={token('job_8')}", lambda e: any(n == "end" for n, _ in e),
                   timeout=20)
    writer.wait(timeout=10)
    times = sorted({t for n, d in ev if n == "samples" for s_ in json.loads(d)["series"] if s_["key"] == "total"
                    for t in s_["t"]})
    assert [n for n, _ in ev][-1] == "end", ev
    last = bcd.get_json("/api/v1/jobs/8/series", as_root())["series"][0]["t"][-1]
    assert len(times) >= 3 and times == list(range(times[0], last + 1)), (times, last)
    samples_events = sum(1 for n, _ in ev if n == "samples")
    assert 3 <= samples_events <= 8, f"one samples event per second, got {samples_events}"
    procs_sent = [p["key"] for n, d in ev if n == "samples" for p in json.loads(d)["processes"]]
    assert set(procs_sent) == {"node001:1", "node001:2", "node001:3"}, procs_sent
    print(f"ok live stream: {len(times)} consecutive seconds in {samples_events} events over "
          f"{time.time() - t0:.1f}s, then the end event")

    # --- a stream ends when its token does: an "expired" event, then the server closes it
    t0 = time.time()
    head, ev = sse(f"/api/v1/jobs/42/stream?token={token('job_42', ttl=2)}", lambda e: False, timeout=12)
    took = time.time() - t0
    assert [n for n, _ in ev][-1:] == ["expired"] and "expired" in ev[-1][1], ev
    assert took < 8, f"the stream outlived its token by {took - 2:.1f}s"
    print(f"ok a live stream whose token expires gets 'expired' and is closed ({took:.1f}s after opening)")

    # --- at most max_streams=3 at once: the fourth gets 503, and a freed slot is reusable
    conns = []
    for _ in range(3):
        c = socket.create_connection(("127.0.0.1", int(bcd.base.rsplit(":", 1)[1])))
        c.sendall(f"GET /api/v1/jobs/42/stream?token={token('job_42')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert b"200" in c.recv(100)
        conns.append(c)
    st, body = bcd.get(f"/api/v1/jobs/42/stream?token={token('job_42')}")
    assert st == 503 and "max_streams" in body, (st, body)
    assert bcd.get("/api/v1/jobs/42/series", as_root())[0] == 200  # the rest keeps serving
    metrics = bcd.get("/metrics")[1]
    assert "bcd_streams 3" in metrics and 'reason="too_many_streams"} 1' in metrics, metrics
    print("ok a fourth stream over max_streams=3 gets 503; other requests are served")
finally:
    # Stopping with streams parked must still be graceful and quick.
    t0 = time.time()
    log = bcd.stop()
    print(f"ok bcd stopped on SIGTERM in {time.time() - t0:.1f}s with live streams open")
    subprocess.run(["rm", "-rf", work])
