# The two commands a newcomer runs:
#   make demo   installs what is missing (as root), builds, runs herd on the default model
#   make test   builds and runs every test, then again under ASan + UBSan
JOBS ?= $(shell nproc)
DEBIAN_DEPS = build-essential cmake pkg-config libjansson-dev libpcre2-dev libmicrohttpd-dev \
              libedit-dev
DEMO_MODEL ?= models/kjv-llama-q8_0.gguf
DEMO_PROMPT ?= And God said

.PHONY: all deps build asan test test-plain test-asan demo bench fuzz format check clean soak fleet

all: build

# Install missing Debian packages when running as root; otherwise just report.
deps:
	@missing=""; for p in $(DEBIAN_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing >/dev/null || \
	    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing >/dev/null; }; \
	  else echo "missing Debian packages:$$missing (run as root to install)"; exit 1; fi; \
	fi

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHERD_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

test-plain: build
	cd build && ctest --output-on-failure -j $(JOBS)

test-asan: asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

test: test-plain test-asan

demo: build
	./build/herd info $(DEMO_MODEL)
	./build/herd run -m $(DEMO_MODEL) -p "$(DEMO_PROMPT)" -n 48 --temp 0

bench: build
	bench/compare-llama-cpp

# `herd serve` against 1,000 idle or trickling connections for 60 s (bench/soak);
# test_server_conn runs a 200-connection, 5-second version in `make test`.
soak: build
	nice -n 19 bench/soak

# Three replicas behind nginx, a SIGKILL and a drain under load (bench/fleet).
fleet: build
	nice -n 19 bench/fleet/run

# libFuzzer targets (clang), each run for FUZZ_TIME seconds (10 minutes by
# default; `make fuzz FUZZ_TIME=30` for a smoke run). Corpora live in build-fuzz/.
FUZZ_TIME ?= 600
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc
fuzz: build
	@mkdir -p build-fuzz/gguf-corpus
	./build/test_gguf >/dev/null 2>&1 || true
	cp /tmp/herd-test-*/*.gguf build-fuzz/gguf-corpus/ 2>/dev/null || true
	clang $(FUZZ_FLAGS) -o build-fuzz/fuzz_gguf tests/fuzz/fuzz_gguf.c src/gguf/gguf.c \
	  src/gguf/gguf_write.c src/util/util.c src/tensor/types.c -lm -lpthread
	build-fuzz/fuzz_gguf -max_len=4096 -max_total_time=$(FUZZ_TIME) -malloc_limit_mb=64 \
	  build-fuzz/gguf-corpus

format:
	clang-format -i include/*.h src/*/*.[ch] tools/*.[ch] tests/*.[ch]

check: build
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem --suppressions-list=.cppcheck-suppressions \
	  -Iinclude -Isrc src tools

clean:
	rm -rf build build-asan build-fuzz
