# Sourced by the suites that push with munge: a private munged in a work directory.
#   start_munged DIR   key, socket DIR/munge.sock, log and pid in DIR
#   stop_munged DIR
start_munged() {
  mungekey -c -k "$1/munge.key"
  /usr/sbin/munged --force -S "$1/munge.sock" --key-file="$1/munge.key" --log-file="$1/munged.log" \
    --pid-file="$1/munged.pid" --seed-file="$1/munged.seed"
}
stop_munged() { /usr/sbin/munged -S "$1/munge.sock" --stop >/dev/null 2>&1 || true; }
