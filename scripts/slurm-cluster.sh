#!/usr/bin/env bash
# A private single-node Slurm cluster living entirely in one directory.
# Used by quickstart.sh, the CTest fixture and bench/. Everything (config, state, spool, logs, pid files)
# lives under DIR, so several clusters (quickstart, tests) can coexist on one host as long as their node
# names and ports differ.
#
#   slurm-cluster.sh start DIR --node NAME --ctld-port P --slurmd-port P [--plugstack FILE] [--slurmd-debug LEVEL]
#                    [--accounting DBD_PORT]
#       --accounting: Slurm's own accounting too: a private MariaDB (datadir, socket and a 127.0.0.1 port under
#       DIR) and slurmdbd on DBD_PORT, jobacct_gather/cgroup sampling every second (JobAcctGatherFrequency
#       task=1), the cluster, an account and root's association; sacct then answers for this cluster.
#   slurm-cluster.sh stop DIR
#   slurm-cluster.sh env DIR        print export lines for this cluster
#   slurm-cluster.sh status DIR     exit 0 when both daemons answer
#   slurm-cluster.sh munge DIR      only make sure munged runs (DIR is not used)
#   slurm-cluster.sh common-conf DIR  print the slurm.conf lines every private cluster shares, and write
#                                   DIR/cgroup.conf
#   slurm-cluster.sh accounting-conf DIR --accounting DBD_PORT   print the slurm.conf lines of --accounting
#   slurm-cluster.sh accounting DIR --node NAME --accounting DBD_PORT
#                                   start only --accounting's MariaDB and slurmdbd for DIR/slurm.conf, whose
#                                   ClusterName must be bc_NAME (the two-node fixture)
set -euo pipefail

die() { echo "slurm-cluster: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop|env|status DIR [options]"
shift 2
node=bcnode; ctld_port=16817; slurmd_port=16818; plugstack=""; slurmd_debug=info; dbd_port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --node) node=$2; shift 2 ;;
    --ctld-port) ctld_port=$2; shift 2 ;;
    --slurmd-port) slurmd_port=$2; shift 2 ;;
    --plugstack) plugstack=$2; shift 2 ;;
    --slurmd-debug) slurmd_debug=$2; shift 2 ;;
    --accounting) dbd_port=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Runs a daemon with stdin, stdout and stderr only: munged, mariadbd and Slurm's daemons keep every descriptor
# they inherit for as long as they run, and a caller's flock (the tests' lock) would stay held and its logs open.
exec_without_inherited_fds() {
  for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -le 2 ] || eval "exec $fd>&-"; done
  exec "$@"
}

ensure_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  [ -f /etc/munge/munge.key ] || mungekey -c >/dev/null 2>&1 || /usr/sbin/mungekey -c
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  ( exec_without_inherited_fds runuser -u munge -- /usr/sbin/munged --force )
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

accounting_settings() {
  [ -n "$dbd_port" ] || return 0
  cat <<CONF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=${dbd_port}
JobAcctGatherFrequency=task=1
CONF
}

free_local_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# MariaDB and slurmdbd, private to DIR; before slurmctld, which registers with slurmdbd as it starts.
start_accounting() {
  local db="$dir/mariadb"
  command -v mariadbd >/dev/null && command -v slurmdbd >/dev/null ||
    die "--accounting needs mariadb-server and slurmdbd (scripts/install-deps.sh)"
  if ! pid_alive "$db/mariadb.pid"; then
    if [ ! -d "$db/data/mysql" ]; then
      mkdir -p "$db"
      mariadb-install-db --no-defaults --user=root --datadir="$db/data" --auth-root-authentication-method=socket \
        --skip-test-db >"$db/install.log" 2>&1 || die "mariadb-install-db failed, see $db/install.log"
    fi
    free_local_port >"$db/port"
    ( exec_without_inherited_fds /usr/sbin/mariadbd --no-defaults --user=root --datadir="$db/data" \
      --socket="$db/mariadb.sock" --port="$(cat "$db/port")" --bind-address=127.0.0.1 --pid-file="$db/mariadb.pid" \
      --log-error="$db/mariadb.err" --skip-log-bin --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 \
      </dev/null >/dev/null 2>&1 ) &
    local sql="mariadb --no-defaults --socket=$db/mariadb.sock"
    for _ in $(seq 150); do $sql -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
    $sql -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'bc-private';
             GRANT ALL ON \`bc_acct\`.* TO 'slurm'@'127.0.0.1';" || die "MariaDB did not come up, see $db/mariadb.err"
  fi
  # slurmdbd reads slurmdbd.conf beside SLURM_CONF's file; it must be its user's and mode 600.
  cat >"$dir/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=${dbd_port}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$(cat "$db/port")
StorageUser=slurm
StoragePass=bc-private
StorageLoc=bc_acct
PidFile=${dir}/slurmdbd.pid
LogFile=${dir}/log/slurmdbd.log
DebugLevel=info
CONF
  chmod 600 "$dir/slurmdbd.conf"
  if ! pid_alive "$dir/slurmdbd.pid"; then
    ( exec_without_inherited_fds /usr/sbin/slurmdbd ) >>"$dir/log/slurmdbd.stdout" 2>&1 || die "slurmdbd failed, see $dir/log/slurmdbd.log"
  fi
  for _ in $(seq 150); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.1; done
  sacctmgr -n show cluster format=cluster 2>/dev/null | grep -qw "bc_${node}" ||
    sacctmgr -i add cluster "bc_${node}" >/dev/null || die "sacctmgr could not add the cluster"
  sacctmgr -n show account bc 2>/dev/null | grep -qw bc || sacctmgr -i add account bc >/dev/null
  sacctmgr -n show user root 2>/dev/null | grep -qw root || sacctmgr -i add user root account=bc >/dev/null
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
$(accounting_settings)
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
  [ -n "$dbd_port" ] && start_accounting
  if ! pid_alive "$dir/slurmctld.pid"; then
    ( exec_without_inherited_fds /usr/sbin/slurmctld -i ) >>"$dir/log/slurmctld.stdout" 2>&1 || die "slurmctld failed, see $dir/log/slurmctld.log"
  fi
  if ! pid_alive "$dir/slurmd.pid"; then
    ( exec_without_inherited_fds /usr/sbin/slurmd -N "$node" ) >>"$dir/log/slurmd.stdout" 2>&1 || die "slurmd failed, see $dir/log/slurmd.log"
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
  for d in slurmd slurmctld slurmdbd mariadb/mariadb; do
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
  accounting-conf) accounting_settings ;;
  accounting)
    [ -n "$dbd_port" ] || die "accounting needs --accounting DBD_PORT"
    dir=$(cd "$dir" && pwd)
    ensure_munge
    export SLURM_CONF="$dir/slurm.conf"
    start_accounting ;;
  *) die "unknown command $cmd" ;;
esac
