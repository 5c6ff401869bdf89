#!/usr/bin/env bash
# The main job: Python written by the shipped ternary model (models/tritter-tiny-py: 10.8M parameters, 2-bit
# weights, trained by Tritter on the Python standard library) for a fixed prompt, and its speed in tokens/s.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build}/tritter"
model=models/tritter-tiny-py/model.safetensors
prompt='def fibonacci(n):'
echo "== $model ($(du -h "$model" | cut -f1)), prompt: $prompt"
echo "== sampled at temperature 0.8 (the default) with seed 1: the same text on every run on this kernel tier"
echo "== (any thread count); the timings line gives tokens/s"
echo
# Greedy decoding (--temp 0) of a model this small falls into runs of spaces; the default temperature keeps it
# writing code, and a fixed seed makes the demo repeatable.
"$bin" generate -m "$model" -p "$prompt" -n 256 --temp 0.8 --seed 1
echo
echo "== model card: models/tritter-tiny-py/README.md; all commands: $bin --help"
