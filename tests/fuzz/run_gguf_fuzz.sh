#!/bin/bash
# Builds the GGUF fuzzer with clang's libFuzzer and runs it for a bounded time (CTest `fuzz_gguf`), as
# run_fuzz.sh does for safetensors. Usage: run_gguf_fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS]. Exits 77 (skipped)
# without clang's fuzzer runtime. New crashers are copied to tests/fuzz/gguf_crashers/ (commit them).
set -u
src=${1:?source dir}; out=${2:?build dir}/fuzz_gguf; secs=${3:-20}
command -v clang++ >/dev/null || { echo "clang++ not found: skipped"; exit 77; }
mkdir -p "$out/corpus"
probe="$out/probe.cpp"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe"
clang++ -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null || { echo "clang fuzzer runtime missing: skipped"; exit 77; }
bin="$out/gguf_fuzz"
if [ ! -x "$bin" ] || [ -n "$(find "$src/src/io" "$src/src/core" "$src/tests/fuzz" -newer "$bin" -name '*.[ch]*' 2>/dev/null | head -1)" ]; then
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src/src" \
    "$src/tests/fuzz/gguf_fuzz.cpp" "$src/src/io/gguf.cpp" "$src/src/io/mapped_file.cpp" \
    "$src/src/io/atomic_file.cpp" "$src/src/core/error.cpp" -o "$bin" || exit 1
fi
cp -n "$src"/tests/fuzz/gguf_seeds/* "$out/corpus/" 2>/dev/null
cd "$out" || exit 1
"$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$out/" \
  -dict="$src/tests/fuzz/gguf.dict" "$out/corpus" 2>&1 | tail -5
rc=${PIPESTATUS[0]}
for f in "$out"/crash-* "$out"/timeout-* "$out"/oom-*; do
  [ -e "$f" ] && mkdir -p "$src/tests/fuzz/gguf_crashers" && cp "$f" "$src/tests/fuzz/gguf_crashers/" && echo "new crasher: tests/fuzz/gguf_crashers/$(basename "$f")"
done
exit "$rc"
