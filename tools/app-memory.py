#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""src/uapi/ reaches the application's memory only through its copy helpers (src/uapi/copy.c).

Checks, on the source with comments and strings removed:
  1. no file of src/uapi/ but copy.c turns an integer into a pointer (a cast to a pointer type
     of a `(uintptr_t)` expression or of a struct field `x->f` / `x.f`): application pointers
     travel as u64 fields, and only copy.c makes them C pointers;
  2. every entry point defined in src/uapi/ is a VMB_ENTRY (whose argument struct is copied in
     and out), except those in OPEN_CODED, which copy what they read by hand;
  3. the VMB_ENTRY macro (src/uapi/uapi.h) copies its struct with vmb_copy_from_app and
     vmb_copy_to_app.
Usage: app-memory.py SRC_ROOT; prints each finding and exits 1 if there is one.
"""
import pathlib
import re
import sys

HELPERS = "copy.c"
# entry points written out in full, not with VMB_ENTRY: what they read of the application's
# memory is copied by hand (vmb_client_open: the device name and the options; *out is the
# library's own handle for the application, which a transport's client side keeps itself;
# vmb_client_close: nothing; vmb_backend_query: takes no client, its struct is copied in and out
# by hand)
OPEN_CODED = {"vmb_client_open", "vmb_client_close", "vmb_backend_query"}

INT_TO_PTR = re.compile(r"\(\s*(?:const\s+)?(?:struct\s+)?\w+(?:\s+const)?\s*\*+\s*\)\s*"
                        r"(?:\(\s*u?intptr_t\s*\)|\(?\s*\w+\s*(?:->|\.)\s*\w+)")
DEFN = re.compile(r"\bVMB_API\s+int\s+(\w+)\s*\(")


def strip(src):
    """C source without comments and string or character literals (lines kept)."""
    out = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
    out = re.sub(r"//[^\n]*", "", out)
    return re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', '""', out)


def check(root):
    probs = []
    uapi = pathlib.Path(root) / "src" / "uapi"
    for f in sorted(uapi.glob("*.[ch]")):
        code = strip(f.read_text())
        rel = f.relative_to(root)
        if f.name != HELPERS:
            for n, line in enumerate(code.splitlines(), 1):
                if INT_TO_PTR.search(line):
                    probs.append(f"{rel}:{n}: an integer made a pointer outside {HELPERS}: {line.strip()}")
        for m in DEFN.finditer(code):
            if f.suffix == ".c" and m.group(1) not in OPEN_CODED:
                n = code.count("\n", 0, m.start()) + 1
                probs.append(f"{rel}:{n}: entry point {m.group(1)} is not a VMB_ENTRY (its argument "
                             "struct would not be copied)")
    macro = re.search(r"#define VMB_ENTRY\(.*?\n(?:.*\\\n)*.*\n", strip((uapi / "uapi.h").read_text()))
    if not macro:
        probs.append("src/uapi/uapi.h: no VMB_ENTRY macro")
    else:
        for helper in ("vmb_copy_from_app", "vmb_copy_to_app"):
            if not re.search(rf"\b{helper}\s*\(", macro.group(0)):
                probs.append(f"src/uapi/uapi.h: VMB_ENTRY does not call {helper}")
    return probs


def selftest():
    bad = ["x = (struct vmb_engine *)(uintptr_t)q->engines;", "p = (const void *)args->binds;",
           "u = (uint64_t *)(uintptr_t)a;", "memcpy(d, (void *) args.data, 8);"]
    good = ["args->ptr = (uint64_t)(uintptr_t)p;", "n = (uint32_t)args->count;",
            "b = (uintptr_t)bo->cpu < (uintptr_t)x->cpu;"]
    return [f"selftest: missed {s}" for s in bad if not INT_TO_PTR.search(s)] + \
           [f"selftest: flagged {s}" for s in good if INT_TO_PTR.search(s)]


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    probs = selftest() + check(sys.argv[1])
    for p in probs:
        print(p)
    return 1 if probs else 0


if __name__ == "__main__":
    sys.exit(main())
