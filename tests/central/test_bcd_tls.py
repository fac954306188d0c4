"""bcd over TLS: a certificate or key that does not load stops the start with a message naming the setting and
the file (exit 1); plain HTTP beyond loopback is warned about at start; bcadm ship and urllib reach an https
bcd through the CA that signed it, and refuse it with any other CA (or the system's) without sending a byte
of data: the batches stay in the outbox."""
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import tlslib
from munge_users import require_root, start_munged, stop_munged

build = os.environ["BC_BUILD"]
require_root("munged")

bcd_bin = f"{build}/web/bcd"
bcadm = f"{build}/web/bcadm"
tool = f"{build}/tests/central/bc-central-tool"
work = tempfile.mkdtemp(prefix="bc-bcd-tls-")
os.chmod(work, 0o755)
sock = start_munged(work)
env = {k: v for k, v in os.environ.items() if k not in ("AUTH_SECRET", "AUTH_DISABLE")}
running = []


def start(name, conf_text, wait=True):
    """bcd with conf_text after the common lines; returns (process, port or None, log path)."""
    store = os.path.join(work, name + ".lmdb")
    subprocess.run([bcadm, "db", "init", "--store", store], check=True, capture_output=True)
    conf = os.path.join(work, name + ".conf")
    open(conf, "w").write(f"store={store}\nstatic_dir={work}\nauth_secret=tls-test-secret-0123456789\n"
                          f"munge_socket={sock}\n" + conf_text)
    port_file, log = os.path.join(work, name + ".port"), os.path.join(work, name + ".log")
    p = subprocess.Popen([bcd_bin, "--config", conf, "--port-file", port_file], env=env, stderr=open(log, "w"))
    running.append(p)
    if not wait:
        return p, None, log
    for _ in range(200):
        if os.path.exists(port_file) or p.poll() is not None:
            break
        time.sleep(0.05)
    assert os.path.exists(port_file), f"bcd {name} did not start:\n" + open(log).read()
    return p, int(open(port_file).read()), log


def stop(p):
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0


def pending(store):
    return int(subprocess.run([tool, "pending", store], capture_output=True, text=True, check=True).stdout.split()[1])


try:
    # ---- A certificate or key that does not load: exit 1, the setting and the file named.
    garbage = os.path.join(work, "garbage.pem")
    open(garbage, "w").write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    missing = os.path.join(work, "missing.pem")
    refusals = [
        (tlslib.bcd_conf(cert=missing), f"cannot read tls_cert {missing}: No such file or directory"),
        (tlslib.bcd_conf(key=missing), f"cannot read tls_key {missing}: No such file or directory"),
        (tlslib.bcd_conf(cert=garbage), f"tls_cert {garbage} holds no PEM certificate"),
        (tlslib.bcd_conf(key=garbage), f"tls_key {garbage} holds no PEM private key"),
        (tlslib.bcd_conf(key=tlslib.OTHER_KEY),
         f"tls_key {tlslib.OTHER_KEY} is not the key of the certificate in tls_cert {tlslib.CERT}"),
        (tlslib.bcd_conf(key=tlslib.ENCRYPTED_KEY), f"tls_key {tlslib.ENCRYPTED_KEY} is encrypted"),
    ]
    for i, (conf_text, message) in enumerate(refusals):
        p, _, log = start(f"bad{i}", "listen=127.0.0.1:0\n" + conf_text, wait=False)
        assert p.wait(timeout=15) == 1, (conf_text, open(log).read())
        assert message in open(log).read(), (message, open(log).read())
    p, _, log = start("half", f"listen=127.0.0.1:0\ntls_cert={tlslib.CERT}\n", wait=False)
    assert p.wait(timeout=15) == 2 and "tls_cert= and tls_key= go together" in open(log).read(), open(log).read()
    print(f"ok {len(refusals)} certificates or keys that do not load: exit 1 naming the setting and file; "
          "tls_cert alone: exit 2")

    # ---- Plain HTTP beyond loopback is warned about; on loopback, or with TLS, it is not.
    p, port, log = start("anywhere", "listen=0.0.0.0:0\n")
    stop(p)
    text = open(log).read()
    assert f"listening on http://0.0.0.0:{port}" in text, text
    assert f"warning: listening on 0.0.0.0:{port} beyond loopback without TLS" in text, text
    assert "set tls_cert= and tls_key=" in text, text
    p, port, log = start("loopback", "listen=127.0.0.1:0\n")
    stop(p)
    assert "warning" not in open(log).read(), open(log).read()
    p, port, log = start("anywhere_tls", "listen=0.0.0.0:0\n" + tlslib.bcd_conf())
    stop(p)
    text = open(log).read()
    assert f"listening on https://0.0.0.0:{port}" in text and "warning" not in text, text
    print("ok plain HTTP on 0.0.0.0 warns at start; loopback and TLS do not")

    # ---- An https bcd: reached through its CA, refused with any other.
    p, port, log = start("central", "listen=127.0.0.1:0\npushers=root\n" + tlslib.bcd_conf())
    url = f"https://127.0.0.1:{port}"
    with urllib.request.urlopen(url + "/api/v1/health", context=tlslib.context(), timeout=10) as r:
        assert r.status == 200
    for ca in (tlslib.OTHER_CA, None):
        try:
            urllib.request.urlopen(url + "/api/v1/health", context=ssl.create_default_context(cafile=ca), timeout=10)
            raise AssertionError(f"urllib trusting {ca or 'the system CAs'} reached bcd")
        except urllib.error.URLError as e:
            assert isinstance(e.reason, ssl.SSLCertVerificationError), e
    print("ok urllib reaches the https bcd through its CA and refuses it with another or the system's")

    node = os.path.join(work, "node.lmdb")
    subprocess.run([tool, "node", node, "700", "tlsnode", "root", "0", "6", "2", str(int(time.time()) - 600)], check=True)
    for ca_args in (["--ca-file", tlslib.OTHER_CA], []):
        r = subprocess.run([bcadm, "ship", "--store", node, "--central", url, "--munge-socket", sock, *ca_args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, (ca_args, r.returncode, r.stdout, r.stderr)
        assert f"bcadm: shipping stopped: {url}/api/v1/ingest: SSL certificate problem" in r.stderr, r.stderr
        assert pending(node) == 6, pending(node)
    r = subprocess.run([bcadm, "ship", "--store", node, "--central", url, "--ca-file", missing], capture_output=True,
                       text=True)
    assert r.returncode == 2 and f"cannot read --ca-file {missing}: No such file or directory" in r.stderr, r.stderr
    r = subprocess.run([bcadm, "ship", "--store", node, "--central", url, "--munge-socket", sock,
                        "--ca-file", tlslib.CA], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "shipped 6 batch(es)" in r.stdout, (r.returncode, r.stdout, r.stderr)
    assert pending(node) == 0
    counted = subprocess.run([tool, "count", os.path.join(work, "central.lmdb"), "700"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert counted[:2] == ["nodes", "1"] and counted[4:] == ["points", "18"], counted
    stop(p)
    print("ok bcadm ship with another CA or the system's: refused, naming the URL and curl's reason, all 6 batches "
          "kept; with the CA: shipped")
finally:
    for p in running:
        if p.poll() is None:
            p.kill()
            p.wait()
    stop_munged(sock)
    shutil.rmtree(work, ignore_errors=True)
