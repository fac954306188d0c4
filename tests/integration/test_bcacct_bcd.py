"""bcacct against a real bcd over HTTPS and a real munged, run as two real users: own jobs through bcd, another
user's job refused (exit 5), admin sees all, the same JSON as the store holds, a bcd its CA file does not
verify refused (exit 4, never the local store instead), and when bcd is down the fallback to the local node
store with a warning (or exit 6 without one)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import tlslib
from munge_users import ensure_users, require_root, start_munged, stop_munged

build = os.environ["BC_BUILD"]
require_root("test users, munged")

bcacct = os.path.join(build, "sacct_ext", "bcacct")
make_store = os.path.join(build, "tests", "integration", "bc-make-store")
work = tempfile.mkdtemp(prefix="bc-bcacct-")
os.chmod(work, 0o755)
uids = ensure_users("bctest_alice", "bctest_bob")
sock = start_munged(work)
central = os.path.join(work, "central.lmdb")
alice, bob = uids["bctest_alice"], uids["bctest_bob"]
subprocess.run([make_store, central, f"41:bctest_alice:{alice}:done:gpu", f"42:bctest_alice:{alice}:running",
                f"43:bctest_bob:{bob}:done"], check=True)
# The node's own store, where bcacct falls back to: only job 41, readable by everyone (LMDB readers need
# to write lock.mdb).
local = os.path.join(work, "node.lmdb")
subprocess.run([make_store, local, f"41:bctest_alice:{alice}:done"], check=True)
subprocess.run(["chmod", "-R", "a+rwX", local], check=True)
# A store alice may not read.
private = os.path.join(work, "private.lmdb")
subprocess.run([make_store, private, f"41:bctest_alice:{alice}:done"], check=True)
os.chmod(private, 0o700)

conf = os.path.join(work, "bcd.conf")
open(conf, "w").write(f"listen=127.0.0.1:0\nstore={central}\nstatic_dir={work}\nauth_secret=s-0123456789abcdef\n"
                      f"munge_socket={sock}\nadmins=root\n" + tlslib.bcd_conf())
port_file = os.path.join(work, "port")
env = {k: v for k, v in os.environ.items() if k not in ("AUTH_SECRET", "AUTH_DISABLE")}
bcd = subprocess.Popen([f"{build}/web/bcd", "--config", conf, "--port-file", port_file], env=env,
                       stderr=open(os.path.join(work, "bcd.log"), "w"))
try:
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.05)
    url = f"https://127.0.0.1:{open(port_file).read().strip()}"
    client_env = {"PATH": "/usr/bin:/bin", "TZ": "UTC", "BC_CENTRAL": url, "BC_MUNGE_SOCKET": sock, "BC_CA_FILE": tlslib.CA,
                  "BC_BCACCT_CONFIG": "/nonexistent/bcacct.conf", "BC_STORE": os.path.join(work, "absent.lmdb")}

    def run(user, *args, **extra):
        cmd = [bcacct, *args]
        if user != "root":
            cmd = ["/usr/sbin/runuser", "-u", user, "--"] + cmd
        return subprocess.run(cmd, env=dict(client_env, **extra), capture_output=True, text=True, timeout=60)

    # Alice sees her job through bcd, with no warning.
    r = run("bctest_alice", "-j", "41", "-P", "-n", "-o", "JobID,User,UID,State,NodeList,TotalCPU,MaxRSS")
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    assert r.stdout == f"41|bctest_alice|{alice}|COMPLETED|n1|00:00:02.500|2M\n", r.stdout
    print("ok alice reads her job through bcd over HTTPS, verified by BC_CA_FILE")
    # A CA that did not sign bcd's certificate: refused with curl's reason, exit 4, and no local store
    # instead (the bcd configured is not the one answering); --ca-file overrides BC_CA_FILE.
    r = run("bctest_alice", "-j", "41", BC_CA_FILE=tlslib.OTHER_CA, BC_STORE=local)
    assert r.returncode == 4 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert r.stderr == (f"bcacct: bcd at {url} failed TLS verification: SSL certificate problem: unable to get local "
                        f"issuer certificate (ca_file {tlslib.OTHER_CA})\n"), r.stderr
    r = run("bctest_alice", "-j", "41", "-P", "-n", "-o", "JobID", "--ca-file", tlslib.CA, BC_CA_FILE=tlslib.OTHER_CA)
    assert r.returncode == 0 and r.stdout == "41\n" and r.stderr == "", (r.returncode, r.stdout, r.stderr)
    print("ok with another CA: exit 4 naming the URL and curl's reason, no fallback; --ca-file wins over BC_CA_FILE")
    # The JSON through bcd is the JSON of the store itself.
    r = run("bctest_alice", "-j", "41", "--json")
    direct = run("root", "-j", "41", "--json", "--store", central)
    assert r.returncode == 0 and direct.returncode == 0, (r.stderr, direct.stderr)
    assert json.loads(r.stdout) == json.loads(direct.stdout), (r.stdout, direct.stdout)
    assert json.loads(r.stdout)["gpus"][0]["util_percent"] == 60, r.stdout  # the GPU figures come back from bcd
    assert len(json.loads(r.stdout)["files"]) == 2 and len(json.loads(r.stdout)["connections"]) == 1, r.stdout
    for view in ([], ["--files"], ["--net"], ["--tree"]):
        r = run("bctest_alice", "-j", "41", *view)
        direct = run("root", "-j", "41", "--store", central, *view)
        assert r.returncode == 0 and r.stdout == direct.stdout, (view, r.stdout, direct.stdout, r.stderr)
    print("ok bcd's job equals the store's (JSON, table, files, connections, tree)")
    # --timeline through bcd: the job total summed over nodes, from bcd's series endpoint.
    r = run("bctest_alice", "-j", "41", "--timeline", "--metric", "rss", COLUMNS="60")
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    assert r.stdout.startswith("all nodes: RSS (largest in each column), second resolution"), r.stdout
    assert "2M \u2524" in r.stdout, r.stdout  # bc-make-store's job sample: 2 MiB
    print("ok --timeline through bcd's series")
    # Bob's job is refused to Alice: exit 5, a clear message, no output.
    r = run("bctest_alice", "-j", "43")
    assert r.returncode == 5 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert "bcd refused (403)" in r.stderr and "another user" in r.stderr, r.stderr
    r = run("bctest_alice", "-j", "999")
    assert r.returncode == 1 and "job 999 not found in bcd " + url in r.stderr, (r.returncode, r.stderr)
    print("ok alice is refused bob's job (exit 5); an unknown job exits 1")
    # root is an admin: sees Bob's job, and every job in a listing; Alice's listing has only hers.
    r = run("root", "-j", "43", "-P", "-n", "-o", "JobID,User")
    assert r.returncode == 0 and r.stdout == "43|bctest_bob\n", (r.returncode, r.stdout, r.stderr)
    r = run("root", "-S", "2025-01-01", "-P", "-n", "-o", "JobID,State")
    assert r.stdout == "41|COMPLETED\n42|RUNNING\n43|COMPLETED\n", (r.stdout, r.stderr)
    r = run("bctest_alice", "-S", "2025-01-01", "-P", "-n", "-o", "JobID")
    assert r.returncode == 0 and r.stdout == "41\n42\n", (r.stdout, r.stderr)
    r = run("bctest_alice", "-S", "2025-01-01", "-a", "-s", "cd", "-P", "-n", "-o", "JobID")
    assert r.stdout == "41\n", r.stdout  # bcd itself hides bob's job
    print("ok root sees every job; alice's listing has only hers")
    # A store alice cannot read: exit 5 as well.
    r = run("bctest_alice", "-j", "41", "--store", private)
    assert r.returncode == 5 and "no permission to read the store" in r.stderr, (r.returncode, r.stderr)
    print("ok an unreadable store exits 5")
    # A credential from another munge key is refused by bcd: exit 5.
    other_sock = start_munged(work, "other")
    try:
        r = run("bctest_alice", "-j", "41", BC_MUNGE_SOCKET=other_sock)
        assert r.returncode == 5 and "bcd refused (401)" in r.stderr, (r.returncode, r.stderr)
    finally:
        stop_munged(other_sock)
    print("ok a credential of another munge key exits 5")
finally:
    bcd.send_signal(signal.SIGTERM)
    bcd.wait(timeout=10)

try:
    # bcd is down: with a local node store, a warning and the local data; without one, exit 6.
    r = run("bctest_alice", "-j", "41", "-P", "-n", "-o", "JobID,User", BC_STORE=local)
    assert r.returncode == 0 and r.stdout == "41|bctest_alice\n", (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("bcacct: warning: bcd at " + url + " unreachable"), r.stderr
    assert "showing the local node store " + local in r.stderr, r.stderr
    r = run("bctest_alice", "-j", "43", BC_STORE=local)
    assert r.returncode == 1 and "not found in store " + local in r.stderr, (r.returncode, r.stderr)
    r = run("bctest_alice", "-j", "41")
    assert r.returncode == 6 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert "unreachable" in r.stderr and "no local node store at" in r.stderr, r.stderr
    print("ok bcd down: local store with a warning, else exit 6")
finally:
    stop_munged(sock)
    shutil.rmtree(work, ignore_errors=True)
