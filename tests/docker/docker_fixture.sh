#!/usr/bin/env bash
# The Docker fixture of the docker-labelled tests (and bench/suites/docker.sh).
#   docker_fixture.sh setup WORK          install docker.io and busybox-static if missing, start dockerd if it is
#                                         not running (log: WORK/dockerd.log), import the bc-busybox:test image
#   docker_fixture.sh start-dockerd WORK  start dockerd in the background and wait for its API (also used by the
#                                         dockerd restart test after it killed dockerd)
#   docker_fixture.sh cleanup WORK        remove the test containers; stop dockerd if setup had to start it
# Needs root. Not root: exits 77 (skip) with the reason, or 1 when CI=true.
# dockerd uses its defaults: the socket /var/run/docker.sock and, on this cgroup v1 host, the cgroupfs driver.
set -euo pipefail
IMAGE=bc-busybox:test
action=${1:?usage: docker_fixture.sh setup|start-dockerd|cleanup WORK}
work=${2:?usage: docker_fixture.sh setup|start-dockerd|cleanup WORK}
mkdir -p "$work"

say() { echo "docker fixture: $*" >&2; }

need_root() {
  [ "$(id -u)" = 0 ] && return 0
  if [ "${CI:-}" = true ]; then
    say "FAIL: the docker tests need root (they install docker.io and start dockerd), and CI=true forbids skipping"
    exit 1
  fi
  say "##############################################################################"
  say "SKIPPED: the docker tests need root (they install docker.io and start dockerd)"
  say "##############################################################################"
  exit 77
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q "$@" >>"$work/apt.log" 2>&1; then
    say "apt-get install $* failed; running apt-get update first"
    apt-get update -q >>"$work/apt.log" 2>&1
    apt-get install -y -q "$@" >>"$work/apt.log" 2>&1 || { say "cannot install $* (see $work/apt.log)"; exit 1; }
  fi
}

docker_cli() {
  # Prefer the client of docker.io; any client negotiates the API version down to the daemon's.
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}

api_up() { "$(docker_cli)" info >/dev/null 2>&1; }

# A live (not zombie) process with this pid and name.
pid_alive() {
  local pid=$1 name=$2 state
  [ -r "/proc/$pid/stat" ] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo X)
  [ "$state" != Z ] && [ "$state" != X ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}
dockerd_pid_alive() { pid_alive "$1" dockerd; }

# A pid file left by a killed daemon. dockerd takes a pid that kill(pid, 0) accepts for alive, which a zombie
# not yet reaped is: it then refuses to start (docker.pid) or waits for a containerd that never answers
# (containerd.pid). Waits up to 10 s for the old process to go, then removes a file that names no live one.
clear_stale_pid_file() {
  local file=$1 name=$2 old
  [ -f "$file" ] || return 0
  old=$(cat "$file" 2>/dev/null || true)
  for _ in $(seq 100); do
    [ -n "$old" ] && [ -e "/proc/$old" ] || break
    pid_alive "$old" "$name" && return 1
    sleep 0.1
  done
  if [ -n "$old" ] && pid_alive "$old" "$name"; then return 1; fi
  rm -f "$file"
}

start_dockerd() {
  if api_up; then return 0; fi
  if clear_stale_pid_file /var/run/docker.pid dockerd; then
    # A containerd that outlived its dockerd is taken over by the new one; a dead one must not be waited for.
    clear_stale_pid_file /var/run/docker/containerd/containerd.pid containerd || true
    say "starting dockerd (log: $work/dockerd.log)"
    # Only stdin, stdout and stderr: dockerd would keep any other descriptor it inherits (a caller's flock,
    # ctest's log) for as long as it runs.
    ( for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -le 2 ] || eval "exec $fd>&-"; done
      exec setsid dockerd ) >>"$work/dockerd.log" 2>&1 </dev/null &
  else
    say "dockerd (pid $(cat /var/run/docker.pid)) is starting; waiting for its API"
  fi
  for _ in $(seq 600); do
    api_up && return 0
    sleep 0.1
  done
  say "dockerd did not answer within 60 s; last lines of $work/dockerd.log:"
  tail -20 "$work/dockerd.log" >&2
  exit 1
}

build_image() {
  local docker rootfs
  docker=$(docker_cli)
  if "$docker" image inspect "$IMAGE" >/dev/null 2>&1; then return 0; fi
  say "building $IMAGE from busybox-static (no registry needed)"
  rootfs=$work/rootfs
  rm -rf "$rootfs"
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
  chmod 1777 "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  chroot "$rootfs" /bin/busybox --install -s /bin
  tar -C "$rootfs" -c . | "$docker" import - "$IMAGE" >/dev/null
  rm -rf "$rootfs"
}

case $action in
  setup)
    need_root
    command -v dockerd >/dev/null 2>&1 || { say "installing docker.io"; apt_install docker.io; }
    dpkg -s busybox-static >/dev/null 2>&1 || { say "installing busybox-static"; apt_install busybox-static; }
    if api_up; then echo system >"$work/dockerd.owner"; else echo fixture >"$work/dockerd.owner"; fi
    start_dockerd
    build_image
    say "ready: $("$(docker_cli)" version --format 'dockerd {{.Server.Version}}, cgroup driver ' 2>/dev/null)$("$(docker_cli)" info --format '{{.CgroupDriver}} v{{.CgroupVersion}}' 2>/dev/null)"
    ;;
  start-dockerd)
    need_root
    start_dockerd
    ;;
  cleanup)
    [ "$(id -u)" = 0 ] || exit 0
    if api_up; then
      ids=$("$(docker_cli)" ps -aq --filter label=bc-test=1 || true)
      [ -z "$ids" ] || "$(docker_cli)" rm -f $ids >/dev/null 2>&1 || true
    fi
    # Only a dockerd that setup found stopped is stopped again (a test may have restarted it meanwhile).
    if [ "$(cat "$work/dockerd.owner" 2>/dev/null)" = fixture ]; then
      pid=$(cat /var/run/docker.pid 2>/dev/null || true)
      if [ -n "$pid" ] && dockerd_pid_alive "$pid"; then
        say "stopping the dockerd the fixture started (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 200); do dockerd_pid_alive "$pid" || break; sleep 0.1; done
      fi
      rm -f "$work/dockerd.owner"
    fi
    ;;
  *)
    echo "usage: docker_fixture.sh setup|start-dockerd|cleanup WORK" >&2
    exit 2
    ;;
esac
