#!/bin/bash
# SPDX-License-Identifier: MIT
# Every soft-device benchmark of issue 16 on this machine, in one go, for docs/PERFORMANCE.md:
# builds the default build type (as `make bench`, -Dtests=false) in build-bench/, then runs each
# bench twice (table; JSON beside it), `bench bind` also with 32 submitting threads, and
# records the machine. Outputs go to $OUT (default ./bench-out); a summary of every goal line is
# printed at the end. Usage, from the repository root: bash tools/bench-machine.sh [quick]
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"
B=build-bench
Q=""
[ "${1:-}" = quick ] && Q=--quick
T0=$(date +%s)
{ date -u; uname -a; nproc; grep -m1 'model name' /proc/cpuinfo; cc --version | head -1; git rev-parse HEAD 2>/dev/null; } > "$OUT/machine.txt"
cat "$OUT/machine.txt"
[ -f $B/build.ninja ] || meson setup $B -Dtests=false -Dxe_shim=disabled > "$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log"; exit 1; }
ninja -C $B > "$OUT/ninja.log" 2>&1 || { grep -E "error" -A3 "$OUT/ninja.log" | head -30; exit 1; }
echo "build: $(( $(date +%s) - T0 )) s"
run() { # name, then the bench's arguments
	local n=$1; shift
	for r in 1 2; do
		timeout 300 ./$B/tools/vmbind bench "$@" $Q > "$OUT/$n-$r.txt" 2> "$OUT/$n-$r.err"
		echo "$n run $r rc=$? ($(( $(date +%s) - T0 )) s)"
	done
	timeout 300 ./$B/tools/vmbind bench "$@" $Q --json > "$OUT/$n.json" 2> /dev/null
}
run va va
run pt pt
run bind bind
run bind32 bind --threads 32
run pipeline pipeline
run handles handles
run evict evict
echo "== goal lines"
grep -H -i 'goal' "$OUT"/*-1.txt "$OUT"/*-2.txt | sed "s|$OUT/||"
echo "total: $(( $(date +%s) - T0 )) s"
