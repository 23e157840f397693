#!/usr/bin/env python3
"""Prints the totals of a meson test run; the last line is `N passed, N failed`."""
import json
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
passed = failed = skipped = 0
with open(f"{build}/meson-logs/testlog.json") as f:
    for line in f:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
if skipped:
    print(f"{skipped} skipped")
print(f"{passed} passed, {failed} failed")
