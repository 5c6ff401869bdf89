#!/usr/bin/env bash
# Data-parallel scaling on this machine (docs/distributed.md): tokens/s of `tritter train` at 1 rank and 2 ranks
# (one OpenMP thread per rank, the same global batch), beside one process with 2 threads, and each 2-rank run's
# communication share (time inside the Communicator, waiting for the slower rank included) and bytes per step.
# Usage: bench/mpi_scaling.sh TRITTER_BINARY [CONFIG=tiny] [STEPS=10] [BATCH=4] [SEQ=128]
set -eu
bin="$1"; config="${2:-tiny}"; steps="${3:-10}"; batch="${4:-4}"; seq="${5:-128}"
root="$(cd "$(dirname "$0")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
args=(train --config "$config" --data "$root/src" --ext .cpp .h --steps "$steps" --batch "$batch" --seq "$seq"
      --warmup 1 --eval-every 0 --eval-windows 1 --checkpoint-every 0 --log-every 1000)
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) logical cores; $config, B=$batch T=$seq, $steps steps"
run() {  # label, command...
  local label="$1"; shift
  "$@" --out "$work/$label" > "$work/$label.txt" 2>&1 || { cat "$work/$label.txt"; exit 1; }
  local tps; tps=$(sed -n 's/.* \([0-9]*\) tokens\/s.*/\1/p' "$work/$label.txt" | tail -1)
  local comm; comm=$(grep -m1 '^communication' "$work/$label.txt" || echo "communication: -")
  printf '%-28s %8s tok/s   %s\n' "$label" "$tps" "$comm"
}
run "1-rank-1-thread" "$bin" -t 1 "${args[@]}"
run "1-rank-2-threads" "$bin" -t 2 "${args[@]}"
run "2-ranks-1-thread-zero1" mpirun --oversubscribe --bind-to core -np 2 "$bin" -t 1 "${args[@]}" --zero 1
run "2-ranks-1-thread-replicated" mpirun --oversubscribe --bind-to core -np 2 "$bin" -t 1 "${args[@]}" --zero 0
