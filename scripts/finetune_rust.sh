#!/usr/bin/env bash
# Issue 6's demonstration: a LoRA adapter that teaches the shipped Python model (models/tritter-tiny-py) Rust,
# on its frozen 2-bit base. Rust sources come from Debian's crate packages:
#   apt-get install --no-install-recommends librust-serde-dev librust-regex-dev librust-memchr-dev \
#     librust-anyhow-dev librust-itoa-dev        (with their dependencies: 69 crates, 20 MB of .rs under
#                                                 /usr/share/cargo/registry)
# Prints held-out Rust and Python bits per byte of the base and of base + adapter. The fine-tune replays the base's
# Python training files beside the Rust (REPLAY=0 trains on Rust alone): without them the adapter also rewrites how
# the model codes Python (docs/lora.md has both runs). The held-out files of each language stay held out: the
# split is by document hash, the same rule the base was trained with.
#
#   scripts/finetune_rust.sh [RUN_DIR] [THREADS]   (default runs/rust-lora, 2; needs build/tritter: make build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-build/tritter}
out=${1:-runs/rust-lora}
threads=${2:-2}
base=models/tritter-tiny-py/model.safetensors
rust=/usr/share/cargo/registry
python=/usr/lib/python3.11
[[ -d $rust ]] || { echo "no Rust crates under $rust: install the packages named at the top of $0" >&2; exit 1; }

if [[ -e "$out/latest" ]]; then
  "$bin" -t "$threads" finetune --resume "$out"
else
  data=("$rust")
  exts=(.rs)
  if [[ ${REPLAY:-1} != 0 ]]; then data+=("$python"); exts+=(.py); fi
  "$bin" -t "$threads" finetune --base "$base" --data "${data[@]}" --ext "${exts[@]}" --rank 16 --alpha 32 --targets all \
    --steps 800 --batch 4 --seq 512 --lr 2e-3 --eval-every 100 --eval-windows 64 --checkpoint-every 100 \
    --log-every 20 --log-json "$out.jsonl" --out "$out"
fi
for adapter in "" "$out"; do
  for data in "$rust --ext .rs" "$python --ext .py"; do
    "$bin" -t "$threads" eval --model "$base" ${adapter:+--lora "$adapter"} --data $data --split val --seq 512 \
      --windows 256
  done
done
