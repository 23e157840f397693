#!/bin/sh
# Installs the Debian packages vmbind needs, only those missing. Used by `make demo` / `make test`.
set -eu
pkgs="gcc clang meson ninja-build pkg-config libcmocka-dev binutils make"
[ "${VMB_DEPS_EXTRA:-}" ] && pkgs="$pkgs $VMB_DEPS_EXTRA"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends $missing || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends $missing; }
