#!/bin/sh
# Description: `meson install` puts the library, the headers, vmbind.pc and the CLI in place,
# and a program outside the tree builds against them with pkg-config and runs.
set -eu
build=$1
option() { # value of a meson option of the build
	meson introspect "$build" --buildoptions |
		python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]==sys.argv[1]][0])' "$1"
}
# a sanitized library needs the sanitizer runtime in every program: not what users install
if [ "$(option b_sanitize)" != none ]; then
	echo "sanitizer build: skipped"
	exit 77
fi
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
DESTDIR="$dest" meson install -C "$build" --no-rebuild --quiet >/dev/null
prefix=$(option prefix)
pc=$(find "$dest" -name vmbind.pc | head -n 1)
[ -n "$pc" ] || { echo "no vmbind.pc installed"; exit 1; }
[ -x "$dest$prefix/bin/vmbind" ] || { echo "no vmbind CLI installed"; exit 1; }
for h in vmbind.h vmbind/bind.h vmbind/sync.h vmbind/queue.h; do
	[ -f "$dest$prefix/include/$h" ] || { echo "header $h not installed"; exit 1; }
done
# pkg-config with the install relocated under DESTDIR
export PKG_CONFIG_PATH=$(dirname "$pc")
cflags=$(pkg-config --define-variable=prefix="$dest$prefix" --cflags vmbind)
libs=$(pkg-config --define-variable=prefix="$dest$prefix" --libs vmbind)
cat > "$dest/app.c" <<'APP'
#include <vmbind.h>
#include <stddef.h>
int main(void)
{
	struct vmb_client *c;
	struct vmb_vm_create vc = {0};
	if (vmb_client_open("soft", NULL, &c) || vmb_vm_create(c, &vc) || vc.vm_id == 0)
		return 1;
	return vmb_client_close(c);
}
APP
cc -std=c11 -Wall -Werror $cflags "$dest/app.c" $libs -o "$dest/app"
libdir=$(dirname "$(find "$dest" -name 'libvmbind.so' | head -n 1)")
LD_LIBRARY_PATH="$libdir" "$dest/app"
echo "installed: $(cd "$dest" && find . -type f | wc -l) files; an outside program built with pkg-config and ran"
