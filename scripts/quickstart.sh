#!/usr/bin/env bash
# bubble-chamber quickstart: dependencies, build, the central daemon bcd, a private single-node Slurm with
# the plugin shipping to bcd, a demo job, and its bcacct report as bcd serves it. Idempotent: a second run
# reuses the build and the running cluster.
#   ./scripts/quickstart.sh          set up (or reuse) and run the demo job
#   ./scripts/quickstart.sh docker   the same for Docker: dockerd, bc-docker shipping to bcd, a demo container
#   ./scripts/quickstart.sh env      print export lines: eval "$(./scripts/quickstart.sh env)"
#   ./scripts/quickstart.sh stop     stop what this script started (Slurm, bcd, bc-docker, and dockerd if it
#                                    started it); the stores are kept
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
state=${BC_QUICKSTART_DIR:-$repo/.quickstart}
build=${BC_QUICKSTART_BUILD:-$repo/build}
cluster=$state/cluster
node=bcdemo
ctld_port=${BC_QUICKSTART_CTLD_PORT:-17817}
slurmd_port=${BC_QUICKSTART_SLURMD_PORT:-17818}
store=$state/store/node.lmdb
bcd_port=${BC_QUICKSTART_BCD_PORT:-17870}
central_url=http://127.0.0.1:$bcd_port
central_store=$state/central.lmdb
bin_dirs="$build/sacct_ext:$build/accounting_db:$build/web:$build/docker_monitor:$build/cgroup_monitor"

print_env() {
  echo "export SLURM_CONF=$cluster/slurm.conf"
  echo "export BC_STORE=$store"
  echo "export BC_CENTRAL=$central_url"
  echo "export BC_URL=$central_url"
  echo "export PATH=$bin_dirs:\$PATH"
}

pid_file_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid_file() {  # stop_pid_file FILE NAME: TERM the process the file names, if it lives
  if pid_file_alive "$1"; then
    kill -TERM "$(cat "$1")"
    for _ in $(seq 100); do pid_file_alive "$1" || break; sleep 0.1; done
    echo "quickstart: $2 stopped"
  fi
  rm -f "$1"
}

case "${1:-start}" in
  env) print_env; exit 0 ;;
  stop)
    "$repo/scripts/slurm-cluster.sh" stop "$cluster"
    stop_pid_file "$state/bc-docker.pid" bc-docker
    stop_pid_file "$state/bcd.pid" bcd
    # dockerd only if this script started it (the Docker fixture remembers who did).
    [ -d "$state/docker" ] && "$repo/tests/docker/docker_fixture.sh" cleanup "$state/docker"
    echo "quickstart: stopped (data kept in $state)"
    exit 0 ;;
  start|docker) mode=${1:-start} ;;
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "quickstart: unknown command '$1' (use start, docker, env or stop)" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (it starts slurmd and uses cgroups)" >&2; exit 1; }
steps=6
[ "$mode" = docker ] && steps=5

echo "== 1/$steps dependencies"
"$repo/scripts/install-deps.sh"

echo "== 2/$steps build ($build)"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "built: bubble_chamber.so, bc-monitor, bcacct, bcadm, bcd, bc-docker"

echo "== 3/$steps central daemon bcd on $central_url"
mkdir -p "$state/log"
if [ -f "$central_store/data.mdb" ]; then "$build/web/bcadm" db upgrade --store "$central_store" >/dev/null; fi
if ! pid_file_alive "$state/bcd.pid"; then
  [ -s "$state/bcd.secret" ] || { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$state/bcd.secret"; chmod 600 "$state/bcd.secret"; }
  # The demo's munged is the system one (default socket): monitors push as root, bcacct asks as root, the
  # quickstart's administrator (who also sees the containers, stored as the API key's owner's).
  printf 'listen=127.0.0.1:%s\nstore=%s\nstatic_dir=%s\nauth_secret=%s\nadmins=root\n' "$bcd_port" \
    "$central_store" "$build/web/static" "$(cat "$state/bcd.secret")" >"$state/bcd.conf"
  "$build/web/bcadm" db init --store "$central_store" >/dev/null
  nohup "$build/web/bcd" --config "$state/bcd.conf" >>"$state/log/bcd.log" 2>&1 &
  echo $! >"$state/bcd.pid"
  for _ in $(seq 100); do curl -sf "$central_url/api/v1/health" >/dev/null && break; sleep 0.1; done
fi
curl -sf "$central_url/api/v1/health" >/dev/null || { echo "quickstart: bcd did not come up; see $state/log/bcd.log" >&2; exit 1; }
echo "bcd is up (log $state/log/bcd.log)"
mkdir -p "$state/store"
# A store written by an older bubble-chamber is migrated in place (a current one is left as it is).
if [ -f "$store/data.mdb" ]; then "$build/web/bcadm" db upgrade --store "$store" >/dev/null; fi

# After a demo: says loudly when the eBPF events did not run (the report is then from sampling alone).
events_note() {  # events_note REASON
  [ -n "$1" ] || return 0
  cat <<NOTE

!!! The eBPF events did not run on this machine:
!!!   $1
!!! The report above comes from sampling alone: processes shorter than an interval, exit codes, files and
!!! connections are missing. Everything else works. To see why, on this machine, as root:
!!!   $build/cgroup_monitor/bc-monitor --check-events
NOTE
}

show_files() {  # show_files PATTERN BCACCT-ARGS...: the files under PATTERN the demo opened, and how many in all
  local pattern=$1 files
  shift
  files=$(BC_CENTRAL=$central_url "$build/sacct_ext/bcacct" "$@" --files) || return 0
  if [ "$(echo "$files" | wc -l)" -le 2 ]; then echo "$files"; return 0; fi
  echo "$files" | head -2
  echo "$files" | grep -F "$pattern" || true
  echo "($(($(echo "$files" | wc -l) - 2)) rows in all, with every library and locale file each process opened: bcacct $* --files)"
}

events_reason() {  # events_reason BCACCT-ARGS...: the record's events_unavailable, empty when events ran
  BC_CENTRAL=$central_url "$build/sacct_ext/bcacct" "$@" --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["job"]["events_unavailable"] or "")'
}

