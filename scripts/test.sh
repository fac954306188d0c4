#!/usr/bin/env bash
# Installs dependencies, builds with warnings as errors, and runs the whole CTest suite: unit tests and
# integration tests against a private Slurm cluster. Then an ASan+UBSan build runs the unit tests again.
#   ./scripts/test.sh            everything
#   BC_SKIP_SANITIZE=1 ./scripts/test.sh   skip the sanitizer pass (local iteration)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

./scripts/install-deps.sh

echo "== build (warnings are errors)"
cmake -S . -B build-test -DBC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j"$jobs"

echo "== tests"
ctest --test-dir build-test --output-on-failure --timeout 600

if [ "${BC_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan+UBSan build, unit tests"
  cmake -S . -B build-asan -DBC_WERROR=ON -DBC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L unit --output-on-failure --timeout 600
fi
