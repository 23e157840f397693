#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Description: tools/include-check.py can fail, and says why.

On a copy of the real src/, tools/ and tests/: the copy as it is passes; then one planted
defect at a time must fail with a message naming the file and the rule: a lower layer that
includes a higher one (sync includes uapi), a file outside a backend that includes its header
(mem includes dev/soft), a test of another folder that includes a backend header, a new folder
of src/ in no layer, and an allowed exception that no longer exists (bench pt's include
of dev/soft/pt.h taken out).

Usage: include-check-test.py TOOL SOURCE_ROOT
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOOL, ROOT = sys.argv[1], sys.argv[2]
failures = []


def run(root):
    r = subprocess.run([sys.executable, TOOL, "--root", root], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def expect(name, got, rc, *patterns):
    code, out = got
    ok = code == rc and all(re.search(p, out) for p in patterns)
    print(f"{'ok' if ok else 'FAIL'}: {name} (exit {code})")
    if not ok:
        print("  want exit", rc, "and", patterns, "\n  output:\n   ", out.replace("\n", "\n    "))
        failures.append(name)


def fresh(d):
    tree = os.path.join(d, "tree")
    shutil.rmtree(tree, ignore_errors=True)
    for top in ("src", "tools", "tests"):
        shutil.copytree(os.path.join(ROOT, top), os.path.join(tree, top),
                        ignore=shutil.ignore_patterns("*.py", "corpus", "regressions"))
    return tree


def append(tree, rel, text):
    path = os.path.join(tree, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        f.write(text)


with tempfile.TemporaryDirectory() as d:
    expect("the tree as it is", run(fresh(d)), 0, r"include-check: ok")

    t = fresh(d)
    append(t, "src/sync/fence.c", '\n#include "uapi/uapi.h"\n')
    expect("lower layer includes a higher one", run(t), 1,
           r"src/sync/fence\.c:\d+: includes src/uapi/uapi\.h: layer 'sync' includes the higher layer 'uapi'")

    t = fresh(d)
    append(t, "src/mem/bo.c", '\n#include "dev/soft/region.h"\n')
    expect("backend header outside its backend", run(t), 1,
           r"src/mem/bo\.c:\d+: includes src/dev/soft/region\.h: a header of device backend 'soft' outside src/dev/soft/")

    t = fresh(d)
    append(t, "tests/vm/bind.c", '\n#include "dev/soft/pt.h"\n')
    expect("a test of the core includes a backend header", run(t), 1,
           r"tests/vm/bind\.c:\d+: includes src/dev/soft/pt\.h: a header of device backend 'soft'")

    t = fresh(d)
    append(t, "src/newdir/x.c", '#include "core/list.h"\n')
    expect("a folder of src/ in no layer", run(t), 1, r"src/newdir/x\.c:\d+: .*no layer for src/newdir/x\.c")

    t = fresh(d)
    p = os.path.join(t, "tools/bench.c")
    with open(p) as f:
        s = f.read()
    with open(p, "w") as f:
        f.write(s.replace('#include "dev/soft/pt.h"', ""))
    expect("an allowed exception that no longer exists", run(t), 1,
           r"tools/bench\.c: allowed to include src/dev/soft/pt\.h, but no longer does")

if failures:
    print("include-check self-test:", len(failures), "failed:", ", ".join(failures))
    sys.exit(1)
print("include-check self-test: all passed")
