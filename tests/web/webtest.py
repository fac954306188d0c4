"""Shared by the web tests: a private munged and a real bcd on a loopback port 0, web tokens, HTTP helpers."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from munge_users import ensure_users, require_root, start_munged, stop_munged

SKIP = 77
SECRET = "web-test-secret-0123456789"


def ensure_user(name):
    return ensure_users(name)[name]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(container, ttl=600, key=SECRET, exp=None):
    """An HS256 JWT made independently of bcd (Python's hmac), as `bcadm token` would."""
    signing = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + \
        b64(json.dumps({"container": container, "exp": exp if exp is not None else int(time.time()) + ttl}).encode())
    return signing + "." + b64(hmac.new(key.encode(), signing.encode(), hashlib.sha256).digest())


def user_token(user, ttl=600, key=SECRET):
    """A user token (claim "user", no container), as `bcadm token --user` makes: the job list and the user's jobs."""
    signing = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + \
        b64(json.dumps({"user": user, "exp": int(time.time()) + ttl}).encode())
    return signing + "." + b64(hmac.new(key.encode(), signing.encode(), hashlib.sha256).digest())


def probe(url, *options, timeout=120):
    """What headless Chromium shows for url (tests/web/page_probe.mjs); skips without node or Chromium."""
    build = os.environ["BC_BUILD"]
    modules = os.environ["BC_WEB_NODE_MODULES"]
    missing = [what for what, ok in (("node", shutil.which("node")), ("/usr/bin/chromium", os.path.exists("/usr/bin/chromium")),
                                     ("playwright-core (npm ci in web/)", os.path.isdir(os.path.join(modules, "playwright-core"))))
               if not ok]
    if missing:
        if os.environ.get("CI") == "true":
            sys.exit(f"FAIL: {', '.join(missing)} missing, and CI must run the browser tests")
        print(f"SKIP: {', '.join(missing)} missing (scripts/install-deps.sh installs them)")
        sys.exit(SKIP)
    r = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "page_probe.mjs"), url, *options],
                       capture_output=True, text=True, timeout=timeout, env=dict(os.environ, BC_WEB_NODE_MODULES=modules))
    assert r.returncode == 0, f"probe failed ({r.returncode}): {r.stdout}{r.stderr}"
    out = json.loads(r.stdout)
    assert "probe_error" not in out, out
    # The refused request behind an error page is logged by Chromium; anything else is a page bug.
    errors = [e for e in out["console_errors"] if not (out["error"] and e.startswith("Failed to load resource"))]
    assert not errors, errors
    # Never a blank page: either the view or the error panel has text.
    assert out["body_text_length"] > 40, out
    return out


def screenshot_dir():
    d = os.path.join(os.environ["BC_BUILD"], "tests", "web", "screenshots")
    os.makedirs(d, exist_ok=True)
    return d


class Bcd:
    """munged on a private socket and bcd serving `store` and `static` on 127.0.0.1:0."""

    def __init__(self, store, static=None, auth_disable=False, extra_conf=""):
        static = static or os.path.join(os.environ["BC_BUILD"], "web", "static")
        self.build = os.environ["BC_BUILD"]
        self.work = tempfile.mkdtemp(prefix="bc-web-")
        os.chmod(self.work, 0o755)
        self.sock = start_munged(self.work)
        conf = os.path.join(self.work, "bcd.conf")
        with open(conf, "w") as f:
            f.write(f"listen=127.0.0.1:0\nstore={store}\nstatic_dir={static}\nauth_secret={SECRET}\n"
                    f"munge_socket={self.sock}\nadmins=root\n{extra_conf}")
        port_file = os.path.join(self.work, "port")
        env = {k: v for k, v in os.environ.items() if k not in ("AUTH_SECRET", "AUTH_DISABLE")}
        if auth_disable:
            env["AUTH_DISABLE"] = "yes"
        self.log_path = os.path.join(self.work, "bcd.log")
        self.proc = subprocess.Popen([f"{self.build}/web/bcd", "--config", conf, "--port-file", port_file], env=env,
                                     stderr=open(self.log_path, "w"))
        for _ in range(200):
            if os.path.exists(port_file) or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(port_file):
            raise AssertionError("bcd did not start:\n" + open(self.log_path).read())
        self.base = f"http://127.0.0.1:{open(port_file).read().strip()}"

    def cred(self, user):
        return subprocess.run(["runuser", "-u", user, "--", "munge", "-S", self.sock, "-n"], capture_output=True,
                              text=True, check=True).stdout.strip()

    def get(self, path, headers=None, timeout=10):
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def get_json(self, path, headers=None):
        st, body = self.get(path, headers)
        assert st == 200, (path, st, body)
        return json.loads(body)

    def stop(self):
        """Stops bcd with SIGTERM (it must exit 0) and munged; returns bcd's log."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=15)
        stop_munged(self.sock)
        log = open(self.log_path).read()
        shutil.rmtree(self.work, ignore_errors=True)
        assert rc == 0, f"bcd exited {rc} on SIGTERM:\n{log}"
        return log
