#!/usr/bin/env bash
# summary: bcd under wrk: the series endpoint of a large job at 200 connections (p50/p99) against static files
#
# A synthetic job (BENCH_WEB_PROCS processes x BENCH_WEB_SECONDS one-second ticks, default 1000 x 3600) is
# written into a private store; bcd serves it with auth on (a web token, as the page sends it). wrk (Debian)
# runs BENCH_WEB_DURATION seconds (10) per endpoint with BENCH_WEB_CONNECTIONS (200) connections on 2
# threads. Baselines in the same run: a static file (the page itself) and /api/v1/health.
# The job views are asked as the page's browser asks them (Accept-Encoding: gzip); series_identity asks
# without it, as curl and bcacct do.
set -euo pipefail
: "${BC_SRC_DIR:?run through bench/run.sh}" "${BC_BUILD_DIR:?run through bench/run.sh}"
command -v wrk >/dev/null || { echo "bench web: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cmake --build "$BC_BUILD_DIR" --target bcd bc-web-store web_static >/dev/null
procs=${BENCH_WEB_PROCS:-1000}
seconds=${BENCH_WEB_SECONDS:-3600}
duration=${BENCH_WEB_DURATION:-10}
conns=${BENCH_WEB_CONNECTIONS:-200}
work=$(mktemp -d /var/tmp/bc-bench-web.XXXXXX)
bcd_pid=
cleanup() { [ -n "$bcd_pid" ] && kill "$bcd_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$BC_BUILD_DIR/tests/web/bc-web-store" "$work/store" 5 alice 1000 "$procs" "$seconds" >/dev/null
secret=bench-secret-0123456789abcdef
AUTH_SECRET=$secret "$BC_BUILD_DIR/web/bcd" --config /dev/null --listen 127.0.0.1:0 --store "$work/store" \
  --static-dir "$BC_BUILD_DIR/web/static" --port-file "$work/port" 2>"$work/bcd.log" &
bcd_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
base="http://127.0.0.1:$(cat "$work/port")"
token=$(python3 - "$secret" <<'PY'
import base64, hashlib, hmac, json, sys, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
s = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b(json.dumps({"container": "job_5", "exp": int(time.time()) + 3600}).encode())
print(s + "." + b(hmac.new(sys.argv[1].encode(), s.encode(), hashlib.sha256).digest()))
PY
)
end=$((1800000000 + seconds))

# wrk's latency distribution in ms: "50%" and "99%" lines; requests/s from its summary.
ms() { awk -v q="$1" '$1 == q { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.2f", v }' "$2"; }
measure() {  # name path [header]
  local name=$1 path=$2 header=${3:-} out="$work/$1.txt"
  local status
  status=$(curl -s -o "$work/$name.body" -w '%{http_code}' ${header:+-H "$header"} "$base$path")
  [ "$status" = 200 ] || { echo "bench web: $path answered $status: $(head -c 300 "$work/$name.body")" >&2; exit 1; }
  wrk -t2 -c"$conns" -d"${duration}s" --latency ${header:+-H "$header"} "$base$path" >"$out"
  grep -q "Socket errors" "$out" && echo "# $name: $(grep 'Socket errors' "$out")"
  local non2xx; non2xx=$(awk '/Non-2xx/ { print $NF }' "$out"); [ -z "$non2xx" ] || echo "# $name: $non2xx non-2xx answers"
  echo "BENCH web_${name}_rps $(awk '/^Requests\/sec/ { print $2 }' "$out") req/s"
  echo "BENCH web_${name}_p50 $(ms 50% "$out") ms"
  echo "BENCH web_${name}_p99 $(ms 99% "$out") ms"
  echo "BENCH web_${name}_body $(stat -c %s "$work/$name.body") bytes"
  eval "rps_$name=$(awk '/^Requests\/sec/ { print $2 }' "$out")"
  eval "p99_$name=$(ms 99% "$out")"
}
# Against the static-file baseline of this run: throughput (x of static) and p99 (x of static).
ratios() {  # name
  local rps p99
  eval "rps=\$rps_$1 p99=\$p99_$1"
  awk -v a="$rps" -v b="$rps_static" -v n="$1" 'BEGIN { printf "BENCH web_%s_rps_vs_static %.3f ratio\n", n, a / b }'
  awk -v a="$p99" -v b="$p99_static" -v n="$1" 'BEGIN { printf "BENCH web_%s_p99_vs_static %.3f ratio\n", n, a / b }'
}
gz="Accept-Encoding: gzip"
echo "# job: $procs processes x $seconds s; wrk: $conns connections, 2 threads, ${duration}s per endpoint; load: $(cut -d' ' -f1-3 /proc/loadavg)"
measure static "/static/index.html"
measure health "/api/v1/health"
# The job total over the whole job (auto resolution: seconds for its hour), all metrics.
measure series "/api/v1/jobs/job_5/series?token=$token" "$gz"
measure series_identity "/api/v1/jobs/job_5/series?token=$token"
# The last 10 minutes in seconds.
measure series_recent "/api/v1/jobs/job_5/series?from=$((end - 600))&token=$token" "$gz"
# Top 8 processes + other, as the CPU chart asks.
measure series_top8 "/api/v1/jobs/job_5/series?top=8&metric=cpu&token=$token" "$gz"
measure tree "/api/v1/jobs/job_5/tree?token=$token" "$gz"
for n in series series_identity series_recent series_top8 tree; do ratios "$n"; done
