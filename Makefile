# The two commands: `make demo` and `make test`. Each installs missing Debian packages,
# configures and builds. Everything else here serves them, CI, or benchmarks.
BUILD ?= build
MESON_OPTS ?=
SUMMARY = python3 tools/test-summary.py
# The suite of a build directory: each test's line as it finishes, the failures' logs, the totals.
RUN_TESTS = tools/run-tests.sh

.PHONY: all demo test igt deps build bench check-asan check-tsan coverage mutate fuzz-smoke fuzz-long fuzz-run fuzz-coverage clean

all: build

deps:
	@tools/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	$(BUILD)/tools/vmbind demo

test: build
	@$(RUN_TESTS) $(BUILD) "" $(TEST_ARGS)

bench: build
	$(BUILD)/tools/vmbind bench va
	$(BUILD)/tools/vmbind bench pt
	$(BUILD)/tools/vmbind bench bind
	$(BUILD)/tools/vmbind bench pipeline
	$(BUILD)/tools/vmbind bench handles
	$(BUILD)/tools/vmbind bench evict

# Sanitizers: ASan+UBSan with gcc and with clang, over the whole suite.
check-asan: deps
	@for cc in gcc clang; do \
	  d=build-asan-$$cc; \
	  [ -f $$d/build.ninja ] || CC=$$cc meson setup $$d -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS) || exit 1; \
	  ninja -C $$d || exit 1; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $(RUN_TESTS) $$d "$$cc asan+ubsan" --timeout-multiplier 4 || exit $$?; \
	done

# ThreadSanitizer with clang (fences switch to their mutex/condvar build there).
check-tsan: deps
	@d=build-tsan; \
	[ -f $$d/build.ninja ] || CC=clang meson setup $$d -Db_sanitize=thread -Db_lundef=false $(MESON_OPTS) || exit 1; \
	ninja -C $$d || exit 1; \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  $(RUN_TESTS) $$d "clang tsan" --timeout-multiplier 4

# Branch coverage of the suite (gcovr): a summary per file, and an HTML report. An assert()'s
# failing branch is never taken on purpose: those lines are left out.
coverage: deps
	@VMB_DEPS_EXTRA=gcovr tools/install-deps.sh
	@d=build-cov; \
	[ -f $$d/build.ninja ] || meson setup $$d -Db_coverage=true $(MESON_OPTS) || exit 1; \
	ninja -C $$d || exit 1; \
	find $$d -name '*.gcda' -delete; \
	meson test -C $$d --num-processes 2 --timeout-multiplier 2 > $$d/test-output.txt 2>&1; \
	status=$$?; $(SUMMARY) $$d; \
	mkdir -p $$d/coverage; \
	(cd $$d && gcovr -r .. --filter '../src/' --branches --exclude-unreachable-branches \
	  --exclude-lines-by-pattern '^\s*assert\(.*' \
	  --print-summary --txt coverage/branches.txt --html-details coverage/index.html .) || exit 1; \
	cat $$d/coverage/branches.txt; echo "HTML: $$d/coverage/index.html"; exit $$status

# Mutation testing (tools/mutate.py): each mutant of tests/mutate/mutants.txt, a single-line change
# a developer could plausibly make, is applied to a scratch copy of the tree (build-mutate/src),
# rebuilt, and the suite run against it; it fails below a kill rate of MUTATE_MIN percent (95).
# MUTANTS=id,id runs some; `tools/mutate.py --list` lists them. Long: not part of CI.
MUTANTS ?=
mutate: deps
	@python3 tools/mutate.py --only "$(MUTANTS)"

