#!/usr/bin/env bash
# CTest fixture: a private Slurm cluster for the integration tests, from files in the build tree, with
# slurmdbd and MariaDB for sacct.
#   cluster_fixture.sh setup|cleanup WORKDIR BUILD_DIR
# Without root or Slurm it records why in WORKDIR/skip_reason; every integration test then skips loudly
# with that reason (exit 77) instead of passing.
set -uo pipefail
action=$1; work=$2; build=$3
here=$(cd "$(dirname "$0")" && pwd)
cluster="$work/cluster"
# Slurm's cgroups are named after the node: a node name per build tree keeps two test runs on one host apart.
node=bct$(echo "$work" | md5sum | cut -c1-6)

# Slurm listens on every address: a port picked on 127.0.0.1 alone may still be held on another loopback
# address (a client's TIME-WAIT after a bench), and slurmctld then fails with "Address already in use".
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'
}

case "$action" in
setup)
  rm -rf "$work"
  mkdir -p "$work/store" "$work/run" "$work/log" "$work/jobs"
  chmod 1777 "$work/jobs"
  reason=""
  [ "$(id -u)" = 0 ] || reason="integration tests need root (slurmd, cgroups)"
  [ -z "$reason" ] && ! command -v slurmctld >/dev/null && reason="slurmctld is not installed"
  [ -z "$reason" ] && ! command -v munge >/dev/null && reason="munge is not installed"
  if [ -n "$reason" ]; then
    if [ "${CI:-}" = true ]; then
      echo "FAIL: $reason, and CI must run the integration tests" >&2
      exit 1
    fi
    echo "$reason" >"$work/skip_reason"
    echo "SKIP: $reason" >&2
    exit 0
  fi
  cat >"$work/plugstack.good" <<CONF
optional $build/spank/bubble_chamber.so store=$work/store/node.lmdb monitor=$build/cgroup_monitor/bc-monitor interval=0.2 rundir=$work/run log=$work/log/monitor.log
CONF
  mkdir -p "$cluster"
  cp "$work/plugstack.good" "$cluster/plugstack.conf"
  ctld=$(free_port); slurmd_port=$(free_port); dbd=$(free_port)
  while [ "$slurmd_port" = "$ctld" ]; do slurmd_port=$(free_port); done
  while [ "$dbd" = "$ctld" ] || [ "$dbd" = "$slurmd_port" ]; do dbd=$(free_port); done
  # With Slurm's own accounting (slurmdbd, MariaDB), so that tests compare against sacct.
  "$here/../../scripts/slurm-cluster.sh" start "$cluster" --node "$node" --ctld-port "$ctld" --slurmd-port "$slurmd_port" \
    --plugstack "$work/plugstack.good" --accounting "$dbd" || exit 1
  ;;
cleanup)
  [ -d "$cluster" ] && "$here/../../scripts/slurm-cluster.sh" stop "$cluster"
  # Monitors end on their own within seconds of their job; stop any left by an aborted test.
  for f in "$work"/run/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  exit 0
  ;;
*) echo "usage: $0 setup|cleanup WORKDIR BUILD_DIR" >&2; exit 2 ;;
esac
