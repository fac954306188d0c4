#!/usr/bin/env bash
# Runs one libFuzzer harness for a bounded time over its checked-in corpus, failing on any finding (crash,
# UB, leak, timeout, out of memory). New inputs go to a temporary directory, so the corpus is only read.
#   run_fuzzer.sh HARNESS CORPUS_DIR SECONDS FINDINGS_DIR [DICTIONARY]
# A finding is kept in FINDINGS_DIR/<harness>/ (replay it with: HARNESS FILE).
set -euo pipefail
harness=$1 corpus=$2 seconds=$3 findings=$4/$(basename "$1")
dict=()
[ $# -ge 5 ] && dict=(-dict="$5")
work=$(mktemp -d "${TMPDIR:-/tmp}/bc-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$findings"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
  -artifact_prefix="$findings/" "$work" "$corpus"