# libFuzzer targets (clang, ASan+UBSan): tests/fuzz/uapi.c and va.c. Each first replays its
# regression inputs (tests/fuzz/regressions/NAME), then fuzzes for FUZZ_TIME seconds, 60 for
# fuzz-smoke and FUZZ_SECONDS for fuzz-long, over a scratch copy of its seed corpus
# (tests/fuzz/corpus/NAME is not written). A crash, leak, hang or failed check fails the target and
# leaves the input in build-fuzz/fuzz-artifacts/. FUZZ_JOBS > 1 runs that many fuzzing processes
# per target on one shared corpus (libFuzzer's -jobs/-workers: each process takes up the others'
# new inputs as it goes; each stops at -max_total_time, or at -runs if FUZZ_FLAGS sets it).
# -entropic=0: the entropic schedule's feature bookkeeping took 70% of the uAPI fuzzer's time
# (23 runs/s against 75 without it, 2 vCPUs). FUZZ_TARGETS picks the targets (two long runs side
# by side: one make per target). The uAPI fuzzer signals
# itself while it runs (VMB_FUZZ_SIGNAL_US, default 300): regression inputs replay with a signal
# every 20 us, so that every wait in them is interrupted and restarted many times.
FUZZ_BUILD = build-fuzz
FUZZ_TARGETS ?= uapi va
FUZZ_SECONDS ?= 1800
FUZZ_TIME ?= 60
FUZZ_JOBS ?= 1
FUZZ_FLAGS ?= -entropic=0
# libFuzzer stops a process past this resident size (its default, 2048, is an "out-of-memory"
# finding). Under ASan the uAPI fuzzer's resident size grows by ~15 MB a minute (the same inputs
# in a build without ASan stay at ~47 MB over 120,000 inputs: no leak of ours), so a run of hours
# passes 2 GiB.
FUZZ_RSS_MB ?= 8192

fuzz-smoke: deps
	@$(MAKE) --no-print-directory fuzz-run FUZZ_TIME=60

fuzz-long: deps
	@$(MAKE) --no-print-directory fuzz-run FUZZ_TIME=$(FUZZ_SECONDS)

