#!/usr/bin/env bash
# Installs every Debian package bubble-chamber builds, tests and benchmarks with. Idempotent: when all are
# present it does nothing (no apt-get update), so repeated quickstarts stay fast.
set -euo pipefail
packages=(
  build-essential cmake pkg-config g++ python3 libgtest-dev
  slurm-wlm slurmctld slurmd libslurm-dev munge libmunge-dev
  liblmdb-dev lmdb-utils libcjson-dev libcgroup-dev libmicrohttpd-dev libssl-dev libcurl4-openssl-dev
  libbpf-dev bpftool clang llvm libelf-dev zlib1g-dev
  libsqlite3-dev busybox-static docker.io libbpf-tools
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
