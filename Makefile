# The two commands: `make demo` and `make test`. Each installs missing Debian packages,
# configures and builds. Everything else here serves them, CI, or benchmarks.
BUILD ?= build
MESON_OPTS ?=
SUMMARY = python3 tools/test-summary.py

.PHONY: all demo test deps build bench check-asan check-tsan coverage clean

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
	@meson test -C $(BUILD) --print-errorlogs --num-processes 2 $(TEST_ARGS) > $(BUILD)/test-output.txt 2>&1; \
	  status=$$?; cat $(BUILD)/test-output.txt; $(SUMMARY) $(BUILD); exit $$status

bench: build
	$(BUILD)/tools/vmbind bench va
	$(BUILD)/tools/vmbind bench pt
	$(BUILD)/tools/vmbind bench bind
	$(BUILD)/tools/vmbind bench pipeline

# Sanitizers: ASan+UBSan with gcc and with clang, over the whole suite.
check-asan: deps
	@for cc in gcc clang; do \
	  d=build-asan-$$cc; \
	  [ -f $$d/build.ninja ] || CC=$$cc meson setup $$d -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS) || exit 1; \
	  ninja -C $$d || exit 1; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    meson test -C $$d --print-errorlogs --num-processes 2 --timeout-multiplier 4 > $$d/test-output.txt 2>&1; \
	  status=$$?; cat $$d/test-output.txt; echo "[$$cc asan+ubsan]"; $(SUMMARY) $$d; \
	  [ $$status -eq 0 ] || exit $$status; \
	done

# ThreadSanitizer with clang (fences switch to their mutex/condvar build there).
check-tsan: deps
	@d=build-tsan; \
	[ -f $$d/build.ninja ] || CC=clang meson setup $$d -Db_sanitize=thread -Db_lundef=false $(MESON_OPTS) || exit 1; \
	ninja -C $$d || exit 1; \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  meson test -C $$d --print-errorlogs --num-processes 2 --timeout-multiplier 4 > $$d/test-output.txt 2>&1; \
	status=$$?; cat $$d/test-output.txt; echo "[clang tsan]"; $(SUMMARY) $$d; exit $$status

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

clean:
	rm -rf $(BUILD) build-asan-gcc build-asan-clang build-tsan build-cov
