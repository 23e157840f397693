#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run one benchmark of two builds side by side in one run: a base revision and this tree.

    tools/bench-compare.py [options] BASE_REV -- bench bind [--quick]
    tools/bench-compare.py [options] --base-src DIR -- bench bind
    tools/bench-compare.py [options] --base-bin PATH -- bench bind
    tools/bench-compare.py --export-base BASE_REV [DIR]

The base: BASE_REV is extracted with `git archive` into build-compare/base-<sha>/ (a plain
copy, not a git worktree: nothing is added to the repository's own state, and a run killed
half-way leaves only that folder) and built there; or --base-src names such a copy made
earlier (by --export-base, for a machine whose copy of the tree has no .git); or --base-bin
names a vmbind binary built already. The new side: this tree, built into build-compare/new/
(or --new-bin). Both are built alike, with the project's default options as `make bench`
builds them (meson's defaults from meson.build: debugoptimized, assertions on), tests off (no
cmocka needed), the same compiler ($CC if set), plus any --meson-opt.

Then the two binaries run the benchmark (`vmbind ARGS --json`) alternately, --rounds times
each (default 3), the order swapped every round (base new, new base, ...) so that drift of
the machine hits both alike. For each figure of interest (binds/s, ops/s, p50 latencies, ns
per op, seconds; --keys REGEX picks others, --all shows every number) it prints the median of
each side, the min..max of each side's runs (the run-to-run spread), new/base, and a verdict:
"better" or "worse" only when the two sides' ranges do not overlap, else "~" (within noise);
"?" where the figure has no better direction (a ratio) or a side ran once. With 3 rounds that is a rough test:
read the spreads.

It prints the machine (CPU model, CPUs online and usable, kernel), the compiler and the two
revisions. --out DIR writes DIR/bench-compare.json (every run's JSON, the machine, the
summary; rewritten after each run, so a run cut off still leaves the runs before) and
DIR/bench-compare.txt (the report). A failing build or run stops the comparison
with its output's tail (exit 1); a usage error exits 2.

On a machine whose copy of the tree has no .git (the device machine), first here:
    tools/bench-compare.py --export-base BASE_REV        # -> build-compare/base-src/
and there, carrying build-compare/base-src:
    tools/bench-compare.py --base-src build-compare/base-src -- bench bind
(--export-base also records the revision of this tree's HEAD, and whether it has local
changes, for the report there.)
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "build-compare")  # ignored by .gitignore's /build*/
INFO = ".vmb-compare-info.json"             # what --export-base records beside the copy

# Figures of interest per benchmark, as regexes over the flattened keys (see flatten()).
DEFAULT_KEYS = {
    "bind": r"^(throughput(_vms)?\.(async|sync)_binds_per_s|throughput_vms\.ratio_vs_one_vm\..*"
            r"|latency\.sides\..*\.p50|latency\.signalled_p50_best_ns"
            r"|arrays\[ops=\d+\]\.(async|sync)\.ns_per_op)$",
    "pipeline": r"^(async_s|sync_s|sync_lookahead_s|floor_s|ratio|async_vs_floor|.*_median_us"
                r"|cases\[case=[a-z_]+\]\.(async|sync_lookahead|floor)_s"
                r"|cases\[case=[a-z_]+\]\.(async|sync_lookahead|floor)_(map|exec|unmap)_call_us)$",
    "va": r"^rows\[n=\d+\]\.(va_manager|vm_bind|kernel|kernel_munmap)\.(ops_per_s|latency_ns\.all\.p50)$",
    "pt": r"^cases\[leaves_allowed=[^\]]*\]\.(vm_bind_ns|pt_api_ns)\.[a-z_]+$",
    "handles": r"^rows\[n=\d+\]\.sides\.[a-z_]+\.ns_per_pair$",
}
FALLBACK_KEYS = r"(per_s|p50|_ns|ns_per_op|_us|_s)$"
# List members named by the first of these keys they hold, e.g. arrays[ops=1000].
LABEL_KEYS = ("name", "case", "leaves_allowed", "ops", "n", "size")


def die(msg, code=1):
    print("bench-compare: " + msg, file=sys.stderr)
    sys.exit(code)


