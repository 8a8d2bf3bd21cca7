#!/usr/bin/env python3
"""Module cycles inside one crate: `module-cycles.py SRC_DIR` prints each
top-level module's dependencies on its siblings (`crate::x`, `super::`
from a submodule) and exits 1 when any module is on a cycle. The crate
root (main.rs / lib.rs) and its binaries (bin/) are left out: every module may use what it
defines. Tests (`#[cfg(test)] mod tests`) are left out too."""

import os
import re
import sys


def graph(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.relpath(os.path.join(root, f), src)
            top = path.split("/")[0].removesuffix(".rs")
            if top in ("main", "lib", "bin"):
                continue
            text = open(os.path.join(src, path)).read()
            text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
            deps = set(re.findall(r"crate::(\w+)", text))
            for group in re.findall(r"use crate::\{([^}]*)\}", text, flags=re.S):
                deps.update(i.strip().split("::")[0] for i in group.split(",") if i.strip())
            if "/" in path and re.search(r"\bsuper::", text):
                deps.add(top)
            mods.setdefault(top, set()).update(d for d in deps if d[0].islower() and d not in ("self", top))
    return mods


def main():
    mods = graph(sys.argv[1] if len(sys.argv) > 1 else ".")
    for m in sorted(mods):
        print("%-16s -> %s" % (m, ", ".join(sorted(mods[m])) or "-"))

    def reach(a):
        seen, todo = set(), [a]
        while todo:
            for b in mods.get(todo.pop(), ()):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen

    cyclic = sorted(m for m in mods if m in reach(m))
    if cyclic:
        print("modules on a cycle:", ", ".join(cyclic))
        return 1
    print("no module cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
