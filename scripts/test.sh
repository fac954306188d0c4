#!/usr/bin/env bash
# Installs dependencies, builds with warnings as errors, checks the code's form (scripts/lint.sh), and runs
# the whole CTest suite: unit tests and integration tests against a private Slurm cluster. Then an
# ASan+UBSan build runs the unit tests again, and a clang build runs every libFuzzer harness of tests/fuzz
# for a bounded time (CTest label fuzz).
#   ./scripts/test.sh            everything
#   BC_SKIP_SANITIZE=1 ./scripts/test.sh   skip the sanitizer pass (local iteration)
#   BC_SKIP_FUZZ=1 ./scripts/test.sh       skip the fuzzers; BC_FUZZ_SECONDS=N fuzzes each for N s (30)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

./scripts/install-deps.sh

echo "== build (warnings are errors)"
cmake -S . -B build-test -DBC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j"$jobs"

echo "== lint (clang-format, clang-tidy)"
./scripts/lint.sh build-test

echo "== tests"
ctest --test-dir build-test --output-on-failure --timeout 600

if [ "${BC_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan+UBSan build, unit tests"
  cmake -S . -B build-asan -DBC_WERROR=ON -DBC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L unit --output-on-failure --timeout 600
fi

if [ "${BC_SKIP_FUZZ:-0}" != 1 ]; then
  # Each harness over its checked-in corpus; any crash, UB, leak, timeout or out-of-memory fails its test,
  # and the input is kept in build-fuzz/tests/fuzz/findings/.
  echo "== fuzzers (clang, libFuzzer, ASan+UBSan), ${BC_FUZZ_SECONDS:-30} s each"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DBC_FUZZ=ON -DBC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBC_FUZZ_SECONDS="${BC_FUZZ_SECONDS:-30}" >/dev/null
  cmake --build build-fuzz --target fuzz -j"$jobs"
  ctest --test-dir build-fuzz -L fuzz --output-on-failure -j"$jobs"
fi
