#!/usr/bin/env bash
# CTest fixture: a private Slurm cluster of two nodes on this one host, for multi-node jobs. Each slurmd runs
# in a network and a UTS namespace of its own (its own address and hostname), with its own plugstack (node
# store, run dir, monitor log); slurmctld and the clients stay in the host's namespaces, on a veth whose
# other end, like the nodes', is on a bridge in a namespace of its own (dockerd's FORWARD policy drops
# bridged traffic in the host's). Slurm's accounting runs too (slurm-cluster.sh --accounting: a private
# MariaDB and slurmdbd), so that sacct answers for multi-node jobs. ../shared/FACTS.md has what this rests on.
#   two_node_fixture.sh setup|cleanup WORKDIR BUILD_DIR
#   two_node_fixture.sh restart-node WORKDIR BUILD_DIR NODE   start a node again after a test killed it
# WORKDIR/env then holds: NODES, SUBNET_HOST (the host's address), and per node its store, run dir and log.
set -uo pipefail
action=$1; work=$2; build=$3
here=$(cd "$(dirname "$0")" && pwd)
cluster="$work/cluster"
# Names and the subnet derive from the work dir, so two build trees' fixtures on one host stay apart.
h=$(echo "$work" | md5sum | cut -c1-4)
octet=$(( 16#${h:0:2} ))
net="10.213.$octet"
ns_bridge="bcbr$h"
nodes=("bc${h}a" "bc${h}b")
controller="bc${h}c"

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'
}

# Everything left of a node (a test may have killed its slurmd and left its steps), and its job cgroups:
# Slurm numbers jobs from 1 again in the next fixture, and a job cgroup left behind would carry its CPU.
kill_node() {
  ip netns pids "ns$1" 2>/dev/null | xargs -r kill -9
  for _ in $(seq 50); do [ -z "$(ip netns pids "ns$1" 2>/dev/null)" ] && break; sleep 0.1; done
  find /sys/fs/cgroup/*/"slurm_$1" -depth -type d -exec rmdir {} + 2>/dev/null
  return 0
}

teardown() {
  for pidfile in "$cluster"/slurmd_*.pid "$cluster/slurmctld.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  for n in "${nodes[@]}"; do
    for f in "$work/run-$n"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    kill_node "$n"
    ip netns del "ns$n" 2>/dev/null
  done
  ip netns del "$ns_bridge" 2>/dev/null
  ip link del "bch$h" 2>/dev/null
  "$here/../../scripts/slurm-cluster.sh" stop "$cluster"  # slurmdbd and MariaDB
  return 0
}

setup_network() {
  ip netns add "$ns_bridge" || return 1
  ip -n "$ns_bridge" link add br0 type bridge && ip -n "$ns_bridge" link set br0 up || return 1
  # The host's side.
  ip link add "bch$h" type veth peer name "bcp$h" && ip link set "bcp$h" netns "$ns_bridge" || return 1
  ip -n "$ns_bridge" link set "bcp$h" master br0 up && ip addr add "$net.1/24" dev "bch$h" &&
    ip link set "bch$h" up || return 1
  local i=10
  for n in "${nodes[@]}"; do
    i=$((i + 1))
    ip netns add "ns$n" && ip -n "ns$n" link set lo up || return 1
    ip link add "bcv$i$h" type veth peer name "bcq$i$h" || return 1
    ip link set "bcv$i$h" netns "ns$n" && ip link set "bcq$i$h" netns "$ns_bridge" || return 1
    ip -n "$ns_bridge" link set "bcq$i$h" master br0 up || return 1
    ip -n "ns$n" addr add "$net.$i/24" dev "bcv$i$h" && ip -n "ns$n" link set "bcv$i$h" up || return 1
  done
}

write_config() {
  local ctld=$1 slurmd_port=$2 dbd_port=$3
  mkdir -p "$cluster/state" "$cluster/spool" "$cluster/log"
  local mem=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 4 / 10 ))
  { "$here/../../scripts/slurm-cluster.sh" common-conf "$cluster"; cat <<CONF; } >"$cluster/slurm.conf"
ClusterName=bc_2n${h}
SlurmctldHost=${controller}(${net}.1)
SlurmctldPort=${ctld}
SlurmdPort=${slurmd_port}
DebugFlags=NO_CONF_HASH
StateSaveLocation=${cluster}/state
SlurmdSpoolDir=${cluster}/spool/slurmd_%n
SlurmctldPidFile=${cluster}/slurmctld.pid
SlurmdPidFile=${cluster}/slurmd_%n.pid
SlurmctldLogFile=${cluster}/log/slurmctld.log
SlurmdLogFile=${cluster}/log/slurmd_%n.log
SlurmdDebug=info
PlugStackConfig=${cluster}/plugstack.conf
$("$here/../../scripts/slurm-cluster.sh" accounting-conf "$cluster" --accounting "$dbd_port")
NodeName=${nodes[0]} NodeHostname=${nodes[0]} NodeAddr=${net}.11 CPUs=$(nproc) RealMemory=${mem} State=UNKNOWN
NodeName=${nodes[1]} NodeHostname=${nodes[1]} NodeAddr=${net}.12 CPUs=$(nproc) RealMemory=${mem} State=UNKNOWN
PartitionName=two Nodes=${nodes[0]},${nodes[1]} Default=YES MaxTime=INFINITE State=UP
CONF
  : >"$cluster/plugstack.conf"
  # Each node its own plugstack (store, run dir, log), through a slurm.conf of its own.
  for n in "${nodes[@]}"; do
    mkdir -p "$work/store-$n" "$work/run-$n"
    echo "optional $build/spank/bubble_chamber.so store=$work/store-$n/node.lmdb monitor=$build/cgroup_monitor/bc-monitor interval=0.5 rundir=$work/run-$n log=$work/log/monitor-$n.log" \
      >"$cluster/plugstack.$n.conf"
    sed "s|^PlugStackConfig=.*|PlugStackConfig=$cluster/plugstack.$n.conf|" "$cluster/slurm.conf" >"$cluster/slurm.$n.conf"
  done
}

# The daemons get stdin, stdout and stderr only, or they would hold a caller's flock while they run.
without_inherited_fds() {
  for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -le 2 ] || eval "exec $fd>&-"; done
  exec "$@"
}

start_slurmd() {
  ( SLURM_CONF="$cluster/slurm.$1.conf" without_inherited_fds nsenter --net="/run/netns/ns$1" -- unshare --uts -- \
      sh -c "hostname $1 && exec /usr/sbin/slurmd -N $1" ) >>"$cluster/log/slurmd_$1.stdout" 2>&1
}

# Until every node named is up (idle, mixed or allocated), resuming those Slurm has set down.
wait_up() {
  export SLURM_CONF="$cluster/slurm.conf"
  for _ in $(seq 150); do
    local up=0
    for n in "$@"; do
      case "$(sinfo -h -n "$n" -o %T 2>/dev/null)" in
        idle*|mixed*|allocated*) up=$((up + 1)) ;;
        down*|drain*) scontrol update nodename="$n" state=resume >/dev/null 2>&1 ;;
      esac
    done
    [ "$up" = $# ] && return 0
    sleep 0.2
  done
  tail -n 20 "$cluster"/log/*.log >&2
  return 1
}

start_daemons() {
  ( SLURM_CONF="$cluster/slurm.conf" without_inherited_fds unshare --uts -- \
      sh -c "hostname $controller && exec /usr/sbin/slurmctld -i" ) >>"$cluster/log/slurmctld.stdout" 2>&1 || return 1
  for n in "${nodes[@]}"; do start_slurmd "$n" || return 1; done
  wait_up "${nodes[@]}"
}

case "$action" in
setup)
  teardown
  rm -rf "$work"
  mkdir -p "$work/log" "$work/jobs"
  chmod 1777 "$work/jobs"
  reason=""
  [ "$(id -u)" = 0 ] || reason="the two-node tests need root (namespaces, slurmd, cgroups)"
  [ -z "$reason" ] && ! command -v slurmctld >/dev/null && reason="slurmctld is not installed"
  [ -z "$reason" ] && ! command -v ip >/dev/null && reason="iproute2 (ip) is not installed"
  [ -z "$reason" ] && ! { command -v mariadbd && command -v slurmdbd; } >/dev/null &&
    reason="mariadb-server and slurmdbd are not installed (Slurm's accounting)"
  if [ -n "$reason" ]; then
    if [ "${CI:-}" = true ]; then
      echo "FAIL: $reason, and CI must run the two-node tests" >&2
      exit 1
    fi
    echo "$reason" >"$work/skip_reason"
    echo "SKIP: $reason" >&2
    exit 0
  fi
  "$here/../../scripts/slurm-cluster.sh" munge "$cluster" || exit 1
  setup_network || { echo "two-node fixture: the namespaces and veths could not be made" >&2; teardown; exit 1; }
  ctld=$(free_port); slurmd_port=$(free_port); dbd_port=$(free_port)
  while [ "$slurmd_port" = "$ctld" ]; do slurmd_port=$(free_port); done
  while [ "$dbd_port" = "$ctld" ] || [ "$dbd_port" = "$slurmd_port" ]; do dbd_port=$(free_port); done
  write_config "$ctld" "$slurmd_port" "$dbd_port"
  "$here/../../scripts/slurm-cluster.sh" accounting "$cluster" --node "2n$h" --accounting "$dbd_port" ||
    { echo "two-node fixture: Slurm's accounting did not come up" >&2; teardown; exit 1; }
  start_daemons || { echo "two-node fixture: the cluster did not come up" >&2; teardown; exit 1; }
  { echo "NODES=${nodes[*]}"; echo "HOST_ADDRESS=$net.1"; } >"$work/env"
  echo "two-node fixture: ${nodes[*]} up on $net.0/24, SLURM_CONF=$cluster/slurm.conf"
  ;;
cleanup)
  teardown
  ;;
restart-node)
  n=${4:?node}
  kill_node "$n"
  rm -f "$cluster/slurmd_$n.pid"
  start_slurmd "$n" || { echo "two-node fixture: slurmd of $n did not start" >&2; exit 1; }
  # Idle and answering (no '*'): the new slurmd has registered, and the killed job's steps there are done.
  export SLURM_CONF="$cluster/slurm.conf"
  for _ in $(seq 150); do
    case "$(sinfo -h -n "$n" -o %T 2>/dev/null)" in
      idle) exit 0 ;;
      down*|drain*) scontrol update nodename="$n" state=resume >/dev/null 2>&1 ;;
    esac
    sleep 0.2
  done
  echo "two-node fixture: $n did not come back ($(sinfo -h -n "$n" -o %T 2>/dev/null))" >&2
  exit 1
  ;;
*) echo "usage: $0 setup|cleanup|restart-node WORKDIR BUILD_DIR [NODE]" >&2; exit 2 ;;
esac
