"""bcd ingest over HTTPS against a real munged: two simulated nodes merge into one job, batches are stored once
(also after their dedup entries were folded), every kind of bad push is refused (and counted) while bcd keeps
serving, AUTH_DISABLE never opens ingest, and a node's bounded outbox counts what it gave up."""
import hashlib
import json
import os
import pwd
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

import tlslib
from munge_users import ensure_users, require_root, start_munged, stop_munged

build = os.environ["BC_BUILD"]
require_root("munged, a second user")

tool = f"{build}/tests/central/bc-central-tool"
bcadm = f"{build}/web/bcadm"
work = tempfile.mkdtemp(prefix="bc-central-")
os.chmod(work, 0o755)
USER = "bctest_alice"
ensure_users(USER)
sock = start_munged(work, "munge")
other_sock = start_munged(work, "other")  # another key: its credentials are forgeries to bcd
central = os.path.join(work, "central.lmdb")
secret = "central-test-secret-0123456789"
conf = os.path.join(work, "bcd.conf")
open(conf, "w").write(f"listen=127.0.0.1:0\nstore={central}\nstatic_dir={work}\nauth_secret={secret}\n"
                      f"munge_socket={sock}\npushers=root\nmax_body_bytes=1048576\n" + tlslib.bcd_conf())
port_file = os.path.join(work, "port")
env = {k: v for k, v in os.environ.items() if k not in ("AUTH_SECRET", "AUTH_DISABLE")}
subprocess.run([bcadm, "db", "init", "--store", central], check=True, capture_output=True)
bcd = subprocess.Popen([f"{build}/web/bcd", "--config", conf, "--port-file", port_file], env=env,
                       stderr=open(os.path.join(work, "bcd.log"), "w"))
