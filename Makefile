# The two entry points of the README. Everything else is CMake (build/ is Release, the default).
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: demo test setup build
setup:
	bash scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600
