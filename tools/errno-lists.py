#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The errno list of every entry point, in its public header and in docs/UAPI.md: one list each.

Format (docs/UAPI.md and CONTRIBUTING.md say it in one sentence):
  - header: the comment right above an entry point's VMB_API declaration (or above a run of
    declarations that share it) holds one "Returns:" clause: 0 and each negative errno the call
    can return, separated by commas or semicolons, each optionally followed by a reason in
    parentheses, ended by a period (outside parentheses) or by the end of the comment;
  - docs/UAPI.md: each entry point has one table row whose first cell is its name in backquotes
    (`vmb_x_y`) and whose second cell lists the same errnos in the same form (0 may be left out).

  - docs/ERRORS.md (with --errors): each entry point has one section, a heading that names it in
    backquotes (`### \`vmb_x_y\``; one heading may name several that share their errnos), and
    in it a table whose rows start with an errno (`| -EXXX | when | state left | what to do |`,
    an errno may have several rows); the section's errnos are exactly the header's list. Rows
    outside such sections (the errors every call shares, the asynchronous ones) are not checked.

Usage:
  errno-lists.py --sym src/vmbind.sym --doc docs/UAPI.md [--errors docs/ERRORS.md] include/vmbind/*.h
      checks: every exported symbol has a list in a header and a row in the doc (and a section
      in ERRORS.md), the lists agree, nothing else is listed; prints each difference and exits
      1 if there is one.
  errno-lists.py --emit-c OUT.h include/vmbind/*.h
      writes the headers' lists as a C table (the uAPI fuzzer's), after checking their form.
"""
import argparse
import errno as errno_mod
import re
import sys

KNOWN = {n for n in dir(errno_mod) if re.match(r"^E[A-Z0-9]+$", n)}  # aliases too (EOPNOTSUPP)
ERRNO = re.compile(r"^-(E[A-Z0-9]+)$")


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, msg):
        self.items.append(f"{where}: {msg}")


def parse_list(text, where, probs, need_zero):
    """The errnos of one list (text starts right after "Returns:" or at the table cell)."""
    top, depth, i = [], 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                probs.add(where, "unbalanced ')' in the errno list")
                return None
        elif depth == 0:
            if ch == "." and (i + 1 == len(text) or text[i + 1].isspace()):
                break
            top.append(ch)
        i += 1
    if depth:
        probs.add(where, "unclosed '(' in the errno list")
        return None
    items = [t.strip() for t in re.split(r"[,;]|\bor\b", "".join(top))]
    items = [t for t in items if t]
    out, zero = [], False
    for t in items:
        if t == "0":
            zero = True
            continue
        m = ERRNO.match(t)
        if not m:
            probs.add(where, f"'{t}' in the errno list is neither 0 nor -E...: put reasons in parentheses")
            return None
        name = m.group(1)
        if name not in KNOWN:
            probs.add(where, f"-{name} is not an errno")
            return None
        if name in out:
            probs.add(where, f"-{name} is listed twice")
        out.append(name)
    if need_zero and not zero:
        probs.add(where, "the Returns: list does not start with 0")
    if not out and not zero:
        probs.add(where, "empty errno list")
        return None
    return out


COMMENT = re.compile(r"/\*(.*?)\*/", re.S)
DECL = re.compile(r"\bVMB_API\s+int\s+(vmb_\w+)\s*\(")


def comment_text(raw):
    lines = []
    for ln in raw.split("\n"):
        lines.append(re.sub(r"^\s*\*(?!/)\s?", "", ln).strip())
    return " ".join(lines)


def parse_headers(paths, probs, declared):
    lists = {}  # name -> (errnos, where)
    for path in paths:
        src = open(path, encoding="utf-8").read()
        comments = [(m.start(), m.end(), m.group(1)) for m in COMMENT.finditer(src)]
        for d in DECL.finditer(src):
            name, line = d.group(1), src.count("\n", 0, d.start()) + 1
            declared.add(name)
            where = f"{path}:{line}"
            before = [c for c in comments if c[1] <= d.start()]
            attached = None
            if before:
                c = before[-1]
                gap = re.sub(r"VMB_API[^;]*;", "", src[c[1]:d.start()])
                if not gap.strip():
                    attached = c
            if attached is None:
                probs.add(where, f"{name} has no comment right above it (with its Returns: list)")
                continue
            text = comment_text(attached[2])
            n = len(re.findall(r"\bReturns:", text))
            if n != 1:
                probs.add(where, f"{name}: its comment has {n} 'Returns:' clauses, not one")
                continue
            lst = parse_list(text.split("Returns:", 1)[1], where, probs, need_zero=True)
            if lst is None:
                continue
            if name in lists:
                probs.add(where, f"{name} declared twice (also {lists[name][1]})")
            lists[name] = (lst, where)
    return lists


ROW = re.compile(r"^\|\s*`(vmb_\w+)`\s*\|(.*)$")


def parse_doc(path, probs):
    rows = {}
    for no, ln in enumerate(open(path, encoding="utf-8"), 1):
        m = ROW.match(ln.rstrip("\n"))
        if not m:
            continue
        name, rest = m.group(1), m.group(2)
        cell = rest.split("|")[0]
        where = f"{path}:{no}"
        lst = parse_list(cell, where, probs, need_zero=False)
        if lst is None:
            continue
        if name in rows:
            probs.add(where, f"{name} has a second row (also {rows[name][1]})")
        rows[name] = (lst, where)
    return rows


