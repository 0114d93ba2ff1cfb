# Switchyard's front door. The real build is CMake (CMakeLists.txt); this only strings steps
# together so that a fresh clone needs one command:
#
#   make run      install what is missing, build, and start examples/quickstart.yaml
#   make test     build, then unit tests (ctest) and integration tests (pytest)
#   make test-asan-subset  the integration subset (ASAN_SUBSET) on the sanitizer build
#   make build    install what is missing and build (Release, Ninja, ccache)
#   make test-asan  build-asan/ (ASan+UBSan, modules and fixtures too), then both suites on it
#   make bench    Switchyard, Envoy, nginx and HAProxy side by side (bench/README.md)
#   make fuzz     build the fuzz targets with clang (build-fuzz/) and run each for FUZZ_SECONDS
#   make format   clang-format every tracked C/C++ file
#   make clean    remove build/, build-asan/ and build-fuzz/
#
# Pass pytest options with PYTEST_ARGS, e.g. make integration PYTEST_ARGS='-k reload -x'.

SHELL := /bin/bash
BUILD := build
SY_CACHE ?= $(HOME)/.cache/switchyard
VENV := $(SY_CACHE)/venv
PYTEST_ARGS ?=
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 60
CCACHE_DIR := $(SY_CACHE)/ccache
export SY_CACHE CCACHE_DIR

.PHONY: all deps build configure test unit integration run bench fuzz format clean wasm-fixtures \
  test-asan-subset \
        configure-asan build-asan build-asan-proxy test-asan

all: build

deps:
	@tools/install-deps

# Configure once; later builds let Ninja re-run CMake itself when a CMakeLists.txt changes.
configure: deps
	@if [ ! -f $(BUILD)/CMakeCache.txt ]; then \
	  cmake -G Ninja -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release \
	    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache; \
	fi

build: configure
	cmake --build $(BUILD)

# The Proxy-Wasm filters the Wasm tests run, compiled from their SDKs (tools/build-wasm-fixtures;
# a no-op once cached). Built before pytest so that a cold build does not count against a test's
# timeout; if it fails, the Wasm tests fail and show its output, and the other suites still run.
wasm-fixtures: deps
	@tools/build-wasm-fixtures >/dev/null || \
	  echo "make: tools/build-wasm-fixtures failed; the Wasm tests will say why" >&2

# Every suite runs even if one fails; the last line sums them up for people and for CI.
#
# The sanitizer run is in it as far as the budget allows (45 minutes for a fresh machine's
# `make test` on 2 cores): the integration suite's ASAN_SUBSET (below) on build-asan/, which
# needs only the proxy, the modules and the fixtures built with ASan+UBSan (alone, that is
# `make test-asan-subset`). The whole run, with the sanitizer unit tests and every integration
# file, is `make test-asan`. Budget (measured; the table and how each figure was taken are in
# tests/integration/README.md): Release build 5 minutes, its unit tests 1 and integration suite
# 11; the ASan build of the proxy, modules and fixtures 17 (cold; a second clone hits the
# cache), the subset 10 at load 4 to 5: 44 in all (34 at load 8 to 28, measured 2026-12-07).
test: build build-asan-proxy wasm-fixtures
	@unit=0; integration=0; \
	rm -f $(BUILD)/junit-unit.xml $(BUILD)/junit-integration.xml; \
	ctest --test-dir $(BUILD) --output-on-failure \
	  --output-junit $(CURDIR)/$(BUILD)/junit-unit.xml || unit=$$?; \
	$(VENV)/bin/python -m pytest tests/integration -v \
	  --junitxml=$(CURDIR)/$(BUILD)/junit-integration.xml $(PYTEST_ARGS) || integration=$$?; \
	$(asan-start) $(call asan-integration,$(ASAN_SUBSET)) $(asan-reports) \
	$(VENV)/bin/python tools/test-summary unit=$(BUILD)/junit-unit.xml \
	  integration=$(BUILD)/junit-integration.xml $(ASAN_INTEGRATION_JUNIT); \
	[ $$unit -eq 0 ] && [ $$integration -eq 0 ] && [ $$asan -eq 0 ]

# --- the sanitizer run (issue 13): the same suites on a build with ASan+UBSan ---------------
# A build of its own (build-asan/, RelWithDebInfo so reports have lines), the same ccache. The
# root CMakeLists.txt adds -fsanitize to every target, so the modules under modules/ and the
# ABI fixtures under tests/abi/ are instrumented too; a dlopen'ed module finds the runtime
# already loaded by the instrumented proxy (or unit test binary).
BUILD_ASAN := build-asan
SANITIZER_REPORTS := $(CURDIR)/$(BUILD_ASAN)/sanitizer-reports
# Any report fails the run: ASan and UBSan halt on the first error and LSan checks every
# process at exit. ASan and LSan write their reports under $(SANITIZER_REPORTS) (log_path);
# GCC's UBSan ignores log_path next to ASan and writes to stderr, which ends up in the logs.
# The pytest suite fails the test a report appeared in (tests/integration/conftest.py), and
# tools/sanitizer-reports fails the run on any report, seen by a test or not. Suppressions
# (tests/sanitizers/lsan.supp) carry a written reason each.
ASAN_ENV := \
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$(SANITIZER_REPORTS)/asan \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0 \
  SY_SANITIZER_REPORTS=$(SANITIZER_REPORTS) SWITCHYARD_BIN=$(CURDIR)/$(BUILD_ASAN)/switchyard

