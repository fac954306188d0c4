#!/usr/bin/env python3
"""bc-docker against a real dockerd. One test per invocation: docker_tests.py NAME.

Needs the docker fixture (docker_fixture.sh setup): dockerd on /var/run/docker.sock and the bc-busybox:test
image. Every container is started with --network none and the label bc-test=1, and removed afterwards.
Records are read back from the store with bc-docker-storedump, which prints what `bcacct --json` prints
(bcacct's -j takes 32-bit Slurm job ids only, so it cannot be given a container key yet).
"""
import json
import os
import re
import shutil
import socket
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

BUILD = os.environ.get("BC_BUILD", "")
WORK = os.environ.get("BC_DOCKER_WORK", "/tmp/bc-docker-test")
HERE = os.path.dirname(os.path.abspath(__file__))
BCD = os.path.join(BUILD, "docker_monitor", "bc-docker")
MONITOR = os.path.join(BUILD, "cgroup_monitor", "bc-monitor")
STOREDUMP = os.path.join(BUILD, "tests", "docker", "bc-docker-storedump")
BCACCT = os.path.join(BUILD, "sacct_ext", "bcacct")
BCADM = os.path.join(BUILD, "web", "bcadm")
BCD_DAEMON = os.path.join(BUILD, "web", "bcd")
FIXTURE = os.path.join(HERE, "docker_fixture.sh")
IMAGE = "bc-busybox:test"
SOCKET = "/var/run/docker.sock"
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


sys.path[:0] = [os.path.join(HERE, "..", "web"), os.path.join(HERE, "..", "integration")]
import webtest  # noqa: E402  (the web tests' token and headless-Chromium probe)


