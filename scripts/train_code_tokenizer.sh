#!/usr/bin/env bash
# Trains the code tokenizer docs/tokenizers.md chooses for a small model: 4,096 BPE ids (SentencePiece) on 30 MB of
# the Python that Debian installs (the standard library's training split, then /usr/lib/python3/dist-packages),
# written as a Hugging Face tokenizer.json; prints bytes per token on the held-out standard-library files.
# About 3 minutes on 2 cores.
#
#   scripts/train_code_tokenizer.sh [OUT.json] [VOCAB]   (default runs/code-4k.json 4096; needs build/tritter)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-build/tritter}
out=${1:-runs/code-4k.json}
vocab=${2:-4096}
mkdir -p "$(dirname "$out")"
nice -n 10 "$bin" -t 2 train-tokenizer -i /usr/lib/python3.11 /usr/lib/python3/dist-packages --language python \
    --max-input-bytes 30000000 --eval /usr/lib/python3.11 --vocab-size "$vocab" -o "$out" \
    --sp-model "${out%.json}.model"