def run(cmd, cwd=None, env=None, what=None):
    """Runs @cmd; on failure stops with the tail of its output."""
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if p.returncode:
        tail = "\n".join(p.stdout.splitlines()[-30:])
        die("%s failed (exit %d): %s\n%s" % (what or cmd[0], p.returncode, " ".join(cmd), tail))
    return p.stdout


def git(*args):
    """git's output in this tree, or None when git or the repository is not there."""
    if not shutil.which("git"):
        return None
    p = subprocess.run(["git", "-C", ROOT] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, universal_newlines=True)
    return p.stdout.strip() if p.returncode == 0 else None


def tree_rev():
    """This tree's HEAD and whether it has local changes, or None without git."""
    head = git("rev-parse", "HEAD")
    if not head:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return head + (" + local changes" if dirty else "")


def export_base(rev, dest):
    sha = git("rev-parse", "--verify", "--quiet", rev + "^{commit}")
    if not sha:
        die("%s: not a revision of %s (or no git here)" % (rev, ROOT), 2)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    archive = subprocess.Popen(["git", "-C", ROOT, "archive", "--format=tar", sha], stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout)
    archive.stdout.close()
    if archive.wait() or untar.returncode:
        die("git archive %s | tar -x -C %s failed" % (sha, dest))
    with open(os.path.join(dest, INFO), "w") as f:
        json.dump({"base": {"rev": rev, "sha": sha, "subject": (git("log", "-1", "--format=%s", sha) or "")[:60]},
                   "new_at_export": tree_rev()}, f)
    return sha


def tools():
    """The meson and ninja commands (the device machine has them as Python packages)."""
    env = dict(os.environ)
    meson = shutil.which("meson")
    meson = [meson] if meson else None
    if not meson:
        try:
            import mesonbuild.mesonmain  # noqa: F401
            meson = [sys.executable, "-m", "mesonbuild.mesonmain"]
        except ImportError:
            die("meson not found (neither a `meson` command nor Python's mesonbuild)")
    ninja = shutil.which("ninja") or shutil.which("samu")
    if not ninja:
        try:
            import ninja as ninja_mod
            ninja = os.path.join(ninja_mod.BIN_DIR, "ninja")
        except (ImportError, AttributeError):
            die("ninja not found")
    env["NINJA"] = ninja  # meson looks here first
    return meson, ninja, env


