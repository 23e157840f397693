#!/bin/bash
# SPDX-License-Identifier: MIT
# The CUDA device's checks on a GPU machine without cmocka (issue 15 items 1, 6, 7): builds the
# library and tools (-Dtests=false), the two plain test programs of tests/cuda/ by hand, then runs
# cuda-nodev, cuda-gpu, the probe and `vmbind bench cuda`. Outputs go to $OUT (default: ./gpu-out).
# Usage, from the repository root: bash tests/cuda/run-on-gpu.sh [tests]   (tests: no probe/bench)
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
B=build-gpu
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
T0=$(date +%s)
meson setup $B -Dtests=false -Dxe_shim=disabled > "$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log"; exit 1; }
grep -i "cuda.h" "$OUT/setup.log"
ninja -C $B > "$OUT/ninja.log" 2>&1 || { grep -E "error" -A3 "$OUT/ninja.log" | head -30; exit 1; }
for t in nodev gpu; do
	gcc -std=c11 -D_GNU_SOURCE -O2 -g -rdynamic -pthread -Wall -Iinclude -I/usr/local/cuda/include -Itests/cuda tests/cuda/$t.c \
		-L$B -lvmbind -ldl -Wl,-rpath,"$PWD/$B" -o $B/test-cuda-$t || echo "BUILD FAIL $t"
done
echo "build: $(( $(date +%s) - T0 )) s"
./$B/test-cuda-nodev > "$OUT/nodev.txt" 2>&1; echo "cuda-nodev rc=$?"; tail -2 "$OUT/nodev.txt"
# each case in a process of its own: a crash loses only its case
: > "$OUT/gpu.txt"; grc=0
for c in $(grep -o 'CASE(test_[a-z_]*)' tests/cuda/gpu.c | sed 's/CASE(\(.*\))/\1/'); do
	timeout 60 ./$B/test-cuda-gpu $c > "$OUT/gpu-$c.txt" 2>&1; r=$?
	[ $r = 0 ] || grc=$r
	grep -v "^GPU\|^-- \|failed$" "$OUT/gpu-$c.txt" | sed "s/^/[rc $r] /" >> "$OUT/gpu.txt"
	# a crash's frames in the library: file and line
	grep -o 'libvmbind.so[^(]*(+0x[0-9a-f]*)' "$OUT/gpu-$c.txt" | sed 's/.*(+\(0x[0-9a-f]*\))/\1/' |
		xargs -r addr2line -f -i -e $B/libvmbind.so 2>/dev/null | head -30 >> "$OUT/gpu.txt"
done
echo "cuda-gpu rc=$grc"; cat "$OUT/gpu.txt"
[ "${1:-}" = tests ] && exit 0
timeout 60 ./$B/tools/vmbind-cuda-probe > "$OUT/probe.txt" 2>&1; echo "probe rc=$?"; cat "$OUT/probe.txt"
timeout 300 ./$B/tools/vmbind bench cuda > "$OUT/bench.txt" 2> "$OUT/bench.err"; echo "bench rc=$?"
cat "$OUT/bench.txt"; tail -5 "$OUT/bench.err"
timeout 120 ./$B/tools/vmbind bench cuda --json > "$OUT/bench.json" 2> "$OUT/bench-json.err"; echo "bench --json rc=$?"
echo "total: $(( $(date +%s) - T0 )) s"
