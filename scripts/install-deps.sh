#!/usr/bin/env bash
# Installs every Debian package bubble-chamber builds, tests and benchmarks with. Idempotent: when all are
# present it does nothing (no apt-get update), so repeated quickstarts stay fast.
set -euo pipefail
packages=(
  build-essential cmake pkg-config g++ python3 libgtest-dev
  slurm-wlm slurmctld slurmd libslurm-dev munge libmunge-dev
  liblmdb-dev lmdb-utils libcjson-dev libcgroup-dev libmicrohttpd-dev libssl-dev libcurl4-openssl-dev
  libbpf-dev bpftool clang llvm libelf-dev zlib1g-dev libclang-rt-14-dev clang-format clang-tidy
  libsqlite3-dev busybox-static docker.io libbpf-tools openssl
  chromium wrk strace iproute2 mariadb-server slurmdbd
)
# The web view's npm packages (uPlot, playwright-core) need node and npm; any node >= 18 will do.
command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
elif [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi

# web/: uPlot (copied into the served static dir by the build) and playwright-core (browser tests), exactly
# as package-lock.json pins them. Skipped when node_modules already matches the lock file.
web=$(cd "$(dirname "$0")/../web" && pwd)
if ! cmp -s "$web/package-lock.json" "$web/node_modules/.package-lock.json.installed" 2>/dev/null; then
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$web/package-lock.json" "$web/node_modules/.package-lock.json.installed"
  echo "install-deps: npm packages of web/ installed"
fi
