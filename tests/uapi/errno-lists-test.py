#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Description: tools/errno-lists.py can fail, and says why.

Fixtures (written to a scratch folder): a consistent header/doc/symbol list, then one defect at
a time (an errno missing from the doc, one missing from the header, an exported symbol with no
list, an entry point without a doc row, a misspelt errno, words outside parentheses, two
Returns: clauses, a doc row for an entry point nobody declares), each of which must fail with a
message naming the entry point; the same for docs/ERRORS.md (--errors: an entry point without a
section, an errno missing from its section, one its header does not list); then the real tree
with one errno taken out of a copy of docs/UAPI.md and one taken out of a copy of
docs/ERRORS.md, and the C table the uAPI fuzzer is built with.

Usage: errno-lists-test.py TOOL SOURCE_ROOT
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOOL, ROOT = sys.argv[1], sys.argv[2]

HEADER = """/* Things. */
struct vmb_thing { int x; /* [in] */ };
/* Makes a thing. Returns: 0; -EINVAL (x, flags); -ENOMEM. A note -ENOSPC after the period. */
VMB_API int vmb_thing_create(struct vmb_client *c, struct vmb_thing *args);
/* Two calls, one comment. Returns: 0, -EINVAL (x), -ENOENT */
VMB_API int vmb_thing_a(struct vmb_client *c, struct vmb_thing *args);
VMB_API int vmb_thing_b(struct vmb_client *c,
			struct vmb_thing *args);
"""
DOC = """# doc
| call | errors |
| --- | --- |
| `vmb_thing_create` | -EINVAL (x, flags), -ENOMEM. Notes may name -EBUSY after the period |
| `vmb_thing_a` | -EINVAL, -ENOENT |
| `vmb_thing_b` | -ENOENT, -EINVAL (x (nested)) |
| `pad` non-zero | -EINVAL |
"""
SYM = "# symbols\nvmb_thing_create\nvmb_thing_a\nvmb_thing_b\n"
ERRORS = """# errors
## Every call
| errno | when |
| --- | --- |
| -EIO | fork |

## Things
### `vmb_thing_create`
| errno | when |
| --- | --- |
| -EINVAL | x |
| -ENOMEM | prepare |
| -ENOMEM | commit |

### `vmb_thing_a`, `vmb_thing_b`
| -EINVAL | x |
| -ENOENT | gone |

## Later
| -EBUSY | not an entry point's |
"""

failures = []


