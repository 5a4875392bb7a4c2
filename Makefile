# shardwire: the commands people and CI type.
#
#   make deps    install missing Debian packages (as root; no network work
#                when everything is already there)
#   make build   configure (CMake + Ninja, RelWithDebInfo) and build into build/
#   make demo    deps + build, then run the guided tour (build/demos/tour)
#   make test-deps  deps + the test-only tools (Node and npm for the
#                Toxiproxy client test, Prometheus for the metrics tests)
#                when their commands are missing
#   make test    deps + test-deps + build, then the whole test suite with CTest
#   make asan    Debug build with AddressSanitizer + UBSan in build-asan/, tests
#   make tsan    Debug (-O1) build with ThreadSanitizer in build-tsan/, then the
#                whole suite twice: fast path on, then SHARDWIRE_FAST_PATH=0
#                (CAF is not instrumented: tests/sanitizers/caf_tsan_shim.cpp
#                shows TSan its hand-offs, tsan.supp covers what is left)
#   make bench   deps + build, then run build/bench/echo_bench (when it exists)
#   make soak    deps + build, then the soak run (tests/soak, docs/soak.md):
#                demo servers under random clients and faults, SOAK_SECONDS
#   make fuzz    clang + libFuzzer build of tests/fuzz in build-fuzz/, then
#                each fuzz target FUZZ_SECONDS on its committed corpus
#   make format  clang-format -i over every source folder
#   make clean   remove build/, build-asan/, build-tsan/ and build-fuzz/
#
# Every knob below can be overridden on the command line, e.g.
#   make test BUILD_DIR=build-mine JOBS=1 CTEST_ARGS='-R tcp'

SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD_DIR     ?= build
ASAN_DIR      ?= build-asan
TSAN_DIR      ?= build-tsan
BUILD_TYPE    ?= RelWithDebInfo
# Compile jobs. CAF-heavy translation units take about 1 GiB each, so no more
# than one per core (Ninja's default would be cores + 2).
JOBS          ?= $(shell nproc 2>/dev/null || echo 2)
# Tests run two at a time: each one starts a runtime with two shard threads
# plus CAF's scheduler, and timing-sensitive I/O tests suffer on a crowded box.
CTEST_JOBS    ?= 2
# Default per-test limit for any test that has no TIMEOUT property of its own
# (shardwire_add_test gives every test one; this is the safety net).
CTEST_TIMEOUT ?= 300
CTEST_ARGS    ?=
DEMO_ARGS     ?=
BENCH_ARGS    ?=
# Soak run length in seconds (CTest's soak_test runs 60) and extra
# arguments of tests/soak/run_soak.py (e.g. SOAK_ARGS='--seed=7 --scale=2').
SOAK_SECONDS  ?= 1800
SOAK_ARGS     ?=

# Fuzzing (tests/fuzz/README.md): seconds per target, and FUZZ_MERGE=1 to
# merge inputs that add coverage into the committed corpora (by default they
# are only read).
FUZZ_DIR      ?= build-fuzz
FUZZ_SECONDS  ?= 30
FUZZ_MERGE    ?= 0
FUZZ_TARGETS  ?=

# Exactly what a fresh Debian 12 needs to build and test shardwire.
PACKAGES := g++ cmake ninja-build libcaf-dev libasio-dev catch2 python3 pkg-config \
            libhttp-parser-dev nlohmann-json3-dev libssl-dev
# What the test suite needs on top, as command:package pairs; a command
# already on PATH (a newer Node from elsewhere) counts as present. Node runs
# the Toxiproxy client test (tests/interop/run_toxiproxy_node.py);
# Prometheus and promtool check and scrape --metrics
# (tests/demos/run_prometheus_scrape.py, tests/runtime/metrics_test.cpp).
TEST_TOOLS := node:nodejs npm:npm promtool:prometheus prometheus:prometheus \
              openssl:openssl
# What `make fuzz` needs on top: clang 14 with libFuzzer and the sanitizer
# runtimes (libclang-rt-dev), llvm-symbolizer for readable reports (llvm).
FUZZ_PACKAGES := clang libclang-rt-dev llvm

FORMAT_DIRS := $(wildcard runtime actors transports tests demos bench)

CTEST := ctest --output-on-failure --no-tests=error -j $(CTEST_JOBS) \
         --timeout $(CTEST_TIMEOUT) $(CTEST_ARGS)

.PHONY: deps test-deps build demo test asan tsan bench format clean

deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "deps: not a Debian system; install these yourself: $(PACKAGES)"; \
	  exit 0; \
	fi; \
	missing=""; \
	for p in $(PACKAGES); do \
	  status=$$(dpkg-query -W -f='$${db:Status-Status}' "$$p" 2>/dev/null || true); \
	  [ "$$status" = installed ] || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
	  echo "deps: all present ($(PACKAGES))"; \
	  exit 0; \
	fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deps: missing:$$missing"; \
	  echo "deps: not root, skipping; run 'sudo make deps' or apt-get install them"; \
	  exit 0; \
	fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update && apt-get install -y --no-install-recommends $$missing

