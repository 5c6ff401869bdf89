#!/usr/bin/env bash
# install_test.sh MODE BUILD_DIR SOURCE_DIR CLI: installs BUILD_DIR into a fresh prefix, builds
# examples/installed/main.cpp against it (MODE cmake: find_package(tritter); pkg-config: one g++ line from
# `pkg-config --static --cflags --libs tritter`), makes a test model with the CLI and checks that the program
# exits 0 having printed the N tokens it generated.
set -euo pipefail
mode="$1" build="$2" src="$3" cli="$4"
n=5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
"$cli" init --size test --packed -o "$tmp/m.safetensors" > /dev/null
case "$mode" in
  cmake)
    # -O1 and no ccache: a small program, built once.
    cmake -S "$src/examples/installed" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
          -DCMAKE_CXX_FLAGS_RELEASE=-O1 > "$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
    cmake --build "$tmp/build" > "$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }
    program="$tmp/build/installed_example";;
  pkg-config)
    flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --static --cflags --libs tritter)
    echo "g++ -std=c++20 -O1 main.cpp $flags"
    # shellcheck disable=SC2086  # the flags are words
    g++ -std=c++20 -O1 "$src/examples/installed/main.cpp" -o "$tmp/installed_example" $flags
    program="$tmp/installed_example";;
  *) echo "install_test.sh: mode '$mode', expected cmake or pkg-config" >&2; exit 2;;
esac
out=$("$program" "$tmp/m.safetensors" "$n")
echo "$out"
tokens=$(grep -c '^token [0-9][0-9]*$' <<<"$out" || true)
if [ "$tokens" -ne "$n" ] || ! grep -qx "generated $n tokens" <<<"$out"; then
  echo "install_test ($mode): expected $n tokens, the program printed $tokens" >&2
  exit 1
fi
# Only the public header and what it includes are installed.
headers=$(cd "$prefix/include" && find . -type f | sort | tr '\n' ' ')
if [ "$headers" != "./tritter/core/error.h ./tritter/tritter.h " ]; then
  echo "install_test ($mode): installed headers: $headers, expected tritter/tritter.h and tritter/core/error.h" >&2
  exit 1
fi
echo "install_test ($mode): ok"
