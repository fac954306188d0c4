#!/usr/bin/env bash
# A private single-node Slurm cluster living entirely in one directory.
# Used by quickstart.sh, the CTest fixture and bench/. Everything (config, state, spool, logs, pid files)
# lives under DIR, so several clusters (quickstart, tests) can coexist on one host as long as their node
# names and ports differ.
#
#   slurm-cluster.sh start DIR --node NAME --ctld-port P --slurmd-port P [--plugstack FILE] [--slurmd-debug LEVEL]
#   slurm-cluster.sh stop DIR
#   slurm-cluster.sh env DIR        print export lines for this cluster
#   slurm-cluster.sh status DIR     exit 0 when both daemons answer
#   slurm-cluster.sh munge DIR      only make sure munged runs (DIR is not used)
#   slurm-cluster.sh common-conf DIR  print the slurm.conf lines every private cluster shares, and write
#                                   DIR/cgroup.conf
set -euo pipefail

die() { echo "slurm-cluster: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop|env|status DIR [options]"
shift 2
node=bcnode; ctld_port=16817; slurmd_port=16818; plugstack=""; slurmd_debug=info
while [ $# -gt 0 ]; do
  case "$1" in
    --node) node=$2; shift 2 ;;
    --ctld-port) ctld_port=$2; shift 2 ;;
    --slurmd-port) slurmd_port=$2; shift 2 ;;
    --plugstack) plugstack=$2; shift 2 ;;
    --slurmd-debug) slurmd_debug=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

ensure_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  [ -f /etc/munge/munge.key ] || mungekey -c >/dev/null 2>&1 || /usr/sbin/mungekey -c
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  # munged keeps every descriptor it inherits for as long as it runs: a caller's flock (the tests' lock)
  # would stay held and its logs open. It gets stdin, stdout and stderr only.
  ( for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -le 2 ] || eval "exec $fd>&-"; done
    exec runuser -u munge -- /usr/sbin/munged --force )
  for _ in $(seq 50); do
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "munged did not come up"
}

# What every private cluster's slurm.conf shares (the two-node test fixture uses it too).
common_settings() {
  cat <<CONF
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/cgroup
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldDebug=info
MpiDefault=none
SchedulerType=sched/backfill
KillWait=5
InactiveLimit=0
MinJobAge=300
CONF
}

write_cgroup_conf() {
  cat >"$1" <<CONF
CgroupPlugin=cgroup/v1
ConstrainCores=yes
ConstrainRAMSpace=yes
CONF
}

write_config() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  { common_settings; cat <<CONF; } >"$dir/slurm.conf"
ClusterName=bc_${node}
SlurmctldHost=localhost
SlurmctldPort=${ctld_port}
SlurmdPort=${slurmd_port}
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool/slurmd_%n
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
SlurmdDebug=${slurmd_debug}
PlugStackConfig=${dir}/plugstack.conf
NodeName=${node} NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 8 / 10 )) State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
  write_cgroup_conf "$dir/cgroup.conf"
  if [ -n "$plugstack" ]; then
    cp "$plugstack" "$dir/plugstack.conf"
  elif [ ! -f "$dir/plugstack.conf" ]; then
    : >"$dir/plugstack.conf"
  fi
}

start() {
  command -v slurmctld >/dev/null || die "slurmctld is not installed"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  ensure_munge
  write_config
  export SLURM_CONF="$dir/slurm.conf"
  if ! pid_alive "$dir/slurmctld.pid"; then
    /usr/sbin/slurmctld -i >>"$dir/log/slurmctld.stdout" 2>&1 || die "slurmctld failed, see $dir/log/slurmctld.log"
  fi
  if ! pid_alive "$dir/slurmd.pid"; then
    /usr/sbin/slurmd -N "$node" >>"$dir/log/slurmd.stdout" 2>&1 || die "slurmd failed, see $dir/log/slurmd.log"
  fi
  for _ in $(seq 150); do
    state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
    case "$state" in
      idle*|mixed*|allocated*) echo "slurm-cluster: $node up ($state), SLURM_CONF=$SLURM_CONF"; return 0 ;;
      down*|drain*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  die "node $node did not become idle (state: ${state:-unknown})"
}

stop() {
  [ -d "$dir" ] || return 0
  for d in slurmd slurmctld; do
    if pid_alive "$dir/$d.pid"; then
      pid=$(cat "$dir/$d.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  env) dir=$(cd "$dir" && pwd); echo "export SLURM_CONF=$dir/slurm.conf" ;;
  status) pid_alive "$dir/slurmctld.pid" && pid_alive "$dir/slurmd.pid" ;;
  munge) ensure_munge ;;
  common-conf) mkdir -p "$dir" && write_cgroup_conf "$dir/cgroup.conf" && common_settings ;;
  *) die "unknown command $cmd" ;;
esac
