#!/bin/sh
# Description: the shared library exports exactly the symbols listed in src/vmbind.sym.
set -eu
lib=$1
list=$2
# (a coverage build links the gcov runtime, which exports its own: not ours; the linker lists
# the bounds of a named section, core/alloc.h's sites, in the dynamic table, but hidden)
got=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v -e '^__gcov' -e '^mangle_path$' \
	-e '^__start_vmb_alloc_sites$' -e '^__stop_vmb_alloc_sites$' | sort)
want=$(grep -v '^#' "$list" | sed '/^$/d' | sort)
if [ "$got" != "$want" ]; then
	echo "exported symbols differ from $list:"
	printf '%s\n' "$want" > /tmp/vmb-sym-want.$$
	printf '%s\n' "$got" > /tmp/vmb-sym-got.$$
	diff -u /tmp/vmb-sym-want.$$ /tmp/vmb-sym-got.$$ || true
	rm -f /tmp/vmb-sym-want.$$ /tmp/vmb-sym-got.$$
	exit 1
fi
echo "$(printf '%s\n' "$got" | wc -l) symbols, as listed"
