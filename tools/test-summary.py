#!/usr/bin/env python3
"""Prints the totals of a meson test run; the last line is `N passed, N failed`.

usage: test-summary.py [--logs] [--label TEXT] [BUILD]
  --logs: first the log of each test that failed (its command and the last 100 lines of its output)
  --label: a line of TEXT, in brackets, before the totals
"""
import argparse
import json
import os
import shlex
import sys

MAX_LINES = 100

ap = argparse.ArgumentParser()
ap.add_argument("--logs", action="store_true")
ap.add_argument("--label", default="")
ap.add_argument("build", nargs="?", default="build")
args = ap.parse_args()
path = f"{args.build}/meson-logs/testlog.json"
passed = failed = skipped = 0
failures = []
if not os.path.exists(path):
    print(f"no test results: {path} is missing (meson test did not run?)")
    if args.label:
        print(f"[{args.label}]")
    print("0 passed, 1 failed")
    sys.exit(0)
with open(path) as f:
    for line in f:
        r = json.loads(line)
        res = r["result"]
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append(r)
if args.logs and failures:
    for r in failures:
        out = (r.get("stdout") or "") + (r.get("stderr") or "")
        lines = out.rstrip("\n").split("\n")
        print(f"\n==== {r['name']}: {r['result']} (exit status {r.get('returncode')})")
        print(">>> " + shlex.join(r.get("command") or []))
        if len(lines) > MAX_LINES:
            print(f"(the last {MAX_LINES} of {len(lines)} lines; all of them in "
                  f"{args.build}/meson-logs/testlog.txt)")
        print("\n".join(lines[-MAX_LINES:]))
    print(f"\n==== failed: {' '.join(r['name'] for r in failures)}")
if args.label:
    print(f"[{args.label}]")
if skipped:
    print(f"{skipped} skipped")
print(f"{passed} passed, {failed} failed")