configure-asan: deps
	@if [ ! -f $(BUILD_ASAN)/CMakeCache.txt ]; then \
	  cmake -G Ninja -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSY_SANITIZE=ON \
	    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache; \
	fi

build-asan: configure-asan
	cmake --build $(BUILD_ASAN)

# What the integration suite runs on: the proxy, sy-module, and every module and fixture (each
# .so the build makes, so that a new one is picked up without a change here). build.ninja is
# brought up to date first, so that the list has the modules a changed CMakeLists.txt adds.
build-asan-proxy: configure-asan
	ninja -C $(BUILD_ASAN) build.ninja
	cmake --build $(BUILD_ASAN) --target switchyard sy-module \
	  $$(ninja -C $(BUILD_ASAN) -t targets all | grep -o '^[^:]*\.so' | sort -u)

# The steps of a sanitizer run; the caller reads $$asan (0 when all passed).
define asan-start
asan=0; rm -rf $(SANITIZER_REPORTS); mkdir -p $(SANITIZER_REPORTS); \
rm -f $(BUILD_ASAN)/junit-*.xml;
endef
define asan-unit
$(ASAN_ENV) ctest --test-dir $(BUILD_ASAN) --output-on-failure \
  --output-junit $(CURDIR)/$(BUILD_ASAN)/junit-unit.xml || asan=1;
endef
# $(call asan-integration,ARGS): the integration tests ARGS select (paths, pytest options).
define asan-integration
$(ASAN_ENV) $(VENV)/bin/python -m pytest $(1) -v --basetemp=$(BUILD_ASAN)/pytest \
  --junitxml=$(CURDIR)/$(BUILD_ASAN)/junit-integration.xml $(PYTEST_ARGS) || asan=1;
endef
define asan-reports
$(VENV)/bin/python tools/sanitizer-reports $(SANITIZER_REPORTS) \
  --logs $(BUILD_ASAN)/Testing/Temporary $(BUILD_ASAN)/pytest \
  --junit $(BUILD_ASAN)/junit-reports.xml || asan=1;
endef
# What `make test` runs of the integration suite on the sanitizer build: all of it (every codec
# and every module) but test_bench_smoke.py, which runs the bench harness for three minutes,
# not more of our code, and which the Release suite runs already.
ASAN_SUBSET := tests/integration --ignore=tests/integration/test_bench_smoke.py
ASAN_INTEGRATION_JUNIT := asan-integration=$(BUILD_ASAN)/junit-integration.xml \
  asan-reports=$(BUILD_ASAN)/junit-reports.xml
ASAN_JUNIT := asan-unit=$(BUILD_ASAN)/junit-unit.xml $(ASAN_INTEGRATION_JUNIT)

# The subset `make test` is to run on the sanitizer build (see the paragraph above test:).
test-asan-subset: build-asan-proxy wasm-fixtures
	@$(asan-start) $(call asan-integration,$(ASAN_SUBSET)) $(asan-reports) \
	$(VENV)/bin/python tools/test-summary $(ASAN_INTEGRATION_JUNIT); \
	[ $$asan -eq 0 ]

test-asan: build-asan
	@$(asan-start) $(asan-unit) $(call asan-integration,tests/integration) $(asan-reports) \
	$(VENV)/bin/python tools/test-summary $(ASAN_JUNIT); \
	[ $$asan -eq 0 ]

unit: build
	ctest --test-dir $(BUILD) --output-on-failure

integration: build wasm-fixtures
	$(VENV)/bin/python -m pytest tests/integration -v $(PYTEST_ARGS)

run: build
	./$(BUILD)/switchyard -c examples/quickstart.yaml

# Benchmarks (bench/README.md): installs what the bench needs (bench/setup), then measures and
# writes bench/RESULTS.md, bench/results.json and bench/results.png. Options through
# BENCH_ARGS, e.g. make bench BENCH_ARGS='--smoke' or BENCH_ARGS='--rounds 7 --duration 10'.
bench: build
	@bench/setup
	$(SY_CACHE)/bench-venv/bin/python bench/run.py $(BENCH_ARGS)

# libFuzzer targets (tests/fuzz/README.md): a clang build of its own with ASan+UBSan, then each
# target in turn for FUZZ_SECONDS. `make test` replays the committed corpora without clang.
fuzz:
	@tools/install-deps --fuzz
	@if [ ! -f $(FUZZ_BUILD)/CMakeCache.txt ]; then \
	  CC=clang CXX=clang++ cmake -G Ninja -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DSY_FUZZ=ON -DSY_BUILD_TESTS=OFF \
	    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache; \
	fi
	cmake --build $(FUZZ_BUILD) --target fuzz
	tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS)

format:
	git ls-files -z '*.c' '*.cc' '*.cpp' '*.h' '*.hpp' ':!:abi/history/**' \
	  | xargs -0 -r clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(FUZZ_BUILD)