class Skip(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def container_key(short_id):
    """The mapping of common/container_key.hpp, for checking what bc-docker did."""
    return (1 << 63) | int(short_id[:12], 16)


def docker(*args, check=True, timeout=60):
    r = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def run_container(name, script, extra=(), detach=True, network="none"):
    args = ["run", "--network", network, "--label", "bc-test=1", "--name", name, *extra]
    if detach:
        args.append("-d")
    r = docker(*args, IMAGE, "sh", "-c", script, check=detach)
    return r.stdout.strip() if detach else r


def inspect(cid):
    return json.loads(docker("inspect", cid).stdout)[0]


def parse_time(text):
    """Docker and bcacct times (RFC 3339, up to nanoseconds) to epoch seconds as float."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", text)
    assert m, f"unexpected time {text!r}"
    whole = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return whole + frac


def wait_for(what, predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def remove_test_containers():
    ids = docker("ps", "-aq", "--filter", "label=bc-test=1", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)


ENVS = []


class Env:
    """A private store, run dir and state dir for one bc-docker."""

    def __init__(self, name):
        ENVS.append(self)
        self.dir = os.path.join(WORK, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.store = os.path.join(self.dir, "node.lmdb")
        self.run_dir = os.path.join(self.dir, "run")
        self.state = os.path.join(self.dir, "state")
        self.monitor_log = os.path.join(self.dir, "monitor.log")
        self.bcd_log = os.path.join(self.dir, "bc-docker.log")
        self.proc = None

    def args(self, interval=0.5, socket=SOCKET, extra=()):
        return [BCD, "--config", "/dev/null", "--socket", socket, "--store", self.store, "--run-dir", self.run_dir,
                "--state", self.state, "--log", self.monitor_log, "--monitor", MONITOR, "--interval", str(interval),
                "--node", "bctest", *extra]

    def start(self, wait_connected=True, **kw):
        self.log_file = open(self.bcd_log, "a")
        self.proc = subprocess.Popen(self.args(**kw), stdout=self.log_file, stderr=subprocess.STDOUT)
        if wait_connected:
            self.wait_log(r"\bconnected to Docker", 10)
        return self.proc

    def log_text(self):
        with open(self.bcd_log) as f:
            return f.read()

    def wait_log(self, pattern, timeout):
        def found():
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"bc-docker exited with {self.proc.returncode}:\n{self.log_text()}")
            return re.search(pattern, self.log_text())
        return wait_for(f"/{pattern}/ in the bc-docker log", found, timeout)

    def stop(self):
        """SIGTERM must stop bc-docker cleanly with status 0."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=10)
        assert rc == 0, f"bc-docker exited with {rc} on SIGTERM:\n{self.log_text()}"
        assert "received SIGTERM" in self.log_text()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pid_file(self, key):
        return os.path.join(self.run_dir, f"job_{key}.pid")

    def monitor_pid(self, key):
        try:
            with open(self.pid_file(key)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if os.path.exists(f"/proc/{pid}") else None

    def monitor_argv(self, key, timeout=5):
        pid = wait_for(f"a monitor for key {key}", lambda: self.monitor_pid(key), timeout, 0.005)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return pid, f.read().decode().split("\0")[:-1]

    def wait_monitor_gone(self, key, timeout=15):
        wait_for(f"the monitor of key {key} to finish", lambda: not os.path.exists(self.pid_file(key)), timeout, 0.1)

    def store_json(self, key):
        r = subprocess.run([STOREDUMP, self.store, str(key)], capture_output=True, text=True)
        assert r.returncode == 0, f"no record of key {key} in the store: {r.stderr.strip()}"
        return json.loads(r.stdout)

    def container_log(self):
        path = os.path.join(self.state, "containers.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def last_record(self, cid):
        records = [r for r in self.container_log() if r["id"] == cid]
        return records[-1] if records else None


def arg_after(argv, option):
    return argv[argv.index(option) + 1]


def check_monitor_argv(env, cid, argv):
    key = container_key(cid)
    pid = inspect(cid)["State"]["Pid"]
    assert arg_after(argv, "--job") == str(key), argv
    assert arg_after(argv, "--cgroup-version") == "1", argv
    # FACTS.md: on this host the cgroupfs driver puts containers at /sys/fs/cgroup/<ctrl>/docker/<64-hex id>.
    assert arg_after(argv, "--cgroup-path") == f"/docker/{cid}", argv
    assert os.path.isdir(f"/sys/fs/cgroup/memory/docker/{cid}"), "the path bc-docker gave names the container's cgroup"
    assert arg_after(argv, "--uid") == str(os.stat(f"/proc/{pid}").st_uid), argv
    assert arg_after(argv, "--store") == env.store and arg_after(argv, "--run-dir") == env.run_dir, argv
    assert arg_after(argv, "--node") == "bctest", argv


# ---------------------------------------------------------------------------------------------------------

def test_picks_up_running():
    """A container that runs before bc-docker starts is monitored once bc-docker starts; SIGTERM stops
    bc-docker while the monitor goes on, and the monitor's data lands in the store."""
    env = Env("picks_up_running")
    cid = run_container("bct-before", "sleep 4")
    wait_for("the container to run", lambda: inspect(cid)["State"]["Running"], 10)
    env.start()
    key = container_key(cid)
    pid, argv = env.monitor_argv(key)
    check_monitor_argv(env, cid, argv)
    log(f"monitor pid {pid} started for the running container: {' '.join(argv[1:])}")
    env.stop()
    assert os.path.exists(f"/proc/{pid}"), "the monitor must keep running after bc-docker stops"
    assert "running containers keep their monitors" in env.log_text()
    docker("wait", cid, timeout=30)
    env.wait_monitor_gone(key)
    data = env.store_json(key)
    argvs = [p["argv"] for p in data["processes"]]
    assert ["sleep", "4"] in argvs, f"the container's process is in the store: {argvs}"
    assert data["job"]["samples"] >= 3, data["job"]
    container = data["job"]["container"]
    assert container and container["id"] == cid and container["short_id"] == cid[:12], container
    assert container["name"] == "bct-before" and container["image"], container
    rec = env.last_record(cid)
    assert rec and rec["monitored"] is True and rec["name"] == "bct-before", rec
    log(f"store: {len(data['processes'])} processes, {data['job']['samples']} samples for key {key}")


def test_start_latency():
    """A container started after bc-docker is monitored within 200 ms of its start event."""
    env = Env("start_latency")
    env.start()
    latencies = []
    for i in range(3):
        since = time.time()
        cid = run_container(f"bct-latency{i}", "sleep 1.5")
        key = container_key(cid)
        _, argv = env.monitor_argv(key, timeout=5)
        check_monitor_argv(env, cid, argv)
        docker("wait", cid, timeout=30)
        env.wait_monitor_gone(key)
        started = parse_time(inspect(cid)["State"]["StartedAt"])
        events = docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--filter",
                        f"container={cid}", "--filter", "event=start", "--format", "{{.TimeNano}}").stdout.split()
        assert events, "docker reports the start event"
        event_time = int(events[0]) / 1e9
        monitor_start = parse_time(env.store_json(key)["job"]["start"])  # when the monitor began
        from_event = (monitor_start - event_time) * 1000
        from_start = (monitor_start - started) * 1000
        latencies.append(from_event)
        log(f"container {cid[:12]}: monitor started {from_event:.1f} ms after the start event "
            f"({from_start:.1f} ms after State.StartedAt)")
    log(f"latency from the start event: max {max(latencies):.1f} ms over {len(latencies)} containers")
    assert max(latencies) <= 200, f"monitoring must start within 200 ms of the start event: {latencies}"
    env.stop()


def test_workload_accuracy():
    """A known workload: ~2 s of CPU, then dd writes 16 MiB with fsync, then sleep 1. The store (processes from
    bc-monitor) must have CPU and write_bytes within 10% of the truth."""
    env = Env("workload_accuracy")
    env.start(interval=0.5)
    mib = 16
    script = ('timeout 2 sh -c "while :; do :; done"; '
              f"dd if=/dev/zero of=/tmp/out bs=1M count={mib} conv=fsync 2>/dev/null; sleep 1; times")
    cid = run_container("bct-workload", script)
    key = container_key(cid)
    env.monitor_argv(key)
    docker("wait", cid, timeout=60)
    env.wait_monitor_gone(key)
    # Ground truth from inside: the shell's `times` is its own and its reaped children's user and system time.
    out = docker("logs", cid).stdout
    times = [float(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", out)]
    assert len(times) == 4, f"times output: {out!r}"
    truth_cpu = sum(times)
    data = env.store_json(key)
    cpu = sum(p["cpu_seconds"] for p in data["processes"])
    written = sum(p["write_bytes"] for p in data["processes"])
    expected_bytes = mib << 20
    log(f"CPU: processes {cpu:.3f} s, times(1) {truth_cpu:.3f} s, cgroup {data['job']['cpu_seconds']:.3f} s")
    log(f"write_bytes: processes {written}, dd wrote {expected_bytes}")
    for p in data["processes"]:
        log(f"  pid {p['pid']} {' '.join(p['argv'])[:60]!r}: cpu {p['cpu_seconds']} s, write {p['write_bytes']}")
    assert truth_cpu > 0.5, f"the busy loop got too little CPU to judge ({truth_cpu} s)"
    assert abs(cpu - truth_cpu) <= 0.1 * truth_cpu, f"CPU {cpu} s not within 10% of {truth_cpu} s"
    assert abs(written - expected_bytes) <= 0.1 * expected_bytes, f"write_bytes {written} not within 10% of {expected_bytes}"
    env.stop()


def test_files_and_connection():
    """The issue's workload: a busy loop, known bytes written, known files opened (one 100 times by the shell
    itself, one missing), and a connect to a loopback listener (host network). After the container exits,
    `bcacct --container ID --json` has true CPU and bytes (10%), the tree, the files and the connection."""
    env = Env("files_and_connection")
    env.start(interval=0.5)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    mib = 8
    script = ('timeout 1.5 sh -c "while :; do :; done"; '
              f"dd if=/dev/zero of=/tmp/out bs=1M count={mib} conv=fsync 2>/dev/null; "
              "echo known > /tmp/known1; echo other > /tmp/known2; "
              "for i in $(seq 100); do read x < /tmp/known1; done; read y < /tmp/known2; "
              "cat /tmp/missing 2>/dev/null; "
              f"echo hello | nc 127.0.0.1 {port}; sleep 1; times")
    cid = run_container("bct-files-net", script, network="host")
    key = container_key(cid)
    env.monitor_argv(key)
    accepted, _ = listener.accept()
    accepted.close()
    listener.close()
    docker("wait", cid, timeout=60)
    env.wait_monitor_gone(key)
    out = docker("logs", cid).stdout
    times = [float(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", out)]
    assert len(times) == 4, f"times output: {out!r}"
    truth_cpu = sum(times)

    r = subprocess.run([BCACCT, "--store", env.store, "--container", cid[:12], "--json"], capture_output=True,
                       text=True, env={**os.environ, "BC_BCACCT_CONFIG": "/dev/null"})
    assert r.returncode == 0, f"bcacct --container failed ({r.returncode}): {r.stderr}"
    data = json.loads(r.stdout)
    assert data["job"]["container"]["id"] == cid, data["job"]
    procs = data["processes"]
    for p in procs:
        log(f"  pid {p['pid']} ppid {p['ppid']} {' '.join(p['argv'])[:60]!r}: cpu {p['cpu_seconds']} s, "
            f"write {p['write_bytes']}, exit {p.get('exit_code')}")
    cpu = sum(p["cpu_seconds"] for p in procs)
    written = sum(p["write_bytes"] for p in procs)
    assert truth_cpu > 0.5, f"the busy loop got too little CPU to judge ({truth_cpu} s)"
    assert abs(cpu - truth_cpu) <= 0.1 * truth_cpu, f"CPU {cpu} s not within 10% of {truth_cpu} s"
    assert abs(written - (mib << 20)) <= 0.1 * (mib << 20), f"write_bytes {written} not within 10% of {mib} MiB"
    log(f"ok CPU {cpu:.3f} s vs times(1) {truth_cpu:.3f} s; write_bytes {written}")

    # The tree: the commands are children of the container's shell.
    shells = [p for p in procs if p["argv"][:2] == ["sh", "-c"] and script in p["argv"]]
    assert len(shells) == 1, [p["argv"] for p in procs]
    shell = shells[0]
    # busybox's shell runs some applets (dd) in a fork without exec, so only exec'd commands have their argv.
    for command in ("cat", "nc", "sleep"):
        children = [p for p in procs if p["argv"] and p["argv"][0] == command]
        assert children and all(c["ppid"] == shell["pid"] for c in children), (command, children, shell["pid"])
    log("ok tree: cat, nc and sleep under the container's shell")

    files = data["files"]
    def file_of(pid, path):
        found = [f for f in files if f["pid"] == pid and f["path"] == path]
        assert len(found) == 1, (pid, path, [f for f in files if f["path"].startswith("/tmp")])
        return found[0]
    known1 = file_of(shell["pid"], "/tmp/known1")
    assert known1["opens"] == 101 and known1["failed"] == 0, known1  # one write, 100 reads
    assert "r" in known1["flags"] and "w" in known1["flags"], known1
    assert file_of(shell["pid"], "/tmp/known2")["opens"] == 2
    cat = [p for p in procs if p["argv"] and p["argv"][0] == "cat"][0]
    missing = file_of(cat["pid"], "/tmp/missing")
    assert missing["failed"] == 1 and missing["opens"] == 0, missing  # opens counts the successful ones
    log(f"ok files: /tmp/known1 {known1['opens']} opens, /tmp/missing failed once")

    nc = [p for p in procs if p["argv"] and p["argv"][0] == "nc"][0]
    conns = [c for c in data["connections"] if c["pid"] == nc["pid"]]
    assert conns == [c for c in conns if c["address"] == "127.0.0.1" and c["port"] == port], conns
    assert len(conns) == 1 and conns[0]["protocol"] == "tcp" and conns[0]["count"] == 1 and conns[0]["failed"] == 0, conns
    log(f"ok connection: nc -> 127.0.0.1:{port} tcp, once, succeeded")
    env.stop()


def bcacct_container_json(store, cid):
    r = subprocess.run([BCACCT, "--store", store, "--container", cid[:12], "--json"], capture_output=True,
                       text=True, env={**os.environ, "BC_BCACCT_CONFIG": "/dev/null"})
    assert r.returncode == 0, f"bcacct --container {cid[:12]} --store {store} failed ({r.returncode}): {r.stderr}"
    return json.loads(r.stdout)


def test_push_with_api_key():
    """A Docker host without munge pushes to a central bcd over HTTPS with an API key: bc-docker's monitors
    verify bcd against its ca_file and ship every tick, and the central store ends with what the node store
    has, stored as the key owner's."""
    import tlslib
    env = Env("push_with_api_key")
    central = os.path.join(env.dir, "central.lmdb")
    subprocess.run([BCADM, "db", "init", "--store", central], check=True, capture_output=True)
    owner = "ops@example.org"
    key = subprocess.run([BCADM, "apikey", "create", "--owner", owner, "--node", "bctest", "--store", central],
                         check=True, capture_output=True, text=True).stdout.strip()
    key_file = os.path.join(env.dir, "bc-docker.key")
    with open(key_file, "w") as f:
        f.write(key + "\n")
    os.chmod(key_file, 0o600)
    conf = os.path.join(env.dir, "bcd.conf")
    with open(conf, "w") as f:
        f.write(f"listen=127.0.0.1:0\nstore={central}\nstatic_dir={os.path.join(BUILD, 'web', 'static')}\n"
                f"auth_secret={webtest.SECRET}\n")

    def start_bcd(name, tls_conf):
        with open(os.path.join(env.dir, name + ".conf"), "w") as f:
            f.write(open(conf).read() + tls_conf)
        port_file = os.path.join(env.dir, name + ".port")
        p = subprocess.Popen([BCD_DAEMON, "--config", os.path.join(env.dir, name + ".conf"), "--port-file", port_file],
                             stderr=open(os.path.join(env.dir, name + ".log"), "w"))
        return p, int(wait_for("bcd's port", lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10))

    bcd, port = start_bcd("bcd-tls", tlslib.bcd_conf())
    try:
        url = f"https://127.0.0.1:{port}"
        env.start(interval=0.5, extra=("--central", url, "--api-key-file", key_file, "--ca-file", tlslib.CA))
        cid = run_container("bct-push", 'timeout 1 sh -c "while :; do :; done"; sleep 1')
        k = container_key(cid)
        _, argv = env.monitor_argv(k)
        assert key not in " ".join(argv), "the API key must not be in the monitor's argv"
        docker("wait", cid, timeout=60)
        env.wait_monitor_gone(k)
        node = bcacct_container_json(env.store, cid)
        # The container's shell execs its last command (sleep): one process, one record, not two.
        pids = [p["pid"] for p in node["processes"]]
        assert len(set(pids)) == len(pids), [(p["pid"], p["argv"], p["start"]) for p in node["processes"]]
        shipped = wait_for("the container's data at bcd", lambda: (lambda d: d if d["job"]["samples"] ==
                           node["job"]["samples"] else None)(bcacct_container_json(central, cid)), 20, 0.2)
        assert shipped["job"]["user"] == owner, shipped["job"]
        assert shipped["job"]["container"]["id"] == cid, shipped["job"]
        # The key is above 2^53: exact in the node's JSON, through bcacct and in bcd's own job document, not
        # rounded through a double.
        with urllib.request.urlopen(f"{url}/api/v1/jobs/{cid[:12]}?token={webtest.token(cid[:12])}", timeout=10,
                                    context=tlslib.context()) as r:
            header = json.loads(r.read())
        assert node["job"]["id"] == k and shipped["job"]["id"] == k and header["job"]["id"] == k, \
            (node["job"]["id"], shipped["job"]["id"], header["job"]["id"], k)
        assert [(p["pid"], p["argv"], p["cpu_seconds"]) for p in shipped["processes"]] == \
            [(p["pid"], p["argv"], p["cpu_seconds"]) for p in node["processes"]], (shipped["processes"], node["processes"])
        log(f"ok bcd holds the container's {len(node['processes'])} processes and {node['job']['samples']} samples, "
            f"stored as {owner}, shipped over HTTPS verified by ca_file")
        # The headless browser knows no test CA (and certificate errors are never ignored): the page is read
        # from a plain loopback bcd on the same central store.
        bcd.send_signal(signal.SIGTERM)
        bcd.wait(timeout=20)
        bcd, port = start_bcd("bcd-plain", "")
        url = f"http://127.0.0.1:{port}"
        # The web view opens the container by its short id, as the original's URL did, with a token for it that
        # bcadm mints from the full id, as an administrator (or the quickstart) would.
        short = cid[:12]
        minted = subprocess.run([BCADM, "token", "--container", cid.upper(), "--config", conf], check=True,
                                capture_output=True, text=True).stdout.strip()
        page = f"{url}/static/index.html?container={short}&token={minted}"
        out = webtest.probe(page, "--screenshot", os.path.join(webtest.screenshot_dir(), "container.png"))
        assert out["ready"] and not out["error"], out
        fields = {k: v["value"] for k, v in out["fields"].items()}
        assert fields["user"] == owner and float(fields["cpu_seconds"]) == float(shipped["job"]["cpu_seconds"]), fields
        assert int(fields["processes"]) == len(shipped["processes"]), fields
        assert int(out["points"]["total"]) >= 2, out["points"]
        other = webtest.probe(f"{url}/static/index.html?container={short}&token={webtest.token('job_1')}")
        assert other["error"], "a token for another job must not open the container"
        log(f"ok the web view opens container {short}: header equals bcacct --json, {out['points']['total']} points")
        env.stop()
    finally:
        bcd.send_signal(signal.SIGTERM)
        bcd.wait(timeout=20)


def dockerd_pid():
    try:
        with open("/var/run/docker.pid") as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/comm") as f:
            return pid if f.read().strip() == "dockerd" else None
    except (OSError, ValueError):
        return None


def test_dockerd_restart():
    """dockerd killed with SIGKILL and started again: bc-docker reconnects, and a container started afterwards
    is monitored."""
    env = Env("dockerd_restart")
    env.start()
    # A container running while dockerd dies. Without live-restore the new dockerd stops it while restoring;
    # bc-docker must then record its end (from the replayed die event or from the re-list).
    survivor = run_container("bct-across-restart", "sleep 60")
    env.monitor_argv(container_key(survivor))
    pid = dockerd_pid()
    assert pid, "dockerd runs (/var/run/docker.pid)"
    os.kill(pid, signal.SIGKILL)
    env.wait_log(r"lost the Docker event stream", 10)
    log(f"killed dockerd {pid}; bc-docker noticed")
    time.sleep(0.5)
    assert env.proc.poll() is None, "bc-docker keeps running while dockerd is away"
    r = subprocess.run([FIXTURE, "start-dockerd", WORK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"restarting dockerd failed: {r.stderr}"
    t0 = time.monotonic()
    env.wait_log(r"reconnected to Docker", 15)
    log(f"bc-docker reconnected {time.monotonic() - t0:.2f} s after dockerd answered again")
    state = inspect(survivor)["State"]
    if not state["Running"]:
        rec = wait_for("the end of the container stopped by the restart",
                       lambda: (lambda r: r if r and r["state"] == "exited" else None)(env.last_record(survivor)), 10)
        log(f"the container stopped by the restart is recorded: exit code {rec['exit_code']}, end {rec['end']}")
        assert rec["end"] is not None, rec
    else:
        log("the container survived the restart (live-restore); its monitor keeps going")
    cid = run_container("bct-after-restart", "sleep 2")
    key = container_key(cid)
    _, argv = env.monitor_argv(key)
    check_monitor_argv(env, cid, argv)
    docker("wait", cid, timeout=30)
    env.wait_monitor_gone(key)
    assert ["sleep", "2"] in [p["argv"] for p in env.store_json(key)["processes"]]
    env.stop()


def test_two_containers_apart():
    """Two containers at once: each key holds its own processes only."""
    env = Env("two_containers_apart")
    env.start()
    a = run_container("bct-a", "sleep 2.7 & sleep 2.71; wait")
    b = run_container("bct-b", "sleep 2.9 & sleep 2.91; wait")
    for cid in (a, b):
        check_monitor_argv(env, cid, env.monitor_argv(container_key(cid))[1])
    for cid in (a, b):
        docker("wait", cid, timeout=30)
        env.wait_monitor_gone(container_key(cid))
    pa = env.store_json(container_key(a))["processes"]
    pb = env.store_json(container_key(b))["processes"]
    args_a = {" ".join(p["argv"]) for p in pa}
    args_b = {" ".join(p["argv"]) for p in pb}
    log(f"A: {sorted(args_a)}\nB: {sorted(args_b)}")
    assert {"sleep 2.7", "sleep 2.71"} <= args_a and {"sleep 2.9", "sleep 2.91"} <= args_b
    assert not any("2.9" in x for x in args_a), "B's processes must not be in A"
    assert not any("2.7" in x for x in args_b), "A's processes must not be in B"
    assert not ({p["pid"] for p in pa} & {p["pid"] for p in pb}), "no pid in both"
    env.stop()


def test_short_container_logged():
    """A container that exits in under 100 ms is recorded in the container log with its exit code and its
    duration, whether it is removed at once (--rm: inspect answers 404) or not."""
    env = Env("short_container_logged")
    env.start()
    for name, extra in (("bct-short-rm", ["--rm"]), ("bct-short", [])):
        r = run_container(name, "exit 3", extra=extra, detach=False)
        assert r.returncode == 3, f"docker run returns the container's exit code: {r.returncode} {r.stderr}"
        rec = wait_for(f"the record of {name}",
                       lambda: next((x for x in reversed(env.container_log())
                                     if x["name"] == name and x["state"] == "exited"), None), 5)
        log(f"{name}: {json.dumps(rec)}")
        assert rec["exit_code"] == 3, rec
        assert rec["duration_s"] is not None and 0 <= rec["duration_s"] < 1.0, rec
        assert rec["start"] and rec["end"], rec
        assert rec["key"] == str(container_key(rec["id"])) and rec["short_id"] == rec["id"][:12], rec
        assert rec["image"] == IMAGE, rec
        assert rec["monitored"] is False or rec["monitored"] is True  # either; the reason says which
        assert rec["reason"], rec
        if extra:
            # Removed at once: Docker's own times are there only if inspect won the race with the removal;
            # otherwise they come from the start and die events (a few ms to tens of ms late).
            assert rec["times"] in ("docker", "events"), rec
        else:
            assert rec["times"] == "docker", rec
            state = inspect(rec["id"])["State"]
            truth = parse_time(state["FinishedAt"]) - parse_time(state["StartedAt"])
            log(f"{name}: docker says it ran {truth * 1000:.1f} ms, the log says {rec['duration_s'] * 1000:.1f} ms")
            assert truth < 0.1, f"the container was meant to live under 100 ms, it lived {truth} s"
            assert abs(rec["duration_s"] - truth) < 0.002, rec
    env.stop()


def test_socket_missing():
    """A missing socket: a clear error and exit status 3; with --retry bc-docker waits and connects once the
    socket appears."""
    env = Env("socket_missing")
    missing = os.path.join(env.dir, "sock", "docker.sock")
    os.makedirs(os.path.dirname(missing))
    r = subprocess.run(env.args(socket=missing), capture_output=True, text=True, timeout=20)
    log(f"without --retry: status {r.returncode}, stderr: {r.stderr.strip()}")
    assert r.returncode == 3, r
    assert f"Docker socket {missing} does not exist" in r.stderr, r.stderr
    assert re.search(r"bc-docker\[\d+\]: error: ", r.stderr), "errors carry the fixed prefix"

    env.start(wait_connected=False, socket=missing, extra=["--retry"])
    env.wait_log(r"does not exist.*retrying", 5)
    time.sleep(1.0)
    assert env.proc.poll() is None, "with --retry bc-docker keeps trying"
    assert env.log_text().count("does not exist") == 1, "the same problem is logged once, not on every try"
    os.symlink(SOCKET, missing)
    t0 = time.monotonic()
    env.wait_log(r"\bconnected to Docker", 5)
    log(f"connected {time.monotonic() - t0:.2f} s after the socket appeared")
    cid = run_container("bct-retry", "sleep 1")
    check_monitor_argv(env, cid, env.monitor_argv(container_key(cid))[1])
    docker("wait", cid, timeout=30)
    env.stop()


def test_socket_permission_denied():
    """Permission denied on the socket (bc-docker as nobody): a clear error and exit status 3."""
    env = Env("socket_permission_denied")
    os.chmod(env.dir, 0o777)
    args = env.args()
    args[args.index("--monitor") + 1] = "/bin/true"  # nobody may not reach the build tree
    r = subprocess.run(["runuser", "-u", "nobody", "--", *args], capture_output=True, text=True, timeout=20)
    log(f"as nobody: status {r.returncode}, stderr: {r.stderr.strip()}")
    assert r.returncode == 3, r
    assert f"permission denied on Docker socket {SOCKET}" in r.stderr, r.stderr


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        print(f"usage: docker_tests.py {'|'.join(TESTS)}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            print("FAIL: the docker tests need root, and CI=true forbids skipping", file=sys.stderr)
            return 1
        print("SKIPPED: the docker tests need root", file=sys.stderr)
        return 77
    for path in (BCD, MONITOR, STOREDUMP):
        assert os.access(path, os.X_OK), f"{path} is not built (BC_BUILD={BUILD!r})"
    name = sys.argv[1]
    t0 = time.monotonic()
    try:
        TESTS[name]()
    finally:
        for env in ENVS:
            env.kill()  # a failed test leaves no bc-docker behind
        remove_test_containers()
    log(f"docker_{name}: passed in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