HEADING = re.compile(r"^(#+)\s+(.*)$")
ERRNO_ROW = re.compile(r"^\|\s*-(E[A-Z0-9]+)\s*\|")


def parse_errors(path, probs):
    """docs/ERRORS.md: entry point -> (set of errnos of its section's rows, where)."""
    secs = {}
    cur, cur_level = [], 0
    for no, ln in enumerate(open(path, encoding="utf-8"), 1):
        ln = ln.rstrip("\n")
        h = HEADING.match(ln)
        if h:
            level, names = len(h.group(1)), re.findall(r"`(vmb_\w+)`", h.group(2))
            if names:
                cur, cur_level = [], level
                for n in names:
                    if n in secs:
                        probs.add(f"{path}:{no}", f"{n} has a second section (also {secs[n][1]})")
                    secs[n] = (set(), f"{path}:{no}")
                    cur.append(n)
            elif level <= cur_level:
                cur, cur_level = [], 0
            continue
        m = ERRNO_ROW.match(ln)
        if m and cur:
            if m.group(1) not in KNOWN:
                probs.add(f"{path}:{no}", f"-{m.group(1)} is not an errno")
            for n in cur:
                secs[n][0].add(m.group(1))
    return secs


def check_errors(headers, declared, errors, syms, probs):
    for s in syms:
        if s not in errors:
            probs.add(s, "exported (vmbind.sym) but ERRORS.md has no section for it")
    for name, (lst, where) in sorted(headers.items()):
        if name not in errors:
            continue
        got, ewhere = errors[name]
        for e in lst:
            if e not in got:
                probs.add(name, f"-{e} in {where} but not in {ewhere}")
        for e in sorted(got):
            if e not in lst:
                probs.add(name, f"-{e} in {ewhere} but not in {where}")
    for name, (_, where) in sorted(errors.items()):
        if name not in declared:
            probs.add(where, f"a section for {name}, which no header declares")


def parse_sym(path):
    out = []
    for ln in open(path, encoding="utf-8"):
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            out.append(ln)
    return out


def check(headers, declared, doc, syms, probs):
    for s in syms:
        if s not in declared:
            probs.add(s, "exported (vmbind.sym) but no header declares it")
        elif s not in headers:
            probs.add(s, "exported (vmbind.sym) but no header has its Returns: list")
        if s not in doc:
            probs.add(s, "exported (vmbind.sym) but docs have no row for it")
    for name, (lst, where) in sorted(headers.items()):
        if name not in syms:
            probs.add(where, f"{name} is declared VMB_API but not exported (vmbind.sym)")
        if name not in doc:
            continue
        dl, dwhere = doc[name]
        for e in lst:
            if e not in dl:
                probs.add(name, f"-{e} in {where} but not in {dwhere}")
        for e in dl:
            if e not in lst:
                probs.add(name, f"-{e} in {dwhere} but not in {where}")
    for name, (_, where) in sorted(doc.items()):
        if name not in declared:
            probs.add(where, f"a row for {name}, which no header declares")


def emit_c(headers, out):
    width = max(len(lst) for lst, _ in headers.values()) + 1
    with open(out, "w", encoding="utf-8") as f:
        f.write("/* Generated by tools/errno-lists.py from the Returns: lists of include/vmbind/: do not edit. */\n")
        f.write("#ifndef VMB_ERRNO_LISTS_H\n#define VMB_ERRNO_LISTS_H\n#include <errno.h>\n\n")
        f.write("/* The errnos each entry point documents (besides 0), 0-terminated. */\n")
        f.write(f"struct vmb_errno_list {{\n\tconst char *name;\n\tint errnos[{width}];\n}};\n\n")
        f.write("static const struct vmb_errno_list vmb_errno_lists[] = {\n")
        for name in sorted(headers):
            lst = headers[name][0]
            f.write(f'\t{{"{name}", {{{", ".join("-" + e for e in lst)}}}}},\n')
        f.write("};\n\n#endif\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sym", help="the exported symbols (src/vmbind.sym)")
    ap.add_argument("--doc", help="docs/UAPI.md")
    ap.add_argument("--errors", help="docs/ERRORS.md: also check its sections against the headers")
    ap.add_argument("--emit-c", help="write the headers' lists as a C table")
    ap.add_argument("headers", nargs="+")
    a = ap.parse_args()
    probs = Problems()
    declared = set()
    headers = parse_headers(a.headers, probs, declared)
    if a.emit_c:
        if not probs.items:
            emit_c(headers, a.emit_c)
    else:
        if not a.sym or not a.doc:
            ap.error("--sym and --doc are needed to check")
        syms = parse_sym(a.sym)
        check(headers, declared, parse_doc(a.doc, probs), syms, probs)
        if a.errors:
            check_errors(headers, declared, parse_errors(a.errors, probs), syms, probs)
    for p in probs.items:
        print(p)
    if probs.items:
        print(f"errno lists: {len(probs.items)} problem(s); the format is in tools/errno-lists.py")
        return 1
    if not a.emit_c:
        print(f"errno lists: {len(headers)} entry points, headers and docs agree"
              + (" (ERRORS.md too)" if a.errors else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
