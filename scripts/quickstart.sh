#!/usr/bin/env bash
# bubble-chamber quickstart: dependencies, build, the central daemon bcd, a private single-node Slurm with
# the plugin shipping to bcd, a demo job, and its bcacct report as bcd serves it. Idempotent: a second run reuses the build and the running cluster.
#   ./scripts/quickstart.sh          set up (or reuse) and run the demo job
#   ./scripts/quickstart.sh env      print export lines: eval "$(./scripts/quickstart.sh env)"
#   ./scripts/quickstart.sh stop     stop the cluster this script started
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

print_env() {
  echo "export SLURM_CONF=$cluster/slurm.conf"
  echo "export BC_STORE=$store"
  echo "export BC_CENTRAL=$central_url"
  echo "export BC_URL=$central_url"
  echo "export PATH=$build/sacct_ext:$build/cgroup_monitor:\$PATH"
}

case "${1:-start}" in
  env) print_env; exit 0 ;;
  stop)
    "$repo/scripts/slurm-cluster.sh" stop "$cluster"
    if [ -f "$state/bcd.pid" ] && kill -0 "$(cat "$state/bcd.pid")" 2>/dev/null; then
      kill -TERM "$(cat "$state/bcd.pid")"
    fi
    rm -f "$state/bcd.pid"
    echo "quickstart: cluster stopped (data kept in $state)"
    exit 0 ;;
  start) ;;
  -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "quickstart: unknown command '$1' (use start, env or stop)" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (it starts slurmd and uses cgroups)" >&2; exit 1; }

echo "== 1/6 dependencies"
"$repo/scripts/install-deps.sh"

echo "== 2/6 build ($build)"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "built: bubble_chamber.so, bc-monitor, bcacct"

echo "== 3/6 central daemon bcd on $central_url"
mkdir -p "$state"
if [ -f "$central_store/data.mdb" ]; then "$build/accounting_db/bcadm" db upgrade --store "$central_store" >/dev/null; fi
if ! { [ -f "$state/bcd.pid" ] && kill -0 "$(cat "$state/bcd.pid")" 2>/dev/null; }; then
  [ -s "$state/bcd.secret" ] || { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$state/bcd.secret"; chmod 600 "$state/bcd.secret"; }
  # The demo's munged is the system one (default socket): monitors push as root, bcacct asks as root.
  printf 'listen=127.0.0.1:%s\nstore=%s\nstatic_dir=%s\nauth_secret=%s\n' "$bcd_port" "$central_store" \
    "$build/web/static" "$(cat "$state/bcd.secret")" >"$state/bcd.conf"
  "$build/accounting_db/bcadm" db init --store "$central_store" >/dev/null
  mkdir -p "$state/log"
  nohup "$build/web/bcd" --config "$state/bcd.conf" >>"$state/log/bcd.log" 2>&1 &
  echo $! >"$state/bcd.pid"
  for _ in $(seq 100); do curl -sf "$central_url/api/v1/health" >/dev/null && break; sleep 0.1; done
fi
curl -sf "$central_url/api/v1/health" >/dev/null || { echo "quickstart: bcd did not come up; see $state/log/bcd.log" >&2; exit 1; }
echo "bcd is up (log $state/log/bcd.log)"

echo "== 4/6 private Slurm cluster (node $node, ports $ctld_port/$slurmd_port)"
mkdir -p "$state/store" "$state/run" "$state/log" "$state/jobs"
# A store written by an older bubble-chamber is migrated in place (a current one is left as it is).
if [ -f "$store/data.mdb" ]; then "$build/accounting_db/bcadm" db upgrade --store "$store"; fi
plugstack=$state/plugstack.conf
echo "optional $build/spank/bubble_chamber.so store=$store monitor=$build/cgroup_monitor/bc-monitor interval=1 rundir=$state/run log=$state/log/monitor.log central=$central_url" >"$plugstack"
"$repo/scripts/slurm-cluster.sh" start "$cluster" --node "$node" --ctld-port "$ctld_port" \
  --slurmd-port "$slurmd_port" --plugstack "$plugstack"
export SLURM_CONF=$cluster/slurm.conf

echo "== 5/6 demo job"
demo=$state/jobs/demo.sh
cat >"$demo" <<DEMO
#!/bin/bash
# A small process tree: a CPU-busy child, a child that writes and reads back a file, a short-lived child.
bash -c 'end=\$((SECONDS+4)); while [ \$SECONDS -lt \$end ]; do :; done' &
bash -c 'dd if=/dev/zero of=$state/jobs/demo.data bs=1M count=32 conv=fsync status=none; cat $state/jobs/demo.data >/dev/null; sleep 2' &
bash -c 'sleep 1; true' &
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
"$build/accounting_db/bcadm" ship --store "$store" --central "$central_url" >/dev/null ||
  echo "quickstart: some batches are still in the node store's outbox (see $state/log/monitor.log)" >&2

echo "== 6/6 bcacct -j $job (through bcd at $central_url)"
BC_CENTRAL=$central_url "$build/sacct_ext/bcacct" -j "$job"
token=$("$build/accounting_db/bcadm" token --job "$job" --ttl 24h --config "$state/bcd.conf")
web_url="$central_url/static/index.html?container=job_$job&token=$token"
curl -sf "$web_url" >/dev/null || { echo "quickstart: bcd does not serve the web view; see $state/log/bcd.log" >&2; exit 1; }
curl -sf "$central_url/api/v1/jobs/$job?token=$token" >/dev/null ||
  { echo "quickstart: the demo job's token is refused by bcd" >&2; exit 1; }
cat <<MSG

To use this cluster and store from your shell:
  eval "\$(./scripts/quickstart.sh env)"
  sbatch --wrap 'sleep 5'; bcacct -j <id>; bcacct -j $job --json      # through bcd ($central_url)
  bcacct --store \$BC_STORE -j $job                                  # the node store directly
  curl $central_url/metrics                                          # bcd's ingest counters
Web view of job $job (token valid 24 h; another job: bcadm token --job ID --config $state/bcd.conf):
  $web_url
Stop with: ./scripts/quickstart.sh stop
MSG
