# Switchyard's front door. The real build is CMake (CMakeLists.txt); this only strings steps
# together so that a fresh clone needs one command:
#
#   make run      install what is missing, build, and start examples/quickstart.yaml
#   make test     build, then unit tests (ctest) and integration tests (pytest)
#   make build    install what is missing and build (Release, Ninja, ccache)
#   make bench    Switchyard, Envoy, nginx and HAProxy side by side (bench/README.md)
#   make fuzz     build the fuzz targets with clang (build-fuzz/) and run each for FUZZ_SECONDS
#   make format   clang-format every tracked C/C++ file
#   make clean    remove build/
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

.PHONY: all deps build configure test unit integration run bench fuzz format clean

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

# Both suites run even if the first fails; the last line sums them up for people and for CI.
test: build
	@unit=0; integration=0; \
	rm -f $(BUILD)/junit-unit.xml $(BUILD)/junit-integration.xml; \
	ctest --test-dir $(BUILD) --output-on-failure \
	  --output-junit $(CURDIR)/$(BUILD)/junit-unit.xml || unit=$$?; \
	$(VENV)/bin/python -m pytest tests/integration -v \
	  --junitxml=$(CURDIR)/$(BUILD)/junit-integration.xml $(PYTEST_ARGS) || integration=$$?; \
	$(VENV)/bin/python tools/test-summary unit=$(BUILD)/junit-unit.xml \
	  integration=$(BUILD)/junit-integration.xml; \
	[ $$unit -eq 0 ] && [ $$integration -eq 0 ]

unit: build
	ctest --test-dir $(BUILD) --output-on-failure

integration: build
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
	rm -rf $(BUILD) $(FUZZ_BUILD)
