#!/bin/sh
# Fetch IGT's Xe test binaries and the DRM uAPI headers from Debian unstable into build-igt/,
# without touching the system (docs/XE.md). A private apt configuration (its own sources list
# naming the unstable suite of the Debian mirror the system's apt sources use, its own state and
# cache directories, an empty dpkg status) downloads igt-gpu-tools-tests with its whole closure
# and linux-libc-dev; each .deb is unpacked with dpkg-deb -x into build-igt/root, and
# drm/drm.h, drm/drm_mode.h, drm/xe_drm.h (and linux/bits.h, which the newer drm_mode.h includes)
# are copied to build-igt/include. Nothing is installed,
# nothing runs as another user. Cached: a second run with build-igt/root complete does nothing.
#
# Usage: tools/igt-fetch.sh [DIR]   (DIR: default build-igt)
# Exit: 0 when the tree is ready; 0 with one line "igt: SKIP ..." on stdout when the mirror
# cannot be reached (the caller decides what a skip means; build-igt/.skip then holds the
# reason); 1 on any other failure.
# Environment: VMB_IGT_MIRROR overrides the mirror (default: the system's Debian mirror),
# VMB_IGT_SUITE the suite (default: unstable).
set -u

dir=${1:-build-igt}
suite=${VMB_IGT_SUITE:-unstable}
root=$dir/root
inc=$dir/include
stamp=$dir/.fetched
loader=$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
pkgs="igt-gpu-tools-tests linux-libc-dev"

if [ -f "$stamp" ] && [ -x "$loader" ] && [ -f "$inc/drm/xe_drm.h" ] && [ -f "$inc/linux/bits.h" ]; then
	exit 0
fi

mkdir -p "$dir" || exit 1
dir=$(cd "$dir" && pwd)
root=$dir/root
inc=$dir/include
stamp=$dir/.fetched
loader=$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
rm -f "$dir/.skip"

skip() {
	echo "igt: SKIP ($*)"
	echo "$*" > "$dir/.skip"
	exit 0
}

for t in apt-get dpkg-deb; do
	command -v $t > /dev/null 2>&1 || skip "$t not found: not a Debian system"
done

# The mirror the system's apt sources name for Debian (deb822 URIs: lines or one-line sources).
mirror=${VMB_IGT_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
			2> /dev/null |
		sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}//p' |
		tr ' ' '\n' | grep -E '^https?://[^ ]*/debian/?$' | head -n 1)
fi
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
mirror=${mirror%/}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# The private apt configuration: nothing of the system's state, cache or sources.
apt=$dir/apt
mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/etc/apt.conf.d" \
	"$apt/etc/preferences.d" "$apt/etc/sources.list.d" || exit 1
: > "$apt/state/status"
if [ -f "$keyring" ]; then
	echo "deb [signed-by=$keyring] $mirror $suite main" > "$apt/etc/sources.list"
else
	echo "deb $mirror $suite main" > "$apt/etc/sources.list"
fi
me=$(id -un)
cat > "$apt/apt.conf" <<EOF
Dir::Etc "$apt/etc";
Dir::Etc::sourcelist "$apt/etc/sources.list";
Dir::Etc::sourceparts "$apt/etc/sources.list.d";
Dir::Etc::parts "$apt/etc/apt.conf.d";
Dir::Etc::preferencesparts "$apt/etc/preferences.d";
Dir::State "$apt/state";
Dir::State::status "$apt/state/status";
Dir::Cache "$apt/cache";
Dir::Log "$apt/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Install-Recommends "false";
APT::Sandbox::User "$me";
Acquire::Languages "none";
Acquire::Check-Valid-Until "false";
Acquire::Retries "1";
Acquire::http::Timeout "20";
Acquire::https::Timeout "20";
Debug::NoLocking "true";
EOF
export APT_CONFIG="$apt/apt.conf"

log=$dir/fetch.log
echo "igt: fetching $pkgs and their closure from $mirror $suite" >&2
# A network failure is a skip; any other failure (a bad signature, a broken index) an error.
net='Could not resolve|Failed to fetch|Unable to connect|Could not connect|Connection failed|timed out|Temporary failure|No route'
apt-get -q update > "$log" 2>&1
rc=$?
if grep -qE "$net" "$log"; then
	skip "$mirror $suite unreachable, see $log"
fi
if [ $rc -ne 0 ] || grep -q '^E:' "$log"; then
	echo "igt: apt-get update failed, see $log" >&2
	exit 1
fi
if ! apt-get -q -y --download-only install $pkgs >> "$log" 2>&1; then
	if grep -qE "$net" "$log"; then
		skip "downloads from $mirror failed, see $log"
	fi
	echo "igt: apt-get --download-only failed, see $log" >&2
	exit 1
fi

rm -rf "$root" "$inc"
mkdir -p "$root" "$inc/drm" || exit 1
n=0
for deb in "$apt"/cache/archives/*.deb; do
	dpkg-deb -x "$deb" "$root" || { echo "igt: dpkg-deb -x $deb failed" >&2; exit 1; }
	n=$((n + 1))
done
# drm_mode.h of newer kernels includes linux/bits.h, which bookworm's linux-libc-dev lacks.
mkdir -p "$inc/linux" || exit 1
for h in drm/drm.h drm/drm_mode.h drm/xe_drm.h linux/bits.h; do
	cp "$root/usr/include/$h" "$inc/$h" || { echo "igt: no $h in linux-libc-dev" >&2; exit 1; }
done
if [ ! -x "$loader" ]; then
	echo "igt: no loader at $loader" >&2
	exit 1
fi
ver=$(ls "$apt"/cache/archives/igt-gpu-tools-tests_*.deb | sed 's/.*igt-gpu-tools-tests_\([^_]*\)_.*/\1/')
echo "$ver" > "$dir/version"
echo "igt: $n packages unpacked into $root (igt-gpu-tools-tests $ver)" >&2
touch "$stamp"
exit 0
