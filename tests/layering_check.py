#!/usr/bin/env python3
"""The layers of README.md's drawing, checked against every #include of the product's sources.

Each component may include its own headers and those of the layers below it, never a layer above nor a
component beside it on its layer. Every project include names its folder from the top of the tree
("accounting_db/store.hpp"). Exit 1 with each offending line."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = [
    ["common"],
    ["accounting_db"],
    ["cgroup_monitor"],
    ["spank", "docker_monitor"],  # both start bc-monitor: they use cgroup_monitor's launch contract
    ["sacct_ext", "web"],
]
RANK = {component: rank for rank, layer in enumerate(LAYERS) for component in layer}
GENERATED = {"vmlinux.h", "bc_events.skel.h"}  # made in the build tree (cgroup_monitor/bpf)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources():
    for component in RANK:
        for folder, dirs, names in os.walk(os.path.join(ROOT, component)):
            dirs[:] = [d for d in dirs if d != "node_modules"]
            for name in sorted(names):
                if name.endswith((".c", ".cpp", ".h", ".hpp")):
                    yield os.path.relpath(os.path.join(folder, name), ROOT)


def main():
    problems = []
    checked = 0
    for path in sources():
        component = path.split("/")[0]
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m or m.group(1) in GENERATED:
                    continue
                checked += 1
                target = m.group(1)
                where = f"{path}:{number}: #include \"{target}\""
                if not os.path.isfile(os.path.join(ROOT, target)) or target.split("/")[0] not in RANK:
                    problems.append(f"{where}: not a path from the top of the tree to a component's header")
                    continue
                other = target.split("/")[0]
                if other != component and RANK[other] >= RANK[component]:
                    side = "above" if RANK[other] > RANK[component] else "beside"
                    problems.append(f"{where}: {component} includes {other}, a layer {side} it")
    for p in problems:
        print(p)
    print(f"layering: {checked} includes checked, {len(problems)} against the layers", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
