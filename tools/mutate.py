#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Mutation testing: does the suite fail when the code is wrong?

Each mutant of tests/mutate/mutants.txt is one single-line change a developer could plausibly
make (off by one, < for <=, a dropped check, a wrong errno, swapped arguments or order...). For
each, this script applies the change to a scratch copy of the tree, rebuilds it and runs the
whole suite (`meson test`). A mutant is

  killed      some test failed or timed out (a hang counts: it was detected), and failed again
              when run alone (up to twice): a test that a loaded machine fails once is not a kill
              (noted as flaky; the suite then runs once more);
  SURVIVED    every test passed: the suite cannot see that fault;
  not viable  the mutated tree did not build (reported apart, counts neither way);
  error       its snippet is not found exactly once, or the suite could not run.

The working tree is never written: the copy lives in build-mutate/src (the files `git ls-files`
lists, tracked and untracked-but-not-ignored, brought up to date with the working tree at every
start), its build in build-mutate/build (configured once), logs in build-mutate/logs/. The
mutated file is restored after each mutant, also when the script is interrupted (and a copy left
mutated by a killed run is put right by the next start's sync).

Kill rate = killed / (killed + survived). Exit status: 0 if it is at least MUTATE_MIN percent
(default 95) and no mutant was an error or not viable; 1 otherwise; 2 on a usage error or a
broken baseline (the unmutated suite must pass first).

Usage: tools/mutate.py [--list] [--check] [--show] [--only ID,ID...] [--mutants FILE]
Environment: MUTANTS (same as --only), MUTATE_MIN (95), MUTATE_TIMEOUT (seconds per mutant's
suite run, 300), MUTATE_TIMEOUT_MULT (meson's --timeout-multiplier, 0.25: the per-test limits of
tests/meson.build shrink to catch a hang sooner), MUTATE_MAXFAIL (meson's --maxfail, 1: stop at
the first failing test; 0 runs the whole suite and names every test that kills), MUTATE_JOBS (2).
Python 3 standard library only.
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST = os.path.join(ROOT, "tests", "mutate", "mutants.txt")
WORK = os.path.join(ROOT, "build-mutate")
COPY = os.path.join(WORK, "src")
BUILD = os.path.join(WORK, "build")
LOGS = os.path.join(WORK, "logs")
KEYS = {"file", "context", "within", "find", "replace", "why"}
IDENT = re.compile(r"[A-Za-z0-9_]")


class MutantError(Exception):
    pass


def env_num(name, default, kind=float):
    v = os.environ.get(name, "")
    try:
        return kind(v) if v else default
    except ValueError:
        sys.exit(f"mutate: {name}={v!r} is not a number")


# ---- the mutant list --------------------------------------------------------------------------

def load_mutants(path):
    mutants, cur = [], None
    with open(path, encoding="utf-8") as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]\s*", line)
            if m:
                cur = {"id": m.group(1), "lineno": no}
                mutants.append(cur)
                continue
            m = re.fullmatch(r"([a-z]+):(.*)", line)
            if not m or cur is None or m.group(1) not in KEYS:
                raise SystemExit(f"{path}:{no}: expected [id] or one of {sorted(KEYS)}: {line!r}")
            if m.group(1) in cur:
                raise SystemExit(f"{path}:{no}: {m.group(1)} given twice for {cur['id']}")
            cur[m.group(1)] = m.group(2).strip()
    seen = set()
    for mu in mutants:
        where = f"{path}:{mu['lineno']}: mutant {mu['id']}"
        if mu["id"] in seen:
            raise SystemExit(f"{where}: id used twice")
        seen.add(mu["id"])
        for k in ("file", "find", "replace", "why"):
            if k not in mu:
                raise SystemExit(f"{where}: no {k}:")
        if not mu["find"]:
            raise SystemExit(f"{where}: empty find:")
        if mu["find"] == mu["replace"]:
            raise SystemExit(f"{where}: replace: is the same as find:")
        mu["within"] = int(mu.get("within") or 60)
    return mutants


