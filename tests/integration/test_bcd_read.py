"""bcd's read API against a real munged and real users: who may see which job, tokens, bad requests."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from munge_users import ensure_users, require_root, start_munged, stop_munged

build = os.environ["BC_BUILD"]
require_root("test users, munged")

work = tempfile.mkdtemp(prefix="bc-bcd-")
os.chmod(work, 0o755)
USERS = ensure_users("bctest_alice", "bctest_bob")
sock = start_munged(work)
store = os.path.join(work, "central.lmdb")
subprocess.run([f"{build}/tests/integration/bc-make-store", store,
                f"41:bctest_alice:{USERS['bctest_alice']}:done", f"42:bctest_alice:{USERS['bctest_alice']}:running",
                f"43:bctest_bob:{USERS['bctest_bob']}:done"], check=True)
static = os.path.join(work, "static")
os.makedirs(static)
open(os.path.join(static, "index.html"), "w").write("<title>bc</title>")
secret = "test-secret-0123456789abcdef"
conf = os.path.join(work, "bcd.conf")
open(conf, "w").write(f"listen=127.0.0.1:0\nstore={store}\nstatic_dir={static}\nauth_secret={secret}\n"
                      f"munge_socket={sock}\nadmins=root\nmax_body_bytes=4096\nmetrics_jobs=on\n"
                      "metrics_token=scraper-0123456789abcdef\n")
port_file = os.path.join(work, "port")
env = {k: v for k, v in os.environ.items() if k not in ("AUTH_SECRET", "AUTH_DISABLE")}
bcd = subprocess.Popen([f"{build}/web/bcd", "--config", conf, "--port-file", port_file], env=env,
                       stderr=open(os.path.join(work, "bcd.log"), "w"))
try:
    for _ in range(100):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    base = f"http://127.0.0.1:{open(port_file).read().strip()}"

    def cred(user):
        return subprocess.run(["runuser", "-u", user, "--", "munge", "-S", sock, "-n"], capture_output=True,
                              text=True, check=True).stdout.strip()

    def get(path, headers=None):
        req = urllib.request.Request(base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def token(container, exp, key=secret):
        signing = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + \
            b64(json.dumps({"container": container, "exp": exp}).encode())
        return signing + "." + b64(hmac.new(key.encode(), signing.encode(), hashlib.sha256).digest())

    # No credential at all.
    st, body = get("/api/v1/jobs/41")
    assert st == 401 and "authentication required" in body, (st, body)
    # Alice sees her jobs, not Bob's; the list has only hers.
    st, body = get("/api/v1/jobs/41", {"X-Munge-Credential": cred("bctest_alice")})
    assert st == 200 and json.loads(body)["job"]["user"] == "bctest_alice", (st, body)
    st, body = get("/api/v1/jobs/43", {"X-Munge-Credential": cred("bctest_alice")})
    assert st == 403 and "another user" in body, (st, body)
    st, body = get("/api/v1/jobs", {"X-Munge-Credential": cred("bctest_alice")})
    assert [j["id"] for j in json.loads(body)["jobs"]] == [41, 42], body
    st, body = get("/api/v1/jobs?state=running", {"X-Munge-Credential": cred("bctest_alice")})
    assert [j["id"] for j in json.loads(body)["jobs"]] == [42], body
    print("ok users see only their own jobs")
    # root is an admin and sees everything, with filters.
    st, body = get("/api/v1/jobs?user=bctest_bob", {"X-Munge-Credential": cred("root")})
    assert [j["id"] for j in json.loads(body)["jobs"]] == [43], body
    st, body = get("/api/v1/jobs/43", {"X-Munge-Credential": cred("root")})
    assert st == 200
    print("ok admin sees all")
    # A credential is good once: munge's replay detection is relied on.
    c = cred("bctest_alice")
    assert get("/api/v1/jobs/41", {"X-Munge-Credential": c})[0] == 200
    st, body = get("/api/v1/jobs/41", {"X-Munge-Credential": c})
    assert st == 401 and "munge" in body.lower(), (st, body)
    # A credential from another munge key is refused.
    other_sock = start_munged(work, "other")
    forged = subprocess.run(["munge", "-S", other_sock, "-n"], capture_output=True, text=True, check=True).stdout.strip()
    stop_munged(other_sock)
    st, body = get("/api/v1/jobs/41", {"X-Munge-Credential": forged})
    assert st == 401, (st, body)
    print("ok replayed and forged munge credentials refused")
    # Tokens: valid, expired, wrong job, tampered, other secret.
    now = int(time.time())
    assert get(f"/api/v1/jobs/43?token={token('job_43', now + 600)}")[0] == 200
    assert get("/api/v1/jobs/43", {"Authorization": "Bearer " + token("job_43", now + 600)})[0] == 200
    st, body = get(f"/api/v1/jobs/43?token={token('job_43', now - 1)}")
    assert st == 401 and "expired" in body, (st, body)
    st, body = get(f"/api/v1/jobs/41?token={token('job_43', now + 600)}")
    assert st == 403, (st, body)
    t = token("job_43", now + 600)
    head, payload, sig = t.split(".")
    tampered = head + "." + b64(json.dumps({"container": "job_41", "exp": now + 600}).encode()) + "." + sig
    assert get(f"/api/v1/jobs/41?token={tampered}")[0] == 401
    assert get(f"/api/v1/jobs/43?token={token('job_43', now + 600, key='another-secret-xxxxxxxx')}")[0] == 401
    assert get(f"/api/v1/jobs?token={token('job_43', now + 600)}")[0] == 403  # a token opens one job only
    print("ok tokens: valid works; expired, wrong job, tampered, other secret refused")
    # Bad requests get a 4xx and bcd keeps serving.
    assert get("/api/v1/jobs/abc", {"X-Munge-Credential": cred("root")})[0] == 400
    assert get("/api/v1/jobs?state=weird", {"X-Munge-Credential": cred("root")})[0] == 400
    assert get("/api/v1/nothing")[0] == 404
    assert get("/static/../bcd.conf")[0] in (403, 404)
    assert get("/static/index.html")[0] == 200
    assert get("/api/v1/health")[0] == 200
    print("ok bad requests answered with 4xx")
    # /metrics: bcd's health for anyone; the running jobs (job, user, CPU...) only for the scraper's token
    # or an admin, as Slurm's PrivateData=jobs; a wrong token is refused.
    job_line = 'bc_job_cpu_seconds_total{job="42",user="bctest_alice"} 2.5'
    for headers in ({}, {"X-Munge-Credential": cred("bctest_alice")}):
        st, body = get("/metrics", headers)
        assert st == 200 and body.endswith("# EOF\n") and "bcd_requests_total" in body, body
        assert "bc_job_" not in body and "bctest_alice" not in body, body
    for headers in ({"Authorization": "Bearer scraper-0123456789abcdef"}, {"X-Munge-Credential": cred("root")}):
        st, body = get("/metrics", headers)
        assert st == 200 and body.endswith("# EOF\n") and job_line in body, body
        assert 'job="41"' not in body and 'job="43"' not in body, body  # running jobs only
    assert get("/metrics", {"Authorization": "Bearer scraper-wrong-0123456789"})[0] == 401
    print("ok /metrics: health for anyone and for a user; the running job for the token and an admin; a wrong token 401")
finally:
    bcd.send_signal(signal.SIGTERM)
    rc = bcd.wait(timeout=10)
    stop_munged(sock)
    log = open(os.path.join(work, "bcd.log")).read()
    shutil.rmtree(work, ignore_errors=True)
assert rc == 0, f"bcd exited {rc} on SIGTERM:\n{log}"
assert "stopped" in log, log
print("ok bcd stopped cleanly on SIGTERM")