fuzz-run:
	@d=$(FUZZ_BUILD); \
	[ -f $$d/build.ninja ] || CC=clang meson setup $$d -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS) || exit 1; \
	ninja -C $$d tests/fuzz/fuzz-uapi tests/fuzz/fuzz-va || exit 1; \
	mkdir -p $$d/fuzz-artifacts || exit 1; \
	for f in $(FUZZ_TARGETS); do \
	  for r in tests/fuzz/regressions/$$f/*; do \
	    [ -f "$$r" ] || continue; \
	    VMB_FUZZ_SIGNAL_US=20 $$d/tests/fuzz/fuzz-$$f "$$r" > $$d/fuzz-$$f-regression.log 2>&1 || { \
	      tail -n 40 $$d/fuzz-$$f-regression.log; echo "fuzz-$$f: regression input $$r FAILED"; exit 1; }; \
	    echo "[fuzz-$$f: regression input $$r: ok]"; \
	  done; \
	  rm -rf $$d/corpus-run/$$f; mkdir -p $$d/corpus-run/$$f || exit 1; \
	  cp tests/fuzz/corpus/$$f/* $$d/corpus-run/$$f/ || exit 1; \
	  a=$$(pwd)/$$d; rm -rf $$d/jobs-$$f; mkdir -p $$d/jobs-$$f || exit 1; \
	  echo "[fuzz-$$f: $(FUZZ_TIME) s x $(FUZZ_JOBS), log in $$d/fuzz-$$f.log, $$d/jobs-$$f/fuzz-N.log]"; \
	  if [ $(FUZZ_JOBS) -gt 1 ]; then par="-jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS)"; else par=; fi; \
	  (cd $$d/jobs-$$f && $$a/tests/fuzz/fuzz-$$f $(FUZZ_FLAGS) $$par -max_total_time=$(FUZZ_TIME) -timeout=120 \
	    -rss_limit_mb=$(FUZZ_RSS_MB) -print_final_stats=1 -artifact_prefix=$$a/fuzz-artifacts/$$f- $$a/corpus-run/$$f) > $$d/fuzz-$$f.log 2>&1; \
	  status=$$?; \
	  if [ $(FUZZ_JOBS) -gt 1 ]; then for l in $$d/jobs-$$f/fuzz-*.log; do echo "== $$l"; cat $$l; done >> $$d/fuzz-$$f.log; fi; \
	  if [ $$status -ne 0 ]; then tail -n 60 $$d/fuzz-$$f.log; echo "fuzz-$$f FAILED (exit $$status): see $$d/fuzz-artifacts/"; exit 1; fi; \
	  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::|^INFO: fuzzed for|^== ' $$d/fuzz-$$f.log; \
	done

# What the fuzzers reach: each target, built with clang's source coverage (no sanitizers),
# replays a corpus once (the last fuzz-smoke/fuzz-long run's, build-fuzz/corpus-run/NAME, when
# there is one, else the seed corpus), and llvm-cov prints region, line and branch coverage of
# src/ per file. Branches count each condition of && and || apart, so they read lower than
# gcovr's (make coverage) for the same code.
fuzz-coverage: deps
	@VMB_DEPS_EXTRA=llvm tools/install-deps.sh
	@d=build-fuzz-cov; cov="-fprofile-instr-generate -fcoverage-mapping"; \
	[ -f $$d/build.ninja ] || CC=clang meson setup $$d -Dfuzz=true -Db_lundef=false -Dc_args="$$cov" \
	  -Dc_link_args="$$cov" $(MESON_OPTS) || exit 1; \
	ninja -C $$d tests/fuzz/fuzz-uapi tests/fuzz/fuzz-va || exit 1; \
	for f in $(FUZZ_TARGETS); do \
	  c=$(FUZZ_BUILD)/corpus-run/$$f; [ -d $$c ] || c=tests/fuzz/corpus/$$f; \
	  rm -f $$d/$$f.profraw; \
	  LLVM_PROFILE_FILE=$$d/$$f.profraw $$d/tests/fuzz/fuzz-$$f -entropic=0 -runs=0 $$c > $$d/$$f-replay.log 2>&1 || { \
	    tail -n 20 $$d/$$f-replay.log; echo "fuzz-$$f: replaying $$c failed"; exit 1; }; \
	  llvm-profdata merge -o $$d/$$f.profdata $$d/$$f.profraw || exit 1; \
	  echo "[fuzz-$$f: $$(ls $$c | wc -l) inputs of $$c]"; \
	  llvm-cov report $$d/tests/fuzz/fuzz-$$f -instr-profile=$$d/$$f.profdata src | \
	    awk 'BEGIN { printf "%-28s %9s %9s %9s\n", "file", "regions", "lines", "branches" } \
	      /^src\// { printf "%-28s %9s %9s %9s\n", $$1, $$4, $$10, $$13 }' || exit 1; \
	done

# IGT's Xe tests against vmbind through libvmbind-xe.so (docs/XE.md): fetches the Debian test
# binaries and the DRM headers into build-igt/ once (a private apt configuration; nothing is
# installed), builds the shim, runs each subtest of tests/xe/igt-subtests.txt unprivileged. No
# route to the mirror: one skip line, exit 0. Fails if a tier-1 subtest does not pass.
# IGT_ARGS go to tools/igt-run.py (e.g. IGT_ARGS="--tier 1 -v").
IGT_ARGS ?=
igt: deps
	@tools/igt-fetch.sh build-igt || exit 1; \
	if [ -f build-igt/.skip ]; then exit 0; fi; \
	[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) $(MESON_OPTS) || exit 1; \
	grep -q 'libvmbind-xe' $(BUILD)/build.ninja || meson setup --reconfigure $(BUILD) > /dev/null || exit 1; \
	ninja -C $(BUILD) src/xe/libvmbind-xe.so || exit 1; \
	python3 tools/igt-run.py --igt build-igt --shim $(BUILD)/src/xe/libvmbind-xe.so $(IGT_ARGS)

clean:
	rm -rf $(BUILD) build-asan-gcc build-asan-clang build-tsan build-cov build-fuzz-cov build-mutate $(FUZZ_BUILD)