def occurrences(line, snippet):
    """Offsets of @snippet in @line at token boundaries (`v &= m` is not found in `value &= m`)."""
    out, i = [], line.find(snippet)
    while i >= 0:
        before_ok = not (IDENT.match(snippet[0]) and i > 0 and IDENT.match(line[i - 1]))
        j = i + len(snippet)
        after_ok = not (IDENT.match(snippet[-1]) and j < len(line) and IDENT.match(line[j]))
        if before_ok and after_ok:
            out.append(i)
        i = line.find(snippet, i + 1)
    return out


def locate(mu, text):
    """(line index, offset) of the one place @mu changes in @text, else MutantError."""
    lines = text.split("\n")
    first, last = 0, len(lines)
    if "context" in mu:
        ctx = [i for i, l in enumerate(lines) if occurrences(l, mu["context"])]
        if len(ctx) != 1:
            raise MutantError(f"context {mu['context']!r} found {len(ctx)} times in {mu['file']} (want 1)")
        first, last = ctx[0], min(len(lines), ctx[0] + mu["within"] + 1)
    hits = [(i, o) for i in range(first, last) for o in occurrences(lines[i], mu["find"])]
    if len(hits) != 1:
        where = f"within {mu['within']} lines of the context" if "context" in mu else "in the file"
        raise MutantError(f"{mu['find']!r} found {len(hits)} times {where} {mu['file']} (want 1)")
    return hits[0]


def mutate_text(mu, text):
    """The mutated text and the 1-based number of the changed line."""
    i, o = locate(mu, text)
    lines = text.split("\n")
    line = lines[i]
    new = line[:o] + mu["replace"] + line[o + len(mu["find"]):]
    # a dropped statement leaves an empty one: it may be the body of an if
    lines[i] = new if new.strip() else line[:len(line) - len(line.lstrip())] + ";"
    return "\n".join(lines), i + 1


# ---- the scratch tree --------------------------------------------------------------------------

def git_files():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout.decode()
    return sorted({p for p in out.split("\0") if p and os.path.isfile(os.path.join(ROOT, p))})


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def sync_copy():
    """Make build-mutate/src hold exactly the working tree's files; rewrite only what differs
    (the build then recompiles only that)."""
    files = git_files()
    changed = 0
    for p in files:
        src, dst = os.path.join(ROOT, p), os.path.join(COPY, p)
        data = read(src)
        if not os.path.exists(dst) or read(dst) != data:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            write(dst, data)
            changed += 1
        shutil.copymode(src, dst)
    keep = set(files)
    for d, _, names in os.walk(COPY):
        for n in names:
            rel = os.path.relpath(os.path.join(d, n), COPY)
            if rel not in keep:
                os.unlink(os.path.join(d, n))
                changed += 1
    return changed


