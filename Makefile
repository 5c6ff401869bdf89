# The two entry points of the README. Everything else is CMake (build/ is Release, the default).
BUILD ?= build
JOBS ?= $(shell nproc)
# The sanitizer build (docs/testing.md): clang, ASan + UBSan, libFuzzer targets. `make sanitize` (part of `make
# test`) compiles all of src/ and cli/ with clang (the second compiler's check) and the unit tests of SAN_LABELS,
# and runs those and the fuzz targets, each for FUZZ_SECONDS. `make fuzz` is the fuzz targets alone.
SAN_BUILD ?= build-san
SAN_LABELS ?= core|io|text|model|data|audio
SAN_TARGETS ?= tritter_cli fuzz $(foreach l,$(subst |, ,$(SAN_LABELS)),tritter_$(l)_tests)
# Left out of the sanitizer run for time: equivalence runs over megabytes of text and the 2 GB JSONL line, whose
# code the smaller tests and the fuzz targets already take through (they still run in build/).
SAN_EXCLUDE ?= HfTokenizerReference|TwoGigabyte
FUZZ_SECONDS ?= 10
# libFuzzer's seed: fixed for `make sanitize` (and so `make test`: the same inputs on every clean run), random (0)
# for `make fuzz`.
FUZZ_SEED ?= 1

.PHONY: demo test setup build sanitize fuzz san-configure
setup:
	bash scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

san-configure: setup
	cmake -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO='-O1 -gline-tables-only -DNDEBUG' \
	  -DCMAKE_C_FLAGS_RELWITHDEBINFO='-O1 -gline-tables-only -DNDEBUG' -DTRITTER_SANITIZE=address,undefined \
	  -DTRITTER_FUZZ=ON -DTRITTER_FUZZ_SECONDS=$(FUZZ_SECONDS) -DTRITTER_BUILD_BENCH=OFF -DTRITTER_PYTHON=OFF

fuzz: san-configure
	cmake --build $(SAN_BUILD) -j $(JOBS) --target fuzz
	cd $(SAN_BUILD) && TRITTER_FUZZ_SEED=0 ctest --output-on-failure -j $(JOBS) --timeout 600 -L '^fuzz$$'

sanitize: san-configure
	cmake --build $(SAN_BUILD) -j $(JOBS) --target $(SAN_TARGETS)
	cd $(SAN_BUILD) && TRITTER_FUZZ_SEED=$(FUZZ_SEED) ctest --output-on-failure -j $(JOBS) --timeout 600 \
	  -L '^($(SAN_LABELS)|fuzz)$$' -E '$(SAN_EXCLUDE)'

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600
	$(MAKE) --no-print-directory sanitize
