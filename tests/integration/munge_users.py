"""Real users and a private munged for tests of bcd and bcacct (root only)."""
import os
import pwd
import subprocess
import sys

SKIP = 77


def require_root(what):
    """Skips loudly (exit 77) without root, or fails under CI=true, where these tests must run."""
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        sys.exit(f"FAIL: needs root ({what}) and CI must run it")
    print(f"SKIP: needs root ({what})")
    sys.exit(SKIP)


def ensure_users(*names):
    """Creates the users that do not exist yet; returns {name: uid}."""
    uids = {}
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
        uids[name] = pwd.getpwnam(name).pw_uid
    return uids


def start_munged(work, name="munge"):
    """A munged with its own key on WORK/NAME.sock; returns the socket path."""
    sock = os.path.join(work, f"{name}.sock")
    key = os.path.join(work, f"{name}.key")
    subprocess.run(["mungekey", "-c", "-k", key], check=True)
    subprocess.run(["/usr/sbin/munged", "--force", "-S", sock, f"--key-file={key}", f"--log-file={work}/{name}.log",
                    f"--pid-file={work}/{name}.pid", f"--seed-file={work}/{name}.seed"], check=True)
    return sock


def stop_munged(sock):
    subprocess.run(["/usr/sbin/munged", "-S", sock, "--stop"], capture_output=True)