def run_logged(cmd, log, timeout=None):
    """Runs @cmd in its own process group, output to @log; (returncode, timed_out)."""
    with open(log, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return p.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            return None, True
        except BaseException:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise


def build(log, jobs):
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        rc, _ = run_logged(["meson", "setup", BUILD, COPY], log + ".setup")
        if rc != 0:
            raise SystemExit(f"mutate: meson setup failed, see {log}.setup")
    rc, _ = run_logged(["ninja", "-C", BUILD, "-j", str(jobs)], log)
    return rc == 0


def run_suite(log, cfg, tests=()):
    """The suite, or only @tests: ('pass' | 'fail' | 'hang' | 'error', [(test, result)], seconds)."""
    tl = os.path.join(BUILD, "meson-logs", "testlog.json")
    if os.path.exists(tl):
        os.unlink(tl)
    cmd = ["meson", "test", "-C", BUILD, "--no-rebuild", "--num-processes", str(cfg.jobs),
           "--timeout-multiplier", str(cfg.mult), "--maxfail", str(cfg.maxfail), "--print-errorlogs"]
    start = time.monotonic()
    rc, hung = run_logged(cmd + list(tests), log, timeout=cfg.timeout)
    failed = []
    if os.path.exists(tl):
        with open(tl, encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                # INTERRUPT: stopped by --maxfail once another test had failed
                if r.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL", "INTERRUPT"):
                    failed.append((r.get("name", "?"), r.get("result", "?")))
    secs = time.monotonic() - start
    if hung:
        return "hang", failed, secs
    if rc == 0 and not failed:
        return "pass", [], secs
    if failed:
        return "fail", failed, secs
    return "error", [], secs


def describe(failed):
    return [name + ("" if res == "FAIL" else f" ({res.lower()})") for name, res in failed]


def judge(mid, cfg):
    """Runs the suite against the mutated build: (status, detail, flaky notes).

    A test that fails is run again alone, up to twice: the kill counts once it fails again (a
    loaded machine can fail a test once; a mutant it detects fails it again). A failure that
    does not come back is noted as flaky and the whole suite runs once more."""
    notes = []
    for attempt in (1, 2):
        tag = "" if attempt == 1 else ".2"
        state, failed, _ = run_suite(os.path.join(LOGS, f"{mid}.test{tag}.log"), cfg)
        if state == "pass":
            return "SURVIVED", [], notes
        if state == "hang":
            return "killed", describe(failed) + [f"suite still running after {cfg.timeout:.0f} s"], notes
        if state == "error":
            return "error", ["meson test failed without a failed test: see its log"], notes
        for k, (name, res) in enumerate(failed):
            for again in (1, 2):
                st, _, _ = run_suite(os.path.join(LOGS, f"{mid}.confirm-{name}.{again}.log"), cfg, [name])
                if st != "pass":
                    return "killed", describe(failed[k:k + 1]), notes
            notes.append(f"{name} {res.lower()} once, passed twice alone")
    return "SURVIVED", [], notes


# ---- main -------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="Mutation testing over tests/mutate/mutants.txt")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--check", action="store_true",
                    help="only check that every snippet still matches exactly once (no build)")
    ap.add_argument("--show", action="store_true",
                    help="print each mutant's line before and after (no build)")
    ap.add_argument("--mutants", default=LIST, help="the mutant list (default: %(default)s)")
    ap.add_argument("--only", default=os.environ.get("MUTANTS", ""), help="comma-separated ids")
    args = ap.parse_args()

    class Cfg:
        pass
    cfg = Cfg()
    cfg.min = env_num("MUTATE_MIN", 95.0)
    cfg.timeout = env_num("MUTATE_TIMEOUT", 300.0)
    cfg.mult = env_num("MUTATE_TIMEOUT_MULT", 0.25)
    cfg.maxfail = env_num("MUTATE_MAXFAIL", 1, int)
    cfg.jobs = env_num("MUTATE_JOBS", 2, int)

    mutants = load_mutants(args.mutants)
    if args.only.strip():
        want = [w.strip() for w in args.only.split(",") if w.strip()]
        ids = {m["id"] for m in mutants}
        unknown = [w for w in want if w not in ids]
        if unknown:
            print(f"mutate: unknown mutant id(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m["id"] in want]

    if args.list:
        for m in mutants:
            print(f"{m['id']:34} {m['file']:24} {m['why']}")
        return 0

    # every snippet is checked against the working tree first: a stale entry is named at once
    errors = {}
    for m in mutants:
        try:
            _, m["line"] = mutate_text(m, read(os.path.join(ROOT, m["file"])).decode())
        except (MutantError, OSError) as e:
            errors[m["id"]] = str(e)
            print(f"mutate: ERROR mutant {m['id']} ({args.mutants}:{m['lineno']}): {e}", file=sys.stderr)
    if args.show:
        for m in mutants:
            if m["id"] in errors:
                continue
            text = read(os.path.join(ROOT, m["file"])).decode()
            new, no = mutate_text(m, text)
            print(f"{m['id']} {m['file']}:{no}\n  - {text.split(chr(10))[no - 1].strip()}\n"
                  f"  + {new.split(chr(10))[no - 1].strip()}")
    if args.check or args.show:
        print(f"mutate: {len(mutants) - len(errors)} of {len(mutants)} mutants apply")
        return 1 if errors else 0

    os.makedirs(COPY, exist_ok=True)
    os.makedirs(LOGS, exist_ok=True)
    lock = open(os.path.join(WORK, "lock"), "w")  # held until exit: one run per tree
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"mutate: another run holds {WORK}/lock", file=sys.stderr)
        return 2
    n = sync_copy()
    print(f"mutate: {COPY}: {n} files updated from the working tree", flush=True)
    if not build(os.path.join(LOGS, "baseline.build.log"), cfg.jobs):
        print(f"mutate: the unmutated tree does not build: {LOGS}/baseline.build.log", file=sys.stderr)
        return 2
    state, failed, secs = run_suite(os.path.join(LOGS, "baseline.test.log"), cfg)
    if state != "pass":  # once more: a loaded machine may fail a test once
        print(f"mutate: baseline: {', '.join(describe(failed)) or state}; running it again", flush=True)
        state, failed, secs = run_suite(os.path.join(LOGS, "baseline.test.2.log"), cfg)
    if state != "pass":
        print(f"mutate: the unmutated suite does not pass ({state}: {', '.join(describe(failed))}); "
              f"see {LOGS}/baseline.test.log", file=sys.stderr)
        return 2
    print(f"mutate: baseline suite passes ({secs:.0f} s); {len(mutants)} mutants, "
          f"per-mutant limit {cfg.timeout:.0f} s, timeout multiplier {cfg.mult}, maxfail {cfg.maxfail}",
          flush=True)

    results = []
    for k, m in enumerate(mutants, 1):
        path = os.path.join(COPY, m["file"])
        r = {"id": m["id"], "file": m["file"], "line": m.get("line", 0), "why": m["why"]}
        if m["id"] in errors:
            r.update(status="error", detail=[errors[m["id"]]])
            results.append(r)
            continue
        original = read(path)
        t0 = time.monotonic()
        try:
            text, r["line"] = mutate_text(m, original.decode())
            write(path, text.encode())
            blog = os.path.join(LOGS, m["id"] + ".build.log")
            if not build(blog, cfg.jobs):
                r.update(status="not viable", detail=[f"build failed: {blog}"])
            else:
                status, detail, notes = judge(m["id"], cfg)
                r.update(status=status, detail=detail, flaky=notes)
        except MutantError as e:
            r.update(status="error", detail=[str(e)])
        finally:
            write(path, original)
        r["secs"] = round(time.monotonic() - t0, 1)
        results.append(r)
        shown = ", ".join(r["detail"]) if r["status"] != "SURVIVED" else ""
        if r.get("flaky"):
            shown += " [flaky: " + "; ".join(r["flaky"]) + "]"
        print(f"[{k}/{len(mutants)}] {r['id']}: {r['status']} {shown} ({r['secs']:.0f} s)", flush=True)

    # the copy builds clean again for the next run
    build(os.path.join(LOGS, "restore.build.log"), cfg.jobs)

    with open(os.path.join(WORK, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    killed = sum(r["status"] == "killed" for r in results)
    survived = [r for r in results if r["status"] == "SURVIVED"]
    nonviable = [r for r in results if r["status"] == "not viable"]
    errs = [r for r in results if r["status"] == "error"]

    w = max([len(r["id"]) for r in results] + [6])
    print()
    print(f"{'mutant':{w}}  {'where':26}  result")
    for r in results:
        where = f"{r['file']}:{r['line']}"
        if r["status"] == "killed":
            res = "killed by " + ", ".join(r["detail"])
        elif r["status"] == "SURVIVED":
            res = "SURVIVED  (" + r["why"] + ")"
            if r.get("flaky"):
                res += " [flaky: " + "; ".join(r["flaky"]) + "]"
        else:
            res = r["status"] + ": " + "; ".join(r["detail"])
        print(f"{r['id']:{w}}  {where:26}  {res}")
    viable = killed + len(survived)
    rate = 100.0 * killed / viable if viable else 0.0
    print()
    print(f"mutate: {killed} killed, {len(survived)} survived, {len(nonviable)} not viable, "
          f"{len(errs)} errors; kill rate {killed}/{viable} = {rate:.1f}% (minimum {cfg.min:g}%)")
    print(f"mutate: results in {os.path.relpath(os.path.join(WORK, 'results.json'), ROOT)}, "
          f"logs in {os.path.relpath(LOGS, ROOT)}/")
    if errs or nonviable:
        print("mutate: FAILED: fix the mutants that are errors or not viable (tests/mutate/mutants.txt)")
        return 1
    if rate < cfg.min:
        print(f"mutate: FAILED: kill rate below {cfg.min:g}%")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
