# The two commands a newcomer runs:
#   make demo   installs what is missing (as root), builds, runs herd on the default model
#   make test   installs what the tests need (test-deps), builds and runs every test, then
#               again under ASan + UBSan, then each fuzz target for a few seconds
# Long runs have their own targets: make fuzz (FUZZ_TIME seconds per target), make bench.
JOBS ?= $(shell nproc)
DEBIAN_DEPS = build-essential cmake pkg-config libjansson-dev libpcre2-dev libmicrohttpd-dev \
              libedit-dev
# What the tests need beyond the build, installed once by test-deps (never by a
# test): a terminal for `herd chat` (tmux), a browser for the HTML report
# (chromium), node and the openai npm client for the server, clang for
# libFuzzer, python3 for the shell tests' checks.
TEST_DEBIAN_DEPS = tmux chromium nodejs clang python3
OPENAI_DIR = build-deps/openai
OPENAI_VERSION = 7
DEMO_MODEL ?= models/kjv-llama-q8_0.gguf
DEMO_PROMPT ?= And God said

.PHONY: all deps test-deps build asan test test-plain test-asan test-fuzz demo bench fuzz \
        fuzz-build soak-window format check clean install

all: build

# Install missing Debian packages when running as root; otherwise just report.
# $(call apt_install,PACKAGES)
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing >/dev/null || \
	    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing >/dev/null; }; \
	  else echo "missing Debian packages:$$missing (run as root to install)"; exit 1; fi; \
	fi
endef

deps:
	$(call apt_install,$(DEBIAN_DEPS))

# nodejs from NodeSource brings its own npm; Debian's needs the npm package. The
# oracle (../shared/oracle) installs llama.cpp on its first call: made here, so
# that no test waits for it.
test-deps: deps
	$(call apt_install,$(TEST_DEBIAN_DEPS))
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory DEBIAN_DEPS=npm deps
	@[ -f $(OPENAI_DIR)/node_modules/openai/package.json ] || { mkdir -p $(OPENAI_DIR) && \
	  echo "installing the openai npm package into $(OPENAI_DIR)" && \
	  cd $(OPENAI_DIR) && npm install --no-audit --no-fund --loglevel=error openai@$(OPENAI_VERSION); }
	@[ ! -x ../shared/oracle/oracle ] || ../shared/oracle/oracle info $(DEMO_MODEL) >/dev/null

# Warnings are errors here and in CI (HERD_WERROR), not in a user's own cmake
# build, where a newer compiler's new warning should not stop it.
WERROR ?= ON

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DHERD_WERROR=$(WERROR) >/dev/null
	@cmake --build build -j $(JOBS)

# herd, libherd.a and herd.h under PREFIX (bin/, lib/, include/).
PREFIX ?= /usr/local
install: build
	cmake --install build --prefix $(PREFIX)

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHERD_SANITIZE=ON \
	  -DHERD_WERROR=$(WERROR) >/dev/null
	@cmake --build build-asan -j $(JOBS)

# A test that could not run exits 77 and ctest lists it as skipped ("Not Run").
test-plain: build test-deps
	cd build && ctest --output-on-failure -j $(JOBS)

test-asan: asan test-deps
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

test-fuzz: test-deps
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=$(FUZZ_SMOKE_TIME)

test: test-plain test-asan test-fuzz

demo: build
	./build/herd info $(DEMO_MODEL)
	./build/herd run -m $(DEMO_MODEL) -p "$(DEMO_PROMPT)" -n 48 --temp 0

bench: build
	bench/compare-llama-cpp

# Gemma's sliding-window cache over a 10,000-token generation: resident memory
# flat once the window has filled (tests/test_families.c; minutes).
soak-window: build
	HERD_SOAK=1 ./build/test_families

# libFuzzer (clang): one target per tests/fuzz/fuzz_NAME.c, each run for
# FUZZ_TIME seconds (10 minutes by default; `make fuzz FUZZ_TIME=60`; `make
# fuzz-NAME` runs one) from its committed seeds in tests/fuzz/corpus/NAME. What
# a run finds is kept in build-fuzz/corpus/NAME, a crashing input in
# build-fuzz/crash-NAME-*. FUZZ_ARGS_NAME adds a target's own options.
FUZZ_TIME ?= 600
FUZZ_SMOKE_TIME ?= 5
FUZZ_TARGETS = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_ARGS_gguf = -max_len=4096 -malloc_limit_mb=64
FUZZ_ARGS_tokenizer = -max_len=2048 -malloc_limit_mb=512
FUZZ_ARGS_server = -max_len=4096 -malloc_limit_mb=512
# The renderer's seeds are ../shared/chat's templates (tests/fuzz/jinja-seeds.sh);
# its fuzz build has a tenth of the step budget (CMakeLists.txt), so runaway
# inputs stop sooner; a long -timeout, as a budget-bound render can wait long
# for a core on a loaded machine.
FUZZ_ARGS_jinja = -max_len=32768 -timeout=60 -rss_limit_mb=1024 -malloc_limit_mb=256 \
                  -dict=tests/fuzz/jinja.dict

fuzz-build: deps
	$(call apt_install,clang)
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DHERD_FUZZ=ON \
	  -DHERD_WERROR=$(WERROR) >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzzers

fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))

fuzz-%: fuzz-build
	@mkdir -p build-fuzz/corpus/$*
	build-fuzz/fuzz_$* -max_total_time=$(FUZZ_TIME) -timeout=20 -rss_limit_mb=2048 \
	  -print_final_stats=1 -artifact_prefix=build-fuzz/crash-$*- $(FUZZ_ARGS_$*) \
	  build-fuzz/corpus/$* $(wildcard tests/fuzz/corpus/$*)

format:
	clang-format -i include/*.h src/*/*.[ch] tools/*.[ch] tests/*.[ch] tests/fuzz/*.c

check: build
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem --suppressions-list=.cppcheck-suppressions \
	  -Iinclude -Isrc src tools

clean:
	rm -rf build build-asan build-fuzz
