#!/bin/sh
# SPDX-License-Identifier: MIT
# The vmbind command line as a user meets it: --help and CMD --help (exit 0, stdout) name every
# command and option; a usage error (unknown command or option, an extra argument, a missing or
# malformed option value) exits 2 with a message on stderr that names the culprit; a --trace
# file that cannot be written fails before the demo starts, naming the path and the reason.
# usage: cli-test.sh PATH/TO/vmbind
set -u
VMBIND=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0
checks=0

fail() {
	echo "FAIL: $*"
	echo "--- stdout"; cat "$tmp/out"
	echo "--- stderr"; cat "$tmp/err"
	fails=$((fails + 1))
}

# run WANT_RC ARGS...: runs vmbind, checks its exit status
run() {
	want=$1
	shift
	checks=$((checks + 1))
	"$VMBIND" "$@" > "$tmp/out" 2> "$tmp/err"
	rc=$?
	what="vmbind $*"
	if [ "$rc" -ne "$want" ]; then
		fail "$what: exit $rc, want $want"
		return 1
	fi
	return 0
}

# has FILE(out|err) TEXT...: each TEXT occurs in the last run's stdout or stderr
has() {
	f=$1
	shift
	for t in "$@"; do
		grep -q -F -e "$t" "$tmp/$f" || fail "$what: '$t' not in std$f"
	done
}

# hasnt FILE TEXT
hasnt() {
	grep -q -F -e "$2" "$tmp/$1" && fail "$what: '$2' in std$1"
}

# empty FILE
empty() {
	[ -s "$tmp/$1" ] && fail "$what: std$1 not empty"
}

# --help: every command and option, on stdout
for h in --help -h help; do
	run 0 $h && {
		has out "info" "demo" "demo layout" "bench va" "bench pt" "bench bind" "bench pipeline" "bench handles" \
			"--trace" "--quick" "--steps" "--compute-us" "--pieces" "--json" "--help"
		empty err
	}
done

# info runs (nothing else does it)
run 0 info && { has out "device" "page sizes" "region"; empty err; }
# every capability the device reports has a name (a new VMB_CAP_* bit needs one in vmbind.c)
checks=$((checks + 1))
grep -q "capabilities.* bit[0-9]" "$tmp/out" && fail "vmbind info: a capability without a name: $(grep capabilities "$tmp/out")"

# each command's help lists its options
run 0 info --help && { has out "vmbind info"; empty err; }
run 0 demo --help && { has out "--trace" "--quick" "--steps" "--compute-us" "--pieces" "demo layout"; empty err; }
run 0 demo layout --help && { has out "vmbind demo layout"; empty err; }
run 0 bench --help && { has out "va" "pt" "bind" "pipeline" "handles" "--json" "--quick"; empty err; }
for b in va pt bind pipeline handles; do
	run 0 bench $b --help && { has out "vmbind bench $b" "--json" "--quick"; empty err; }
	run 0 help bench $b && has out "vmbind bench $b" "--json" "--quick"
done
run 0 bench pipeline --help && has out "--lookahead"
run 0 help demo && has out "--steps" "--compute-us" "--pieces"
run 0 help info && has out "vmbind info"

# usage errors: exit 2, stderr names what was wrong, nothing on stdout
run 2 && { has err "usage"; empty out; }
run 2 nosuchcmd && { has err "nosuchcmd"; empty out; }
run 2 --bogus && { has err "--bogus"; empty out; }
run 2 info extra && { has err "extra"; empty out; }
run 2 info --bogus && { has err "--bogus"; empty out; }
run 2 demo --bogus && { has err "--bogus"; empty out; }
run 2 demo extra && { has err "extra"; empty out; }
run 2 demo layout extra && { has err "extra"; empty out; }
run 2 demo --steps && { has err "--steps"; empty out; }
run 2 demo --steps abc && { has err "abc"; empty out; }
run 2 demo --steps 1 && { has err "--steps"; empty out; }
run 2 demo --pieces 3 && { has err "--pieces"; empty out; }
run 2 demo --compute-us -5 && { has err "--compute-us"; empty out; }
run 2 bench && { has err "usage"; empty out; }
run 2 bench nosuch && { has err "nosuch"; empty out; }
run 2 bench va extra && { has err "extra"; empty out; }
run 2 bench pt --bogus && { has err "--bogus"; empty out; }
run 2 bench pipeline --lookahead 9 && { has err "--lookahead"; empty out; }
run 2 bench pipeline --lookahead 0 && { has err "--lookahead"; empty out; }
run 2 bench bind --lookahead 2 && { has err "--lookahead"; empty out; }
run 2 help nosuchcmd && { has err "nosuchcmd"; empty out; }

# a --trace file that cannot be written: fails before the run, names the path and the reason
run 1 demo --quick --trace /nonexistent/dir/x && {
	has err "/nonexistent/dir/x" "No such file or directory"
	hasnt err "line"
	hasnt out "KV cache"
}
run 1 demo --quick --trace "$tmp" && {
	has err "$tmp" "Is a directory"
	hasnt out "KV cache"
}

# and one that can: the trace is written
# the layout tour needs the integrated shape: on the discrete one it says so (exit 1)
export VMB_SOFT_DISCRETE=1
run 1 demo layout && { has err "integrated shape" "VMB_SOFT_DISCRETE"; empty out; }
unset VMB_SOFT_DISCRETE
run 0 demo --steps 8 --trace "$tmp/trace.json" && {
	has out "$tmp/trace.json" "demo passed"
	grep -q traceEvents "$tmp/trace.json" || fail "$what: no trace written"
}

echo "$checks runs, $fails failures"
[ "$fails" -eq 0 ]