extra = []  # more bcd instances with other settings
rc = None
try:
    for _ in range(100):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    base = f"https://127.0.0.1:{open(port_file).read().strip()}"  # the bcds started below serve plain HTTP
    tlslib.trust()

    def request(path, body=None, headers=None, method=None):
        req = urllib.request.Request(base + path, data=body, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def cred(payload, socket=sock, user=None):
        cmd = ["munge", "-S", socket, "-s", payload]
        if user:
            cmd = ["runuser", "-u", user, "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    def push(body, credential=None, content_type="application/octet-stream", **kw):
        h = {"Content-Type": content_type}
        h["X-Munge-Credential"] = credential if credential is not None else cred(hashlib.sha256(body).hexdigest())
        h.update(kw.get("extra", {}))
        return request("/api/v1/ingest", body, h)

    def count(store, job):
        out = subprocess.run([tool, "count", store, str(job)], capture_output=True, text=True, check=True).stdout
        return dict(zip(out.split()[::2], map(int, out.split()[1::2])))

    def metric(name, url=None):  # of the main bcd, or of the one at url
        st, text = request("/metrics") if url is None else raw(url, "/metrics")
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def job_json(job):
        st, body = request(f"/api/v1/jobs/{job}", headers={"X-Munge-Credential": cred("")})
        return st, json.loads(body) if st == 200 else body

    # ---- Two simulated nodes, each with its own node store, push parts of job 500 from two processes.
    uid = str(pwd.getpwnam(USER).pw_uid)
    t0 = int(time.time()) - 600
    stores = {}
    for node, procs in (("nodeA", 3), ("nodeB", 2)):
        stores[node] = os.path.join(work, f"{node}.lmdb")
        subprocess.run([tool, "node", stores[node], "500", node, USER, uid, "40", str(procs), str(t0)], check=True)
    shippers = [subprocess.Popen([bcadm, "ship", "--store", s, "--central", base, "--munge-socket", sock,
                                  "--ca-file", tlslib.CA],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in stores.values()]
    for p in shippers:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and "shipped 40 batch(es)" in out, (p.returncode, out, err)
    st, j = job_json(500)
    assert st == 200, (st, j)
    assert j["job"]["nodes"] == ["nodeA", "nodeB"] or sorted(j["job"]["nodes"]) == ["nodeA", "nodeB"], j["job"]
    assert sorted((p["node"], p["pid"]) for p in j["processes"]) == \
        [("nodeA", 1000), ("nodeA", 1001), ("nodeA", 1002), ("nodeB", 1000), ("nodeB", 1001)], j["processes"]
    got = count(central, 500)
    want = {k: count(stores["nodeA"], 500)[k] + count(stores["nodeB"], 500)[k] for k in ("processes", "points")}
    assert got["nodes"] == 2 and got["processes"] == want["processes"] == 5 and got["points"] == want["points"] == 40 * 7, (got, want)
    for s in stores.values():
        assert subprocess.run([tool, "pending", s], capture_output=True, text=True).stdout.strip() == "pending 0"
    assert metric("bcd_ingest_batches_total") == 80
    print("ok two nodes pushing from two processes merge into one job (5 processes, 280 points)")

    # ---- Duplicate and replayed batches are stored once.
    subprocess.run([tool, "node", stores["nodeA"], "501", "nodeA", USER, uid, "5", "2", str(t0)], check=True)
    body_file = os.path.join(work, "b501")
    subprocess.run([tool, "bundle", stores["nodeA"], body_file], check=True)
    body = open(body_file, "rb").read()
    st, answer = push(body)
    assert st == 200 and json.loads(answer)["applied"] == 5, (st, answer)
    st, answer = push(body)  # the same batches again, with a fresh credential
    assert st == 200 and json.loads(answer)["applied"] == 0 and json.loads(answer)["duplicates"] == 5, (st, answer)
    c = cred(hashlib.sha256(body).hexdigest())
    assert push(body, c)[0] == 200
    st, answer = push(body, c)  # the same credential again: munge's replay detection
    assert st == 401 and "replay" in answer.lower(), (st, answer)
    assert count(central, 501) == {"nodes": 1, "processes": 2, "points": 15}, count(central, 501)
    assert metric("bcd_ingest_duplicate_batches_total") == 10
    print("ok duplicates stored once, a replayed credential refused")

    # ---- Credentials: forged (another munge key), non-root uid, made for another body, none.
    st, answer = push(body, cred(hashlib.sha256(body).hexdigest(), socket=other_sock))
    assert st == 401, (st, answer)
    st, answer = push(body, cred(hashlib.sha256(body).hexdigest(), user=USER))
    assert st == 403 and "may not push" in answer, (st, answer)
    st, answer = push(body, cred(hashlib.sha256(b"another body").hexdigest()))
    assert st == 401 and "another body" in answer, (st, answer)
    st, answer = request("/api/v1/ingest", body, {"Content-Type": "application/octet-stream"})
    assert st == 401, (st, answer)
    print("ok forged 401, non-root 403, credential for another body 401, none 401")

    # ---- API keys: accepted for the key's owner (the data is stored as theirs), for the containers of the
    # key's own node only; a deleted key is refused.
    KEY_OWNER = "ops@example.org"  # not the owner of job 500, the job the attack below goes for
    out = subprocess.run([bcadm, "apikey", "create", "--owner", KEY_OWNER, "--store", central], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "--node" in out.stderr, out
    out = subprocess.run([bcadm, "apikey", "create", "--owner", KEY_OWNER, "--node", "nodeB", "--store", central],
                         capture_output=True, text=True, check=True)
    key = out.stdout.strip()
    assert key.startswith("bck_") and len(key) > 40, out
    listing = subprocess.run([bcadm, "apikey", "list", "--store", central], capture_output=True, text=True,
                             check=True).stdout
    assert hashlib.sha256(key.encode()).hexdigest() in listing and key not in listing and KEY_OWNER in listing, listing
    assert "nodeB" in listing, listing
    container = "0123456789ab"
    container_job = (1 << 63) | int(container, 16)  # common/container_key.hpp
    subprocess.run([tool, "node", stores["nodeB"], str(container_job), "nodeB", "root", "0", "3", "1", str(t0)],
                   check=True)
    subprocess.run([tool, "bundle", stores["nodeB"], body_file], check=True)
    body = open(body_file, "rb").read()
    with_key = {"Content-Type": "application/octet-stream", "Authorization": "Bearer " + key}
    st, answer = request("/api/v1/ingest", body, with_key)
    assert st == 200 and json.loads(answer)["applied"] == 3 and json.loads(answer)["owner"] == KEY_OWNER, (st, answer)
    st, j = job_json(container)
    assert j["job"]["user"] == KEY_OWNER, j["job"]  # pushed as root's, stored as the key owner's
    st, answer = request(f"/event/api/{key}", body, {"Content-Type": "application/octet-stream"})
    assert st == 200 and json.loads(answer)["duplicates"] == 3, (st, answer)
    print("ok API key accepted for its owner's containers on its node (header and /event/api/KEY)")

    # A key cannot take over a job: not another node's data, not a Slurm job, not another user's container.
    # Each is refused whole (403), counted, and the victim's job is unchanged.
    scope_before = metric('bcd_ingest_rejected_total{reason="scope"}')
    victim_before = job_json(500)[1]
    crafted = os.path.join(work, "crafted.bin")

    def key_push(job, node, name=None):
        subprocess.run([tool, "crafted-bundle", crafted, str(job), node, "mallory", "4242"] + ([name] if name else []),
                       check=True)
        return request("/api/v1/ingest", open(crafted, "rb").read(), with_key)
    st, answer = key_push(500, "nodeA")  # the attack: another user's Slurm job on its own node
    assert st == 403 and "node nodeB only" in answer, (st, answer)
    st, answer = key_push(500, "nodeB")  # ... or injected as a new node of that job
    assert st == 403 and "containers only" in answer, (st, answer)
    root_container = (1 << 63) | 0xfeedfacecafe
    subprocess.run([tool, "crafted-bundle", crafted, str(root_container), "nodeB", "root", "0"], check=True)
    st, answer = push(open(crafted, "rb").read(), cred(hashlib.sha256(open(crafted, "rb").read()).hexdigest()))
    assert st == 200, (st, answer)
    st, answer = key_push(root_container, "nodeB")
    assert st == 403 and "belongs to another user" in answer, (st, answer)
    assert job_json("feedfacecafe")[1]["job"]["user"] == "root"
    victim_after = job_json(500)[1]
    assert victim_after["job"]["user"] == victim_before["job"]["user"] and \
        len(victim_after["processes"]) == len(victim_before["processes"]), (victim_before, victim_after)
    assert metric('bcd_ingest_rejected_total{reason="scope"}') == scope_before + 3
    unbound = "bck_unbound0123456789abcdef0123456789abcdef"
    subprocess.run([tool, "unbound-apikey", central, unbound, USER], check=True)
    st, answer = request("/api/v1/ingest", body, {"Content-Type": "application/octet-stream",
                                                  "Authorization": "Bearer " + unbound})
    assert st == 403 and "bound to no node" in answer, (st, answer)
    print("ok a key's push of another node, a Slurm job, another user's container, or with no node bound: 403")

    subprocess.run([bcadm, "apikey", "delete", key, "--store", central], check=True, capture_output=True)
    st, answer = request("/api/v1/ingest", body, with_key)
    assert st == 401 and "API key" in answer, (st, answer)
    assert request(f"/event/api/{key}", body, {"Content-Type": "application/octet-stream"})[0] == 401
    assert request("/event/api/bck_notakey", body, {"Content-Type": "application/octet-stream"})[0] == 401
    print("ok a deleted key refused")

    # ---- Tokens minted by bcadm token: valid, expired, wrong job, tampered.
    def token(job, ttl="1h"):
        return subprocess.run([bcadm, "token", "--job", str(job), "--ttl", ttl, "--config", conf], env=env,
                              capture_output=True, text=True, check=True).stdout.strip()
    t = token(500)
    assert request(f"/api/v1/jobs/500?token={t}")[0] == 200
    short = token(500, "1s")
    time.sleep(2.1)
    st, answer = request(f"/api/v1/jobs/500?token={short}")
    assert st == 401 and "expired" in answer, (st, answer)
    assert request(f"/api/v1/jobs/501?token={t}")[0] == 403
    head, claims, sig = t.split(".")
    tampered = head + "." + claims[:-2] + ("A" if claims[-2] != "A" else "B") + claims[-1] + "." + sig
    assert request(f"/api/v1/jobs/500?token={tampered}")[0] == 401
    env_token = subprocess.run([bcadm, "token", "--job", "500", "--config", os.path.join(work, "missing.conf")],
                               env=dict(env, AUTH_SECRET=secret), capture_output=True, text=True)
    assert env_token.returncode == 2  # an explicit --config must exist
    env_token = subprocess.run([bcadm, "token", "--job", "500"], env=dict(env, AUTH_SECRET=secret),
                               capture_output=True, text=True, check=True).stdout.strip()
    assert request(f"/api/v1/jobs/500?token={env_token}")[0] == 200
    print("ok tokens: valid works (config and AUTH_SECRET); expired, wrong job, tampered refused")

    # ---- Bad bodies get a 4xx and bcd keeps serving.
    for bad in (b"", b"BCW1", b"BCW1\x05garbage", b"XXXXnot a bundle", b'{"json": "is not a bundle"}',
                open(body_file, "rb").read()[:-3]):
        st, answer = push(bad)
        assert st == 400, (bad, st, answer)
    st, answer = push(body, content_type="application/json")
    assert st == 415, (st, answer)
    # Refused from the headers alone, before any of the body is sent: a declared body over max_body_bytes
    # (413), and an anonymous or unknown-key push of any size (401), which bcd never buffers.
    def headers_only(path, length, extra=""):
        raw = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=5)
        with tlslib.context().wrap_socket(raw, server_hostname="127.0.0.1") as c:
            c.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                      f"Content-Length: {length}\r\n{extra}\r\n".encode())
            head = b""
            while chunk := c.recv(4096):  # until bcd closes: over TLS the body comes in a record of its own
                head += chunk
            head = head.decode(errors="replace")
            return int(head.split(" ")[1]), head
    st, answer = headers_only("/api/v1/ingest", (1 << 20) + 4, f"X-Munge-Credential: {cred('x')}\r\n")
    assert st == 413, (st, answer)
    assert headers_only("/event/api/bck_whatever", (1 << 20) + 4)[0] == 413
    st, answer = headers_only("/api/v1/ingest", 100000)
    assert st == 401 and "authentication required" in answer, (st, answer)
    assert headers_only("/event/api/bck_unknown", 100000)[0] == 401
    assert request("/api/v1/ingest")[0] in (404, 405)
    assert request("/api/v1/health")[0] == 200
    st, text = request("/metrics")
    for name in ("bcd_ingest_batches_total", "bcd_ingest_bytes_total", "bcd_ingest_lag_seconds",
                 'bcd_ingest_rejected_total{reason="malformed"}', 'bcd_ingest_rejected_total{reason="auth"}'):
        assert name in text, (name, text)
    assert metric('bcd_ingest_rejected_total{reason="malformed"}') == 6
    assert metric('bcd_ingest_rejected_total{reason="content_type"}') == 1
    assert metric('bcd_ingest_rejected_total{reason="too_large"}') == 2, text
    print("ok malformed 400, wrong content type 415, oversized 413; bcd keeps serving; /metrics counts each by reason")

    # ---- Names past the store's bounds (a node name is part of LMDB keys, which stop at 511 bytes): 400 for that
    # push alone, and the next honest push is stored (such a push once failed every group commit it was in).
    crafted = os.path.join(work, "crafted")
    for node, job_name in (("n" * 600, ""), ("n" * 256, ""), ("nodeA", "j" * 2000)):
        subprocess.run([tool, "crafted-bundle", crafted, "502", node, USER, uid, job_name], check=True)
        st, answer = push(open(crafted, "rb").read())
        assert st == 400 and "bytes" in answer, (len(node), len(job_name), st, answer)
    subprocess.run([tool, "crafted-bundle", crafted, "502", "n" * 255, USER, uid, "j" * 1024], check=True)
    st, answer = push(open(crafted, "rb").read())
    assert st == 200 and json.loads(answer)["applied"] == 1, (st, answer)
    print("ok names past their bounds refused with 400, and the longest allowed stored")

    # ---- A node's outbox at its bound gives up the oldest batches: counted on the node and at bcd.
    node_c = os.path.join(work, "nodeC.lmdb")
    subprocess.run([tool, "node", node_c, "520", "nodeC", USER, uid, "1", "2", str(t0)], check=True)
    subprocess.run([tool, "bundle", node_c, body_file], check=True)
    one_batch = os.path.getsize(body_file)
    subprocess.run([tool, "node", node_c, "520", "nodeC", USER, uid, "40", "2", str(t0 + 1)], check=True,
                   env=dict(os.environ, BC_OUTBOX_MAX_BYTES=str(10 * one_batch)))
    left = int(subprocess.run([tool, "pending", node_c], capture_output=True, text=True).stdout.split()[1])
    dropped = 41 - left
    assert 0 < dropped < 41 and left >= 5, (left, dropped)
    stats = subprocess.run([bcadm, "db", "stats", "--store", node_c], capture_output=True, text=True, check=True).stdout
    assert f"unshipped        {dropped} batches, {3 * dropped} samples given up" in stats, stats
    assert f"job 520 ({dropped} batches, {3 * dropped} samples)" in stats, stats
    node_view = subprocess.run([f"{build}/sacct_ext/bcacct", "--store", node_c, "-j", "520"], capture_output=True,
                               text=True, check=True).stdout
    assert f"Unshipped:     {dropped} batches, {3 * dropped} samples" in node_view, node_view
    assert count(node_c, 520)["points"] == 41 * 3  # the node store keeps every sample
    r = subprocess.run([bcadm, "ship", "--store", node_c, "--central", base, "--munge-socket", sock,
                        "--ca-file", tlslib.CA],
                       capture_output=True, text=True)
    assert r.returncode == 0 and f"shipped {left} batch(es)" in r.stdout, (r.stdout, r.stderr)
    st, j = job_json(520)
    assert st == 200 and j["job"]["unshipped_batches"] == dropped and j["job"]["unshipped_samples"] == 3 * dropped, j["job"]
    assert count(central, 520)["points"] == 3 * left, count(central, 520)
    print(f"ok outbox bound: {dropped} of 41 batches given up, counted by bcadm db stats, bcacct and bcd's job; "
          f"bcd has the other {left}")

    # ---- AUTH_DISABLE opens reads, never ingest; only ingest_auth=off (tests only) accepts anonymous pushes.
    def start_bcd(name, text, extra_env):
        store = os.path.join(work, name + ".lmdb")
        subprocess.run([bcadm, "db", "init", "--store", store], check=True, capture_output=True)
        path = os.path.join(work, name + ".conf")
        open(path, "w").write(f"listen=127.0.0.1:0\nstore={store}\nstatic_dir={work}\nmunge_socket={sock}\n" + text)
        pf = os.path.join(work, name + ".port")
        p = subprocess.Popen([f"{build}/web/bcd", "--config", path, "--port-file", pf], env=dict(env, **extra_env),
                             stderr=open(os.path.join(work, name + ".log"), "w"))
        extra.append(p)
        for _ in range(100):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        return store, f"http://127.0.0.1:{open(pf).read().strip()}"

    def raw(url, path, body=None, headers=None):
        req = urllib.request.Request(url + path, data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    anon = {"Content-Type": "application/octet-stream"}
    node_d = os.path.join(work, "nodeD.lmdb")
    subprocess.run([tool, "node", node_d, "510", "nodeD", USER, uid, "5", "2", str(t0)], check=True)
    subprocess.run([tool, "bundle", node_d, body_file], check=True)
    body = open(body_file, "rb").read()
    open_store, open_url = start_bcd("open", "", {"AUTH_DISABLE": "yes"})
    st, answer = raw(open_url, "/api/v1/ingest", body, anon)
    assert st == 401 and "authentication required" in answer, (st, answer)
    st, answer = raw(open_url, "/api/v1/ingest", body, dict(anon, **{"X-Munge-Credential": cred(hashlib.sha256(body).hexdigest())}))
    assert st == 200 and json.loads(answer)["applied"] == 5, (st, answer)
    st, answer = raw(open_url, "/api/v1/jobs/510")  # reads need nothing with AUTH_DISABLE
    assert st == 200 and json.loads(answer)["job"]["id"] == 510, (st, answer)
    test_store, test_url = start_bcd("noauth", "auth_secret=" + secret + "\ningest_auth=off\ndedup_window=1\n", {})
    st, answer = raw(test_url, "/api/v1/ingest", body, anon)
    assert st == 200 and json.loads(answer)["applied"] == 5, (st, answer)
    assert raw(test_url, "/api/v1/jobs/510")[0] == 401  # ingest_auth says nothing about reads
    print("ok AUTH_DISABLE=yes: reads open, anonymous push 401, munge push 200; ingest_auth=off: anonymous push 200")

    # ---- Dedup entries older than dedup_window are folded into their monitor's mark: still duplicates.
    time.sleep(2.2)
    node_e = os.path.join(work, "nodeE.lmdb")
    subprocess.run([tool, "node", node_e, "511", "nodeE", USER, uid, "2", "1", str(t0)], check=True)
    subprocess.run([tool, "bundle", node_e, os.path.join(work, "b511")], check=True)
    st, answer = raw(test_url, "/api/v1/ingest", open(os.path.join(work, "b511"), "rb").read(), anon)
    assert st == 200 and json.loads(answer)["applied"] == 2, (st, answer)  # and folds what is older than 1 s
    assert metric("bcd_ingest_dedup_folded_total", test_url) == 5
    stats = subprocess.run([bcadm, "db", "stats", "--store", test_store], capture_output=True, text=True, check=True).stdout
    assert "dedup            2 batch entries, 1 monitor marks" in stats, stats
    before = count(test_store, 510)
    st, answer = raw(test_url, "/api/v1/ingest", body, anon)
    assert st == 200 and json.loads(answer)["applied"] == 0 and json.loads(answer)["duplicates"] == 5, (st, answer)
    assert count(test_store, 510) == before == {"nodes": 1, "processes": 2, "points": 15}, (before, count(test_store, 510))
    print("ok dedup entries past dedup_window folded into a mark; the same batches resent later are still duplicates")

    # ---- Concurrent requests share commits (group commit): the same bundle pushed by 8 clients at once is
    # applied exactly once, within one shared transaction or across them.
    node_f = os.path.join(work, "nodeF.lmdb")
    subprocess.run([tool, "node", node_f, "512", "nodeF", USER, uid, "6", "3", str(t0)], check=True)
    subprocess.run([tool, "bundle", node_f, os.path.join(work, "b512")], check=True)
    b512 = open(os.path.join(work, "b512"), "rb").read()
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(raw(test_url, "/api/v1/ingest", b512, anon)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(st == 200 for st, _ in answers) and len(answers) == 8, answers
    assert sum(json.loads(a)["applied"] for _, a in answers) == 6, answers
    assert sum(json.loads(a)["duplicates"] for _, a in answers) == 42, answers
    assert count(test_store, 512) == {"nodes": 1, "processes": 3, "points": 24}, count(test_store, 512)
    print("ok 8 concurrent pushes of one bundle: applied once (6 batches), 42 duplicates, 24 points")

    # ---- Samples bcd cannot store are counted in /metrics by reason, and the rest of their batches is kept:
    # too late to place (older than the seconds kept behind the job's newest), and times out of range.
    late_name = 'bcd_ingest_samples_dropped_total{reason="late"}'
    rejected_name = 'bcd_ingest_samples_dropped_total{reason="rejected"}'
    assert metric(late_name, test_url) == 0 and metric(rejected_name, test_url) == 0
    for name, job, first in (("recent", 513, t0), ("old", 513, t0 - 7200), ("future", 514, 1 << 32)):
        s = os.path.join(work, f"nodeG-{name}.lmdb")
        subprocess.run([tool, "node", s, str(job), "nodeG", USER, uid, "3", "1", str(first)], check=True,
                       capture_output=True)
        subprocess.run([tool, "bundle", s, os.path.join(work, "bG")], check=True)
        st, answer = raw(test_url, "/api/v1/ingest", open(os.path.join(work, "bG"), "rb").read(), anon)
        assert st == 200 and json.loads(answer)["applied"] == 3, (name, st, answer)
    # 3 ticks of a job sample and one process sample each
    assert metric(late_name, test_url) == 6 and metric(rejected_name, test_url) == 6, (metric(late_name, test_url), metric(rejected_name, test_url))
    assert count(test_store, 513)["points"] == 6 and count(test_store, 514)["points"] == 0
    assert "too late to place" in open(os.path.join(work, "noauth.log")).read()
    print("ok samples too late to place (6) and out of range (6) are counted in /metrics and logged")
finally:
    for p in extra:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
    bcd.send_signal(signal.SIGTERM)
    try:
        rc = bcd.wait(timeout=20)
    except subprocess.TimeoutExpired:
        bcd.kill()
    for s in (sock, other_sock):
        stop_munged(s)
    log = open(os.path.join(work, "bcd.log")).read()
    shutil.rmtree(work, ignore_errors=True)
assert rc == 0, f"bcd exited {rc} on SIGTERM:\n{log}"