def build(src, builddir, meson_opts, label):
    """Builds tools/vmbind of the tree @src in @builddir; returns the binary's path."""
    meson, ninja, env = tools()
    if os.path.exists(builddir) and build_source(builddir) != os.path.realpath(src):
        shutil.rmtree(builddir)  # configured elsewhere (a tree copied from another machine)
    if not os.path.exists(os.path.join(builddir, "build.ninja")):
        opts = ["-Dtests=false"] + meson_opts
        p = subprocess.run(meson + ["setup", builddir] + opts, cwd=src, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        if p.returncode and "tests" in p.stdout:  # a tree from before the option
            opts = meson_opts
            p = subprocess.run(meson + ["setup", "--wipe", builddir] + opts, cwd=src, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if p.returncode:
            shutil.rmtree(builddir, ignore_errors=True)
            die("meson setup of the %s build failed:\n%s" % (label, "\n".join(p.stdout.splitlines()[-30:])))
    print("bench-compare: building the %s side in %s" % (label, os.path.relpath(builddir, ROOT)), file=sys.stderr)
    run([ninja, "-C", builddir, "tools/vmbind"], env=env, what="building the %s side" % label)
    return os.path.join(builddir, "tools", "vmbind")


def build_source(builddir):
    """The source tree a meson build dir was configured for, or None."""
    try:
        with open(os.path.join(builddir, "meson-info", "meson-info.json")) as f:
            return os.path.realpath(json.load(f)["directories"]["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_info(builddir):
    """buildtype, ndebug and the compiler of a meson build dir (from meson's intro files)."""
    info = {}
    try:
        with open(os.path.join(builddir, "meson-info", "intro-buildoptions.json")) as f:
            for o in json.load(f):
                if o["name"] in ("buildtype", "b_ndebug", "optimization", "debug"):
                    info[o["name"]] = o["value"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(builddir, "meson-logs", "meson-log.txt"), errors="replace") as f:
            for line in f:
                m = re.match(r"C compiler for the host machine: \S+ \((\S+ [^ \"]+)", line)
                if m:
                    info["cc"] = m.group(1)
                    break
    except OSError:
        pass
    return info


def machine():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    return {"cpu": model or platform.processor() or "unknown", "cpus_online": os.cpu_count(),
            "cpus_usable": usable, "kernel": platform.release(), "host": platform.node()}


def flatten(x, prefix="", out=None):
    """Numeric leaves of a JSON value as {dotted.key: value}; list members are named by a label
    key whose value tells them apart ([ops=1000]), else by their index; lists of plain numbers (per-round samples) and
    "goals" (derived) are left out."""
    if out is None:
        out = {}
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "goals":
                continue
            flatten(v, prefix + "." + k if prefix else k, out)
    elif isinstance(x, list):
        members = [e for e in x if isinstance(e, dict)]
        # the first label key that every member holds, with a different plain value in each
        label = next((k for k in LABEL_KEYS
                      if all(k in e and isinstance(e[k], (str, int, float)) for e in members)
                      and len(set(str(e[k]) for e in members)) == len(members)), None)
        for i, e in enumerate(members):
            flatten(e, "%s[%s]" % (prefix, "%s=%s" % (label, e[label]) if label else str(i)), out)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        out[prefix] = float(x)
    return out


def direction(key):
    """+1 when higher is better (a rate: per_s), -1 when lower is (a time: its own name or a parent's
    says ns, us, s, p50, p99 or per_op), 0 when neither (a ratio, a count)."""
    comps = re.sub(r"\[[^\]]*\]", "", key).split(".")
    if "ratio" in key:
        return 0
    if any(c.endswith("per_s") for c in comps):
        return 1
    if any(re.search(r"(^|_)(ns|us|s|p50|p99|per_op)$", c) for c in comps):
        return -1
    return 0


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e9:
        return "%.3gG" % (v / 1e9)
    if a >= 1e6:
        return "%.3gM" % (v / 1e6)
    if a >= 1e4:
        return "%.3gk" % (v / 1e3)
    if a >= 100:
        return "%.0f" % v
    return "%.3g" % v


def summarize(runs_base, runs_new, key_re, show_all):
    flat_b = [flatten(r) for r in runs_base]
    flat_n = [flatten(r) for r in runs_new]
    keys = []
    for f in flat_b + flat_n:
        for k in f:
            if k not in keys:
                keys.append(k)
    rows = []
    for k in keys:
        if not show_all and not re.search(key_re, k):
            continue
        b = [f[k] for f in flat_b if k in f]
        n = [f[k] for f in flat_n if k in f]
        row = {"key": k, "base": b, "new": n}
        row["base_median"] = statistics.median(b) if b else None
        row["new_median"] = statistics.median(n) if n else None
        row["ratio_new_base"] = (row["new_median"] / row["base_median"]
                                 if b and n and row["base_median"] else None)
        d = direction(k)
        if not b or not n:
            verdict = "only " + ("new" if n else "base")
        elif d == 0 or len(b) < 2 or len(n) < 2:
            verdict = "?"  # no better direction, or no spread to judge by
        elif min(n) > max(b):
            verdict = "better" if d > 0 else "worse"
        elif max(n) < min(b):
            verdict = "worse" if d > 0 else "better"
        else:
            verdict = "~"
        row["verdict"] = verdict
        rows.append(row)
    return rows


def spread(v):
    return "%s..%s" % (fmt(min(v)), fmt(max(v))) if v else "-"


def report(meta, rows):
    lines = []
    m = meta["machine"]
    lines.append("bench-compare: vmbind %s, %d round(s) per side, alternating (%s)" %
                 (" ".join(meta["args"]), meta["rounds"], meta["order"]))
    lines.append("machine: %s; %s CPUs online, %s usable; kernel %s" %
                 (m["cpu"], m["cpus_online"], m["cpus_usable"], m["kernel"]))
    for side in ("base", "new"):
        s = meta[side]
        b = s.get("build") or {}
        lines.append("%-4s: %s; %s" % (side, s["rev"], ", ".join("%s %s" % kv for kv in sorted(b.items())) or
                                        "prebuilt binary " + s["bin"]))
    env = meta.get("sched_workers_env")
    lines.append("VMB_SCHED_WORKERS: %s; seconds per run: base %s, new %s" %
                 (env if env is not None else "unset", spread(meta["base"]["run_s"]), spread(meta["new"]["run_s"])))
    lines.append("")
    w = max([len(r["key"]) for r in rows] + [6])
    lines.append("%-*s  %9s %-19s  %9s %-19s  %8s  %s" % (w, "figure", "base", "(min..max)", "new", "(min..max)",
                                                         "new/base", "verdict"))
    for r in rows:
        ratio = "%.3fx" % r["ratio_new_base"] if r["ratio_new_base"] is not None else "-"
        lines.append("%-*s  %9s %-19s  %9s %-19s  %8s  %s" % (w, r["key"], fmt(r["base_median"]),
                                                             "(" + spread(r["base"]) + ")", fmt(r["new_median"]),
                                                             "(" + spread(r["new"]) + ")", ratio, r["verdict"]))
    lines.append("")
    lines.append("medians of each side's runs; verdict better/worse only where the two sides' min..max do not "
                 "overlap, ~ where they do (noise), ? where the figure has no better direction or a side ran once.")
    return "\n".join(lines)


def save_json(out, doc):
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, ".bench-compare.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, os.path.join(out, "bench-compare.json"))


def main():
    argv = sys.argv[1:]
    bench_args = []
    if "--" in argv:
        i = argv.index("--")
        argv, bench_args = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(prog="tools/bench-compare.py",
                                 description="Run a vmbind benchmark of a base build and of this tree, alternately.",
                                 usage="%(prog)s [options] (BASE_REV | --base-src DIR | --base-bin PATH) -- bench NAME "
                                       "[--quick]\n       %(prog)s --export-base BASE_REV [DIR]")
    ap.add_argument("base_rev", nargs="?", help="the base revision (needs git)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side (default 3)")
    ap.add_argument("--base-src", metavar="DIR", help="a copy of the base's source tree (see --export-base)")
    ap.add_argument("--base-bin", metavar="PATH", help="a vmbind binary of the base, built already")
    ap.add_argument("--new-bin", metavar="PATH", help="a vmbind binary for the new side (default: build this tree)")
    ap.add_argument("--meson-opt", action="append", default=[], metavar="OPT",
                    help="an option for both builds' meson setup, e.g. -Dbuildtype=release (repeatable)")
    ap.add_argument("--keys", metavar="REGEX", help="the figures to show (a regex over the flattened JSON keys)")
    ap.add_argument("--all", action="store_true", help="show every number of the benchmark's JSON")
    ap.add_argument("--out", metavar="DIR", help="write bench-compare.json and bench-compare.txt there")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds one benchmark run may take (default 1800)")
    ap.add_argument("--export-base", nargs="+", metavar=("BASE_REV", "DIR"),
                    help="only copy BASE_REV's tree to DIR (default build-compare/base-src) and exit")
    a = ap.parse_args(argv)

    if a.export_base:
        if len(a.export_base) > 2:
            die("--export-base takes BASE_REV [DIR]", 2)
        dest = os.path.abspath(a.export_base[1] if len(a.export_base) > 1 else os.path.join(WORK, "base-src"))
        sha = export_base(a.export_base[0], dest)
        print("bench-compare: %s (%s) copied to %s" % (a.export_base[0], sha[:12], dest))
        print("  there: tools/bench-compare.py --base-src %s -- bench bind" % os.path.relpath(dest, ROOT))
        return 0

    if sum(x is not None for x in (a.base_rev, a.base_src, a.base_bin)) != 1:
        die("name the base once: BASE_REV, --base-src DIR or --base-bin PATH (see --help)", 2)
    if not bench_args or bench_args[0] != "bench" or len(bench_args) < 2:
        die("after --, the benchmark: bench va|pt|bind|pipeline [--quick]", 2)
    if a.rounds < 1:
        die("--rounds must be at least 1", 2)
    if "--json" not in bench_args:
        bench_args = bench_args + ["--json"]
    name = bench_args[1]
    key_re = a.keys or DEFAULT_KEYS.get(name, FALLBACK_KEYS)
    try:
        re.compile(key_re)
    except re.error as e:
        die("--keys: %s" % e, 2)

    meta = {"args": bench_args, "rounds": a.rounds, "order": "base new, new base, ...", "machine": machine(),
            "sched_workers_env": os.environ.get("VMB_SCHED_WORKERS"), "base": {}, "new": {}}

    # the base side
    if a.base_bin:
        base_bin = os.path.abspath(a.base_bin)
        meta["base"]["rev"] = "prebuilt " + base_bin
    else:
        if a.base_rev:
            sha = git("rev-parse", "--verify", "--quiet", a.base_rev + "^{commit}")
            if not sha:
                die("%s: not a revision of %s (or no git here: use --export-base where git is, then "
                    "--base-src, or --base-bin)" % (a.base_rev, ROOT), 2)
            src = os.path.join(WORK, "base-" + sha)
            if not os.path.exists(os.path.join(src, INFO)):  # not there, or a copy cut short
                export_base(a.base_rev, src)
        else:
            src = os.path.abspath(a.base_src)
            if not os.path.isfile(os.path.join(src, "meson.build")):
                die("--base-src %s: no meson.build there" % src, 2)
        try:
            with open(os.path.join(src, INFO)) as f:
                info = json.load(f)
        except (OSError, ValueError):
            info = {}
        b = info.get("base") or {}
        meta["base"]["rev"] = ("%s (%s: %s)" % (b.get("rev"), b.get("sha", "")[:12], (b.get("subject") or "")[:60])
                               if b else "source tree " + src)
        bdir = os.path.join(src, "build-compare")
        base_bin = build(src, bdir, a.meson_opt, "base")
        meta["base"]["build"] = build_info(bdir)
    # the new side
    if a.new_bin:
        new_bin = os.path.abspath(a.new_bin)
        meta["new"]["rev"] = "prebuilt " + new_bin
    else:
        rev = tree_rev()
        if not rev and a.base_src:
            try:
                with open(os.path.join(os.path.abspath(a.base_src), INFO)) as f:
                    at = json.load(f).get("new_at_export")
                if at:
                    rev = "%s (HEAD where the base was exported; no git here)" % at
            except (OSError, ValueError):
                pass
        meta["new"]["rev"] = "this tree " + ROOT + (", " + rev if rev else ", no git here")
        ndir = os.path.join(WORK, "new")
        new_bin = build(ROOT, ndir, a.meson_opt, "new")
        meta["new"]["build"] = build_info(ndir)
    for side, path in (("base", base_bin), ("new", new_bin)):
        if not os.access(path, os.X_OK):
            die("%s binary %s is not there or not executable" % (side, path))
        meta[side]["bin"] = path

    runs = {"base": [], "new": []}
    meta["base"]["run_s"], meta["new"]["run_s"] = [], []
    for k in range(a.rounds):
        for side in (("base", "new") if k % 2 == 0 else ("new", "base")):
            path = meta[side]["bin"]
            print("bench-compare: round %d/%d, %s: vmbind %s" % (k + 1, a.rounds, side, " ".join(bench_args)),
                  file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                p = subprocess.run([path] + bench_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   universal_newlines=True, timeout=a.timeout)
            except subprocess.TimeoutExpired:
                die("round %d, %s: the benchmark ran past --timeout %d s" % (k + 1, side, a.timeout))
            secs = time.monotonic() - t0
            if p.returncode:
                die("round %d, %s: the benchmark failed (exit %d):\n%s" %
                    (k + 1, side, p.returncode, "\n".join(p.stderr.splitlines()[-20:])))
            try:
                runs[side].append(json.loads(p.stdout))
            except ValueError:
                die("round %d, %s: the benchmark's output is not JSON:\n%s" % (k + 1, side, p.stdout[-2000:]))
            meta[side]["run_s"].append(round(secs, 3))
            if a.out:  # so far: a run cut off at a time limit still leaves these
                save_json(a.out, {"meta": meta, "keys": key_re, "partial": True, "runs": runs})

    rows = summarize(runs["base"], runs["new"], key_re, a.all)
    if not rows:
        die("no figure matches %r in the benchmark's JSON (try --all)" % key_re)
    text = report(meta, rows)
    print(text)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "bench-compare.txt"), "w") as f:
            f.write(text + "\n")
        save_json(a.out, {"meta": meta, "keys": key_re, "summary": rows, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
