# twinfleet — the front door. On a fresh Debian 12 machine: `make demo` or `make test`.
PRESET ?= release
BUILD_DIR := build
JOBS ?= $(shell nproc)

.PHONY: all deps configure build test demo bench asan fuzz clean help

all: build

help:
	@echo "make deps    install the Debian 12 packages twinfleet needs (apt; sudo when not root)"
	@echo "make build   deps + configure + build; the CLI is build/twinfleet"
	@echo "make test    build + run every test through ctest"
	@echo "make demo    build + run the main job"
	@echo "make bench   build + run the benchmark programs under bench/"
	@echo "make asan    build and test with AddressSanitizer and UBSan (build-asan/)"
	@echo "make fuzz    libFuzzer targets (clang), FUZZ_SECONDS each (default 60)"
	@echo "make clean   remove the build folders"

deps:
	@bash scripts/install-deps.sh

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

test: build
	ctest --preset $(PRESET) -j $(JOBS)

demo: build
	@bash scripts/demo.sh

bench: build
	@bash scripts/bench.sh $(BUILD_DIR)

asan: deps
	cmake --preset asan-ubsan
	cmake --build --preset asan-ubsan -j $(JOBS)
	ctest --preset asan-ubsan -j $(JOBS)

fuzz:
	@bash scripts/fuzz.sh

clean:
	rm -rf build build-debug build-asan build-fuzz
