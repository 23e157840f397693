#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks what includes what: the layers of docs/ARCHITECTURE.md, and that a device backend's
headers stay inside it.

Two rules, over every `#include "..."` that names a file of src/:
  1. layers: a file of src/ includes only headers of its own layer or of a lower one (LAYERS
     below, top to bottom; the order docs/ARCHITECTURE.md writes down);
  2. backends: a header of src/dev/<backend>/ is included only from src/dev/<backend>/ itself
     or from its tests (tests/dev/<backend>/). This one holds for tools/ and tests/ too.
ALLOWED lists today's known violations, each with its reason; a listed include that no longer
exists is an error too, so the list only ever shrinks.

Usage: include-check.py [--root DIR]   (exit 0: clean; 1: violations, one line each)
"""
import argparse
import os
import re
import sys

# Top to bottom. A file belongs to the first layer with a prefix of its path (relative to the
# root); more specific prefixes come first where layers share a folder.
LAYERS = [
    ("xe shim", ["src/xe/"]),  # libvmbind-xe.so: above the public API, which is all it calls
    ("uapi", ["src/uapi/"]),
    ("client", ["src/core/client."]),  # the client the entry points act for (calls in flight, close)
    ("exec", ["src/exec/"]),
    ("vm", ["src/vm/"]),
    ("mem", ["src/mem/"]),
    ("device backends", ["src/dev/soft/", "src/dev/cuda/"]),
    ("device core", ["src/dev/core.", "src/dev/registry."]),  # struct vmb_device and its device-independent parts
    ("sched", ["src/sched/"]),
    ("device interface", ["src/dev/device.h"]),
    ("sync", ["src/sync/"]),
    ("core", ["src/core/"]),
]

# (including file, included header): reason. Remove a line when its include goes.
ALLOWED = {
    ("tools/bench.c", "src/dev/soft/pt.h"):
        "`vmbind bench pt` measures the soft device's page tables directly, below any device op",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(rel.startswith(p) for p in prefixes):
            return i
    return None


def backend_of(rel):
    """The backend a path of src/dev/<backend>/ or tests/dev/<backend>/ belongs to, else None."""
    for top in ("src/dev/", "tests/dev/"):
        if rel.startswith(top):
            rest = rel[len(top):]
            if "/" in rest:
                return rest.split("/", 1)[0]
    return None


def sources(root):
    for top in ("src", "tools", "tests"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")


def check(root):
    errors, seen = [], set()
    for rel in sorted(sources(root)):
        with open(os.path.join(root, rel), errors="replace") as f:
            text = f.read()
        for m in INCLUDE.finditer(text):
            target = "src/" + m.group(1)
            if not os.path.isfile(os.path.join(root, target)):
                continue  # a header of the tests, the tools or the public API
            line = text.count("\n", 0, m.start()) + 1
            where = f"{rel}:{line}: includes {target}"
            key = (rel, target)
            hb = backend_of(target)
            problem = None
            if hb and backend_of(rel) != hb:
                problem = f"{where}: a header of device backend '{hb}' outside src/dev/{hb}/"
            elif rel.startswith("src/"):
                li, lt = layer_of(rel), layer_of(target)
                if li is None or lt is None:
                    problem = f"{where}: no layer for {rel if li is None else target} (LAYERS in {__file__})"
                elif lt < li:
                    problem = (f"{where}: layer '{LAYERS[li][0]}' includes the higher layer "
                               f"'{LAYERS[lt][0]}'")
            if problem:
                if key in ALLOWED:
                    seen.add(key)
                else:
                    errors.append(problem)
    for key in sorted(set(ALLOWED) - seen):
        errors.append(f"{key[0]}: allowed to include {key[1]}, but no longer does (or may now): "
                      f"remove its line from ALLOWED in tools/include-check.py")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = ap.parse_args()
    errors = check(args.root)
    for e in errors:
        print("include-check:", e)
    if errors:
        print(f"include-check: {len(errors)} violation(s); the layer order is in docs/ARCHITECTURE.md")
        return 1
    print(f"include-check: ok ({len(ALLOWED)} allowed exception(s) listed in tools/include-check.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
