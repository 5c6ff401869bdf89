#!/usr/bin/env bash
# Reproduces the shipped model models/tritter-tiny-py (see its README.md): the "tiny" preset (10.8M parameters)
# trained ternary (QAT) on the Python standard library Debian installs, and the full-precision baseline trained the
# same way, side by side on one core each (the two together keep a 2-core machine busy for about 1 h 40 min).
# Run it again after an interruption: each run resumes from its latest checkpoint.
#
#   scripts/train_code_model.sh [RUN_DIR]   (default runs/tiny-py; needs build/tritter: make build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-build/tritter}
runs=${1:-runs/tiny-py}
data=/usr/lib/python3.11
model_dir=models/tritter-tiny-py
mkdir -p "$runs" "$model_dir"

common=(--config tiny --data "$data" --ext .py --steps 4000 --batch 4 --seq 512
        --eval-every 250 --eval-windows 64 --checkpoint-every 250 --keep 2 --log-every 50)
run() {  # run NAME [extra flags]: train, or continue an interrupted run exactly
  local name=$1
  shift
  if [[ -e "$runs/$name/latest" ]]; then
    "$bin" -t 1 train --resume "$runs/$name" >> "$runs/$name.log" 2>&1
  else
    "$bin" -t 1 train "${common[@]}" "$@" --log-json "$runs/$name.jsonl" --out "$runs/$name" > "$runs/$name.log" 2>&1
  fi
}
echo "training QAT and the full-precision baseline; progress in $runs/qat.log and $runs/fp.log"
run qat &
qat=$!
run fp --no-quant &
fp=$!
wait $qat
wait $fp

"$bin" export "$runs/qat" -o "$model_dir/model.safetensors"
# Validation bits per byte on every held-out window (the training log's figure uses 64 of them).
for name in qat fp; do
  "$bin" eval --model "$runs/$name" --data "$data" --ext .py --split val --seq 512
done
"$bin" eval --model "$model_dir/model.safetensors" --data "$data" --ext .py --split val --seq 512
tools/split_files.py "$data" --ext .py --split val --compress