def run(d, header, doc, sym, extra=()):
    hp, dp, sp = (os.path.join(d, n) for n in ("thing.h", "UAPI.md", "vmbind.sym"))
    for p, t in ((hp, header), (dp, doc), (sp, sym)):
        with open(p, "w") as f:
            f.write(t)
    r = subprocess.run([sys.executable, TOOL, "--sym", sp, "--doc", dp, *extra, hp], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def expect(name, got, rc, *patterns):
    code, out = got
    ok = code == rc and all(re.search(p, out) for p in patterns)
    print(f"{'ok' if ok else 'FAIL'}: {name} (exit {code})")
    if not ok:
        print("  want exit", rc, "and", patterns, "\n  output:\n   ", out.replace("\n", "\n    "))
        failures.append(name)


with tempfile.TemporaryDirectory() as d:
    expect("consistent fixture", run(d, HEADER, DOC, SYM), 0, r"3 entry points, headers and docs agree")
    expect("errno missing from the doc",
           run(d, HEADER, DOC.replace("(x, flags), -ENOMEM", "(x, flags)"), SYM), 1,
           r"vmb_thing_create: -ENOMEM in .*thing\.h:4 but not in .*UAPI\.md:4")
    expect("errno missing from the header",
           run(d, HEADER.replace("-EINVAL (x), -ENOENT", "-EINVAL (x)"), DOC, SYM), 1,
           r"vmb_thing_a: -ENOENT in .*UAPI\.md:5 but not in .*thing\.h:6",
           r"vmb_thing_b: -ENOENT in .*UAPI\.md:6 but not in .*thing\.h:7")
    expect("exported symbol without a list",
           run(d, HEADER, DOC, SYM + "vmb_thing_gone\n"), 1,
           r"vmb_thing_gone: exported \(vmbind.sym\) but no header declares it",
           r"vmb_thing_gone: exported \(vmbind.sym\) but docs have no row for it")
    expect("declaration without a Returns: clause",
           run(d, HEADER.replace("Makes a thing. Returns:", "Makes a thing, returns"), DOC, SYM), 1,
           r"vmb_thing_create: its comment has 0 'Returns:' clauses",
           r"vmb_thing_create: exported \(vmbind.sym\) but no header has its Returns: list")
    expect("declaration without a comment",
           run(d, HEADER.replace("/* Two calls, one comment. Returns: 0, -EINVAL (x), -ENOENT */\n", "int x;\n"),
               DOC, SYM), 1, r"vmb_thing_a has no comment right above it")
    expect("entry point without a doc row",
           run(d, HEADER, DOC.replace("| `vmb_thing_a` | -EINVAL, -ENOENT |\n", ""), SYM), 1,
           r"vmb_thing_a: exported \(vmbind.sym\) but docs have no row for it")
    expect("two doc rows", run(d, HEADER, DOC + "| `vmb_thing_a` | -EINVAL, -ENOENT |\n", SYM), 1,
           r"vmb_thing_a has a second row")
    expect("misspelt errno", run(d, HEADER.replace("-ENOMEM.", "-ENOMEMORY."), DOC, SYM), 1,
           r"thing\.h:4: -ENOMEMORY is not an errno")
    expect("words outside parentheses", run(d, HEADER, DOC.replace("-EINVAL, -ENOENT |", "-EINVAL if bad, -ENOENT |"),
                                           SYM), 1, r"UAPI\.md:5: '-EINVAL if bad' in the errno list")
    expect("two Returns: clauses",
           run(d, HEADER.replace("-ENOMEM. A note", "-ENOMEM. Returns: 0. A note"), DOC, SYM), 1,
           r"vmb_thing_create: its comment has 2 'Returns:' clauses")
    expect("a row nobody declares", run(d, HEADER, DOC + "| `vmb_thing_old` | -EINVAL |\n", SYM), 1,
           r"a row for vmb_thing_old, which no header declares")
    expect("a list without 0", run(d, HEADER.replace("Returns: 0; -EINVAL (x, flags)", "Returns: -EINVAL (x, flags)"),
                                   DOC, SYM), 1, r"does not start with 0")

    def run_errors(errors, header=HEADER):
        ep = os.path.join(d, "ERRORS.md")
        with open(ep, "w") as f:
            f.write(errors)
        return run(d, header, DOC, SYM, ("--errors", ep))

    expect("consistent ERRORS.md", run_errors(ERRORS), 0, r"3 entry points, headers and docs agree \(ERRORS.md too\)")
    expect("an entry point without a section", run_errors(ERRORS.replace("`vmb_thing_a`, ", "")), 1,
           r"vmb_thing_a: exported \(vmbind.sym\) but ERRORS.md has no section for it")
    expect("an errno missing from its section", run_errors(ERRORS.replace("| -ENOENT | gone |\n", "")), 1,
           r"vmb_thing_a: -ENOENT in .*thing\.h:6 but not in .*ERRORS\.md:15",
           r"vmb_thing_b: -ENOENT in .*thing\.h:7 but not in .*ERRORS\.md:15")
    expect("an errno the header does not list", run_errors(ERRORS.replace("| -ENOENT | gone |", "| -ENOENT | gone |\n| -EXDEV | x |")),
           1, r"vmb_thing_a: -EXDEV in .*ERRORS\.md:15 but not in .*thing\.h:6")
    expect("a section nobody declares", run_errors(ERRORS + "### `vmb_thing_old`\n| -EINVAL | x |\n"), 1,
           r"a section for vmb_thing_old, which no header declares")

    # the real tree, with one errno taken out of a copy of docs/UAPI.md
    doc = open(os.path.join(ROOT, "docs", "UAPI.md")).read()
    row = re.search(r"^\| `vmb_syncobj_create` \|.*-ENOMEM.*$", doc, re.M)
    if not row:
        print("FAIL: docs/UAPI.md has no vmb_syncobj_create row with -ENOMEM")
        failures.append("real row")
    else:
        bad = doc.replace(row.group(0), row.group(0).replace(", -ENOMEM", ""))
        bp = os.path.join(d, "UAPI-bad.md")
        open(bp, "w").write(bad)
        headers = sorted(glob.glob(os.path.join(ROOT, "include", "vmbind", "*.h")))
        sym = os.path.join(ROOT, "src", "vmbind.sym")
        r = subprocess.run([sys.executable, TOOL, "--sym", sym, "--doc", bp, *headers], capture_output=True, text=True)
        expect("the real tree, -ENOMEM taken out of vmb_syncobj_create's row", (r.returncode, r.stdout), 1,
               r"vmb_syncobj_create: -ENOMEM in .*sync\.h:\d+ but not in .*UAPI-bad\.md:\d+",
               r"1 problem\(s\)")
        errors = open(os.path.join(ROOT, "docs", "ERRORS.md")).read()
        sec = re.search(r"^### `vmb_syncobj_create`\n(?:.*\n)*?\| -ENOMEM \|.*\n", errors, re.M)
        if not sec:
            print("FAIL: docs/ERRORS.md has no vmb_syncobj_create section with an -ENOMEM row")
            failures.append("real section")
        else:
            row = re.search(r"^\| -ENOMEM \|.*\n", sec.group(0), re.M).group(0)
            ep = os.path.join(d, "ERRORS-bad.md")
            open(ep, "w").write(errors.replace(sec.group(0), sec.group(0).replace(row, "")))
            docp = os.path.join(ROOT, "docs", "UAPI.md")
            r = subprocess.run([sys.executable, TOOL, "--sym", sym, "--doc", docp, "--errors", ep, *headers],
                               capture_output=True, text=True)
            expect("the real tree, -ENOMEM taken out of vmb_syncobj_create's section in ERRORS.md",
                   (r.returncode, r.stdout), 1,
                   r"vmb_syncobj_create: -ENOMEM in .*sync\.h:\d+ but not in .*ERRORS-bad\.md:\d+",
                   r"1 problem\(s\)")
        out = os.path.join(d, "errno-lists.h")
        r = subprocess.run([sys.executable, TOOL, "--emit-c", out, *headers], capture_output=True, text=True)
        text = open(out).read() if os.path.exists(out) else ""
        expect("the fuzzer's C table", (r.returncode, text), 0,
               r'\{"vmb_syncobj_create", \{-EINVAL, -ENOMEM\}\}',
               r'\{"vmb_vm_bind", \{-EINVAL, -ENOENT, -EFAULT, -EOPNOTSUPP, -EINTR, -EBUSY, -ENOSPC, -EAGAIN, -ENOMEM, -ENODEV, -EIO\}\}')
        # and the C table compiles
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc:
            c = os.path.join(d, "t.c")
            open(c, "w").write('#include "errno-lists.h"\nint main(void) { return vmb_errno_lists[0].errnos[0] >= 0; }\n')
            r = subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-I", d, c, "-o", os.path.join(d, "t")],
                               capture_output=True, text=True)
            expect("the C table compiles", (r.returncode, r.stdout + r.stderr), 0)

if failures:
    print(f"{len(failures)} case(s) failed")
    sys.exit(1)
print("all cases passed")
