#!/usr/bin/env bash
# One entry point for every benchmark suite.
#   ./bench/run.sh            lists the suites
#   ./bench/run.sh SUITE      runs one; figures are printed as "BENCH <name> <value> <unit>" lines
# Suites build what they need into build-bench/ (Release) unless BC_BUILD_DIR points at a build; the fuzz
# suite builds its own clang tree (build-fuzz/, or BC_FUZZ_BUILD_DIR).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suites=$(cd "$here/suites" && ls *.sh 2>/dev/null | sed 's/\.sh$//')
if [ $# -eq 0 ]; then
  echo "usage: ./bench/run.sh SUITE"
  echo "suites:"
  for s in $suites; do printf '  %-10s %s\n' "$s" "$(sed -n 's/^# summary: //p' "$here/suites/$s.sh")"; done
  exit 0
fi
suite=$1; shift
[ -f "$here/suites/$suite.sh" ] || { echo "bench: unknown suite '$suite' (known: $(echo $suites))" >&2; exit 2; }
export BC_SRC_DIR=$(cd "$here/.." && pwd)
export BC_BUILD_DIR=${BC_BUILD_DIR:-$BC_SRC_DIR/build-bench}
# A suite marked "# build: own" makes its own build tree (the fuzz suite's is clang's, with sanitizers).
if ! grep -q '^# build: own$' "$here/suites/$suite.sh"; then
  if [ ! -f "$BC_BUILD_DIR/CMakeCache.txt" ]; then
    cmake -S "$BC_SRC_DIR" -B "$BC_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$BC_BUILD_DIR" -j"$(nproc)" >/dev/null
fi
exec bash "$here/suites/$suite.sh" "$@"
