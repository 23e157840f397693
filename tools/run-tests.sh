#!/bin/sh
# SPDX-License-Identifier: MIT
# The suite of one build directory, for `make test`, `make check-asan` and `make check-tsan`:
# meson test's line for each test as it finishes (so a long run shows its progress), then the
# log of each test that failed (its last 100 lines; all of it in DIR/meson-logs/testlog.txt),
# LABEL, and the totals: the last line is "N passed, N failed". All of it is also written to
# DIR/test-output.txt, for CI. Exit status: meson test's.
# usage: tools/run-tests.sh DIR LABEL [meson test options...]
set -u
d=$1
label=$2
shift 2
out=$d/test-output.txt
st=$d/test-status
rm -f "$st" "$d/meson-logs/testlog.json"
# a pipeline's status is its last command's (tee): meson test's goes through a file
{ meson test -C "$d" --num-processes 2 "$@" 2>&1; echo $? > "$st"; } | tee "$out"
status=$(cat "$st" 2>/dev/null) || status=1
python3 "$(dirname "$0")/test-summary.py" --logs --label "$label" "$d" 2>&1 | tee -a "$out"
exit "$status"