# The test-only tools of TEST_TOOLS, installed when their command is missing.
test-deps: deps
	@missing=""; \
	for pair in $(TEST_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -z "$$missing" ]; then echo "test-deps: all present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "test-deps: missing:$$missing (tests that need them are skipped)"; \
	  exit 0; \
	fi; \
	echo "test-deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y --no-install-recommends $$missing || \
	  { apt-get update && apt-get install -y --no-install-recommends $$missing; }

build: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@if [ ! -x $(BUILD_DIR)/demos/tour ]; then \
	  echo "demo: $(BUILD_DIR)/demos/tour was not built (demos/tour.cpp and" \
	       "its shardwire_add_demo(tour ...) line in demos/CMakeLists.txt)"; \
	  exit 1; \
	fi
	$(BUILD_DIR)/demos/tour $(DEMO_ARGS)

test: build test-deps
	cd $(BUILD_DIR) && $(CTEST)

# The kv_cluster --simulate sweeps (tests/CMakeLists.txt): `make test`
# sweeps 1,000 seeds in about 5 s; ASan runs a seed about 15x slower and
# TSan 50x (and twice, one pass per delivery mode), so they sweep fewer:
# the same code, the sanitizers' checks on a sample of schedules.
SANITIZER_SIM_SEEDS := -DSHARDWIRE_KV_SIM_SEEDS=200 \
                       -DSHARDWIRE_KV_SIM_DETERMINISM_SEEDS=20

asan: test-deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DSHARDWIRE_SANITIZE=ON -DSHARDWIRE_CHECK_HEADERS=OFF \
	  $(SANITIZER_SIM_SEEDS)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && \
	  ASAN_OPTIONS=detect_leaks=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$(CURDIR)/tests/sanitizers/ubsan.supp \
	  $(CTEST)

# ThreadSanitizer. Debian's CAF libraries are not instrumented: every
# executable of this build links tests/sanitizers/caf_tsan_shim.cpp, which
# interposes the CAF functions that order hand-offs between threads and
# annotates them; the few CAF internals it cannot reach, and why each
# suppression is safe, are in tests/sanitizers/tsan.supp.
# tsan_canary_test (TSan builds only) must see its planted race reported, so
# a TSan that went blind fails the run. Pass 1 runs every test with the
# default fast path (each shardwire_add_test also runs as <name>_queued with
# SHARDWIRE_FAST_PATH=0); pass 2 runs the tests without such a twin (scripts,
# demos, the canary) with SHARDWIRE_FAST_PATH=0, so every test meets both
# settings once. Both passes run even if the first fails.
TSAN_OPTIONS_MAKE := halt_on_error=0:second_deadlock_stack=1:report_signal_unsafe=1:suppressions=$(CURDIR)/tests/sanitizers/tsan.supp

tsan: test-deps
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DSHARDWIRE_TSAN=ON -DSHARDWIRE_CHECK_HEADERS=OFF \
	  $(SANITIZER_SIM_SEEDS)
	cmake --build $(TSAN_DIR) -j $(JOBS)
	cd $(TSAN_DIR) && export TSAN_OPTIONS='$(TSAN_OPTIONS_MAKE)'; \
	  echo "tsan: pass 1/2: fast path on (the *_queued twins run it off)"; \
	  env -u SHARDWIRE_FAST_PATH $(CTEST); pass1=$$?; \
	  echo "tsan: pass 2/2: SHARDWIRE_FAST_PATH=0 for the tests without a twin"; \
	  SHARDWIRE_FAST_PATH=0 $(CTEST) -LE '^(fast_path|queued)$$'; pass2=$$?; \
	  echo "tsan: pass 1 (fast path on): $$([ $$pass1 = 0 ] && echo ok || echo FAILED)," \
	       "pass 2 (SHARDWIRE_FAST_PATH=0): $$([ $$pass2 = 0 ] && echo ok || echo FAILED)"; \
	  [ $$pass1 = 0 ] && [ $$pass2 = 0 ]

bench: build
	@if [ -x $(BUILD_DIR)/bench/echo_bench ]; then \
	  echo "$(BUILD_DIR)/bench/echo_bench $(BENCH_ARGS)"; \
	  $(BUILD_DIR)/bench/echo_bench $(BENCH_ARGS); \
	else \
	  echo "bench: $(BUILD_DIR)/bench/echo_bench not built yet (no echo_bench" \
	       "target in bench/CMakeLists.txt); nothing to run"; \
	fi

.PHONY: fuzz
fuzz:
	$(MAKE) deps PACKAGES="$(PACKAGES) $(FUZZ_PACKAGES)"
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DSHARDWIRE_FUZZ=ON
	cmake --build $(FUZZ_DIR) --target shardwire_fuzzers -j $(JOBS)
	tests/fuzz/run_fuzzers.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_MERGE) \
	  $(FUZZ_TARGETS)

.PHONY: soak
soak: build
	python3 tests/soak/run_soak.py --build-dir $(BUILD_DIR) \
	  --seconds $(SOAK_SECONDS) --report $(BUILD_DIR)/soak-report.json \
	  $(SOAK_ARGS)

format:
	@command -v clang-format >/dev/null 2>&1 || { \
	  echo "format: clang-format not found (apt-get install clang-format)"; \
	  exit 1; }
	find $(FORMAT_DIRS) \( -name '*.hpp' -o -name '*.cpp' \) -print0 \
	  | xargs -0 -r clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) $(FUZZ_DIR)
