#!/usr/bin/env bash
# The code's form, checked: clang-format (.clang-format) over every C and C++ file, and clang-tidy
# (.clang-tidy) over every translation unit of the product in a built tree. Exit 1 on any finding.
#   ./scripts/lint.sh BUILD_DIR      BUILD_DIR configured and built (compile_commands.json, BPF skeleton)
#   clang-format -i FILE             rewrites a file as the check wants it
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/lint.sh BUILD_DIR}
[ -f "$build/compile_commands.json" ] || { echo "lint: $build has no compile_commands.json (configure and build it first)" >&2; exit 2; }
for tool in clang-format clang-tidy; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is not installed (scripts/install-deps.sh)" >&2; exit 2; }
done

status=0
echo "lint: clang-format"
if ! git ls-files '*.c' '*.h' '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror; then
  echo "lint: the files above differ from .clang-format; clang-format -i FILE fixes them" >&2
  status=1
fi

# The product's translation units that this build compiles (the BPF side only where BPF is built).
units=$(python3 - "$build/compile_commands.json" <<'PY'
import json, os, sys
root = os.getcwd()
product = ("common/", "accounting_db/", "cgroup_monitor/", "docker_monitor/", "spank/", "sacct_ext/", "web/")
files = {os.path.relpath(e["file"], root) for e in json.load(open(sys.argv[1]))}
print("\n".join(sorted(f for f in files if f.startswith(product))))
PY
)
echo "lint: clang-tidy over $(wc -l <<<"$units") translation units"
if ! xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet <<<"$units" >"$build/clang-tidy.log" 2>&1; then
  grep -E "(error|warning):" "$build/clang-tidy.log" | sort -u >&2 || cat "$build/clang-tidy.log" >&2
  echo "lint: clang-tidy found the above (full log: $build/clang-tidy.log)" >&2
  status=1
fi
[ "$status" = 0 ] && echo "lint: clean"
exit $status