if [ "$mode" = docker ]; then
  echo "== 4/5 Docker: dockerd, the local image, bc-docker shipping to bcd"
  docker_work=$state/docker
  "$repo/tests/docker/docker_fixture.sh" setup "$docker_work"
  image=bc-busybox:test
  docker=$(command -v docker)
  [ -x /usr/bin/docker ] && docker=/usr/bin/docker
  if [ ! -s "$state/bc-docker.key" ]; then
    "$build/web/bcadm" apikey create --owner "quickstart@$(hostname -s)" --node "$(hostname -s)" \
      --store "$central_store" >"$state/bc-docker.key"
    chmod 600 "$state/bc-docker.key"
  fi
  if ! pid_file_alive "$state/bc-docker.pid"; then
    mkdir -p "$state/run" "$state/docker-state"
    nohup "$build/docker_monitor/bc-docker" --store "$store" --monitor "$build/cgroup_monitor/bc-monitor" \
      --run-dir "$state/run" --log "$state/log/docker-monitor.log" --state "$state/docker-state" --interval 1 \
      --central "$central_url" --api-key-file "$state/bc-docker.key" >>"$state/log/bc-docker.log" 2>&1 &
    echo $! >"$state/bc-docker.pid"
    sleep 1
    pid_file_alive "$state/bc-docker.pid" || { echo "quickstart: bc-docker did not start; see $state/log/bc-docker.log" >&2; exit 1; }
  fi
  echo "bc-docker is up (log $state/log/bc-docker.log, monitors' log $state/log/docker-monitor.log)"

  echo "== 5/5 demo container"
  name=bc-demo-$(date +%s)
  # A small process tree: a CPU-busy child, a child that writes and reads back a file, a short-lived child
  # that fails. It starts after a second: bc-docker starts the monitor when Docker says the container has
  # started, and what runs before the monitor tracks it is seen by sampling alone.
  cid=$("$docker" run -d --name "$name" --network none "$image" sh -c 'sleep 1
    (i=0; while [ $i -lt 600000 ]; do i=$((i+1)); done) &
    (dd if=/dev/zero of=/tmp/demo.data bs=1M count=16 2>/dev/null; cat /tmp/demo.data >/dev/null; sleep 2) &
    (sleep 1; ls /no/such/file 2>/dev/null) &
    wait')
  echo "started container $name (${cid:0:12})"
  "$docker" wait "$cid" >/dev/null
  # Its monitor (named by the container's key: the short id with the top bit set) writes its last record
  # within an interval and the empty-cgroup grace of the container's end.
  monitor_pid=$state/run/job_$(python3 -c "print(int('${cid:0:12}', 16) | (1 << 63))").pid
  for _ in $(seq 30); do [ -f "$monitor_pid" ] && break; sleep 0.1; done
  for _ in $(seq 100); do [ -f "$monitor_pid" ] || break; sleep 0.2; done
  "$build/web/bcadm" ship --store "$store" --central "$central_url" \
    --api-key-file "$state/bc-docker.key" >/dev/null ||
    echo "quickstart: some batches are still in the node store's outbox (see $state/log/docker-monitor.log)" >&2
  echo
  echo "== bcacct --container $name (through bcd at $central_url)"
  BC_CENTRAL=$central_url "$build/sacct_ext/bcacct" --container "$name"
  echo
  show_files /tmp/demo.data --container "$name"
  token=$("$build/web/bcadm" token --container "$cid" --ttl 24h --config "$state/bcd.conf")
  web_url="$central_url/static/index.html?container=${cid:0:12}&token=$token"
  curl -sf "$web_url" >/dev/null || { echo "quickstart: bcd does not serve the web view; see $state/log/bcd.log" >&2; exit 1; }
  cat <<MSG

To use it from your shell:
  eval "\$(./scripts/quickstart.sh env)"
  docker run --rm $image sh -c 'sleep 3'; bcacct --container <name or id>
Web view of container $name (token valid 24 h; another: bcadm token --container ID --config $state/bcd.conf):
  $web_url
Stop with: ./scripts/quickstart.sh stop
MSG
  events_note "$(events_reason --container "$name")"
  exit 0
fi

echo "== 4/6 private Slurm cluster (node $node, ports $ctld_port/$slurmd_port)"
mkdir -p "$state/run" "$state/jobs"
plugstack=$state/plugstack.conf
# BC_QUICKSTART_PLUGIN_OPTIONS adds plugstack.conf keys, e.g. "bpf=off" or "file_bytes=on".
echo "optional $build/spank/bubble_chamber.so store=$store monitor=$build/cgroup_monitor/bc-monitor interval=1 rundir=$state/run log=$state/log/monitor.log central=$central_url ${BC_QUICKSTART_PLUGIN_OPTIONS:-}" >"$plugstack"
"$repo/scripts/slurm-cluster.sh" start "$cluster" --node "$node" --ctld-port "$ctld_port" \
  --slurmd-port "$slurmd_port" --plugstack "$plugstack"
export SLURM_CONF=$cluster/slurm.conf

echo "== 5/6 demo job"
demo=$state/jobs/demo.sh
cat >"$demo" <<DEMO
#!/bin/bash
# A small process tree: a CPU-busy child, a child that writes and reads back a file, a short-lived child
# that fails.
bash -c 'end=\$((SECONDS+4)); while [ \$SECONDS -lt \$end ]; do :; done' &
bash -c 'dd if=/dev/zero of=$state/jobs/demo.data bs=1M count=32 conv=fsync status=none; cat $state/jobs/demo.data >/dev/null; sleep 2' &
bash -c 'sleep 1; ls /no/such/file 2>/dev/null' &
wait
rm -f $state/jobs/demo.data
DEMO
chmod +x "$demo"
job=$(sbatch --parsable -J bc-demo -n1 -o "$state/jobs/demo-%j.out" "$demo")
echo "submitted job $job"
for _ in $(seq 600); do
  st=$(scontrol show job -o "$job" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$st" in COMPLETED|FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL) break ;; esac
  sleep 0.5
done
echo "job $job: $st"
# The monitor writes its final record within an interval of the job's end.
for _ in $(seq 50); do [ -f "$state/run/job_$job.pid" ] || break; sleep 0.2; done

# The monitor ships each tick as it goes and the rest when it exits; bcadm ship sends anything left.
"$build/web/bcadm" ship --store "$store" --central "$central_url" >/dev/null ||
  echo "quickstart: some batches are still in the node store's outbox (see $state/log/monitor.log)" >&2

echo "== 6/6 bcacct -j $job (through bcd at $central_url)"
BC_CENTRAL=$central_url "$build/sacct_ext/bcacct" -j "$job"
echo
show_files "$state/jobs/" -j "$job"
token=$("$build/web/bcadm" token --job "$job" --ttl 24h --config "$state/bcd.conf")
web_url="$central_url/static/index.html?container=job_$job&token=$token"
curl -sf "$web_url" >/dev/null || { echo "quickstart: bcd does not serve the web view; see $state/log/bcd.log" >&2; exit 1; }
curl -sf "$central_url/api/v1/jobs/$job?token=$token" >/dev/null ||
  { echo "quickstart: the demo job's token is refused by bcd" >&2; exit 1; }
cat <<MSG

To use this cluster and store from your shell:
  eval "\$(./scripts/quickstart.sh env)"
  sbatch --wrap 'sleep 5'; bcacct -j <id>   # through bcd ($central_url)
  bcacct -j $job --tree; bcacct -j $job --json
  bcacct --store \$BC_STORE -j $job          # the node store directly
  curl $central_url/metrics     # bcd's ingest counters
  bc-monitor --check-events                 # whether the eBPF events load here
Web view of job $job (token valid 24 h; another job: bcadm token --job ID --config $state/bcd.conf):
  $web_url
Containers too: ./scripts/quickstart.sh docker
Stop with: ./scripts/quickstart.sh stop
MSG
events_note "$(events_reason -j "$job")"
