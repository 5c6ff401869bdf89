#!/bin/bash
# Builds one of the text-layer fuzzers (tokenizer_json, chat_template) with clang's libFuzzer and runs it for a
# bounded time (CTest `fuzz_tokenizer_json`, `fuzz_chat_template`). Usage: run_text_fuzz.sh SOURCE_DIR BUILD_DIR
# TARGET [SECONDS]. Exits 77 (CTest "skipped") when clang, its fuzzer runtime or ICU's headers are missing. New
# crashers are copied to tests/fuzz/TARGET_crashers/ (commit them after fixing).
set -u
src=${1:?source dir}; out=${2:?build dir}/fuzz; target=${3:?target}; secs=${4:-20}
command -v clang++ >/dev/null || { echo "clang++ not found: skipped"; exit 77; }
pkg-config --exists icu-uc || { echo "ICU (libicu-dev) not found: skipped"; exit 77; }
mkdir -p "$out/corpus_$target"
probe="$out/probe_$target.cpp"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe"
clang++ -fsanitize=fuzzer "$probe" -o "$out/probe_$target" 2>/dev/null || { echo "clang fuzzer runtime missing: skipped"; exit 77; }
bin="$out/${target}_fuzz"
sources=("$src/tests/fuzz/${target}_fuzz.cpp" "$src"/src/text/*.cpp "$src/src/core/error.cpp")
if [ ! -x "$bin" ] || [ -n "$(find "$src/src/text" "$src/src/core" "$src/tests/fuzz" -newer "$bin" -name '*.[ch]*' 2>/dev/null | head -1)" ]; then
  # shellcheck disable=SC2046
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src/src" \
    "${sources[@]}" $(pkg-config --cflags --libs icu-uc) -o "$bin" || exit 1
fi
cp -n "$src/tests/fuzz/seeds_$target"/* "$out/corpus_$target/" 2>/dev/null
# Every crasher found so far runs first (libFuzzer reads the corpus before mutating): a fixed bug stays fixed.
cp -n "$src/tests/fuzz/${target}_crashers"/* "$out/corpus_$target/" 2>/dev/null
mkdir -p "$src/tests/fuzz/${target}_crashers"
cd "$out" || exit 1
"$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$out/${target}-" \
  -dict="$src/tests/fuzz/$target.dict" "$out/corpus_$target" 2>&1 | tail -5
rc=${PIPESTATUS[0]}
for f in "$out/${target}"-crash-* "$out/${target}"-timeout-* "$out/${target}"-oom-*; do
  [ -e "$f" ] && cp "$f" "$src/tests/fuzz/${target}_crashers/" && echo "new crasher: tests/fuzz/${target}_crashers/$(basename "$f")"
done
exit "$rc"
