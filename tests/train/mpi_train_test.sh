#!/usr/bin/env bash
# Data-parallel training over MPI (docs/distributed.md), end to end through the binary on a tiny model:
#  1. `mpirun -np 2` with one thread per rank equals the one-process run with two workers (the same global batch,
#     rank r taking the rows worker r takes): losses, gradient norms and the step-20 weights and AdamW moments
#     bit for bit, with ZeRO-1 (--zero 1) and with replicated optimizer state (--zero 0);
#  2. a 2-rank checkpoint resumed on 1 process, and a 1-process checkpoint resumed on 2 ranks, end bit for bit
#     where the uninterrupted run ends;
#  3. ZeRO-1's AdamW bytes on rank 0 equal `hw check --mode train --ranks 2`'s planned term;
#  4. a rank killed mid-run ends the job within the timeout with Open MPI's message, and the resumed job ends
#     bit for bit where the uninterrupted run ends.
#  5. SIGUSR1 to mpirun stops every rank cleanly at the same step with a checkpoint there.
# Usage: mpi_train_test.sh TRITTER_BINARY SOURCE_DIR. Exit 77 (skipped) without mpirun.
set -u
bin="$1"
src="$2"
command -v mpirun >/dev/null || { echo "mpirun not found: skipped"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader  # one machine: shared memory only (no network probing)
mpi=(mpirun --oversubscribe --bind-to none -np 2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
same() { cmp -s "$1" "$2" || fail "$1 and $2 differ"; }
fields() {
  /usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1]):
    j = json.loads(l); print(*(repr(j[k]) for k in ("step", "loss", "lr", "wd", "grad_norm", "tokens")))' "$1"
}
cd "$work"
args=(train --config test --data "$src/docs" --ext .md --batch 4 --seq 32 --warmup 2 --eval-every 0
      --eval-windows 8 --keep 20 --log-every 1)

# 1. equality
"$bin" -t 2 "${args[@]}" --steps 20 --checkpoint-every 10 --out s1 --log-json s1.jsonl > s1.txt || fail "one-process run"
for z in 1 0; do
  "${mpi[@]}" "$bin" -t 1 "${args[@]}" --steps 20 --checkpoint-every 10 --zero $z --out m$z --log-json m$z.jsonl > m$z.txt 2>&1 \
    || { cat m$z.txt; fail "mpirun -np 2 --zero $z"; }
  for f in model optimizer; do same s1/step-00000020/$f.safetensors m$z/step-00000020/$f.safetensors; done
  fields s1.jsonl > a.txt  # step, loss, lr, wd, grad_norm, tokens (tokens/s and times differ)
  fields m$z.jsonl > b.txt
  [ "$(wc -l < a.txt)" = 20 ] || fail "s1.jsonl: expected 20 lines"
  cmp -s a.txt b.txt || { diff a.txt b.txt | head; fail "per-step loss/grad norm differ (--zero $z)"; }
done
# Rank 1 prints nothing: the 2-rank output is rank 0's lines only (one per step plus the header lines and 'done').
[ "$(grep -c '^step ' m1.txt)" = 20 ] || { cat m1.txt; fail "expected 20 step lines from rank 0 alone"; }
echo "ok: 2 ranks = 1 process (2 workers), bit for bit over 20 steps, ZeRO-1 and replicated"

# 2. resume across rank counts
mkdir r21 r12
cp -r m1/step-00000010 r21/ && cp -r s1/step-00000010 r12/
"$bin" -t 2 train --resume r21 --out r21 -q > /dev/null || fail "resume 2 -> 1"
"${mpi[@]}" "$bin" -t 1 train --resume r12 --out r12 -q > r12.txt 2>&1 || { cat r12.txt; fail "resume 1 -> 2"; }
for d in r21 r12; do
  for f in model optimizer; do same s1/step-00000020/$f.safetensors $d/step-00000020/$f.safetensors; done
done
echo "ok: resume 2 ranks -> 1 process and 1 -> 2 ranks end bit for bit at the uninterrupted weights and moments"

# 3. ZeRO-1 optimizer memory against the planner
measured=$(sed -n 's/.*ZeRO-1 optimizer state \([0-9]*\) bytes on rank 0.*/\1/p' m1.txt)
planned=$("$bin" hw check test --mode train --ranks 2 --batch 4 -c 32 --profile cpu --json |
          /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin)
print(sum(i["bytes"] for i in j["checks"][0]["items"] if i["name"].startswith("AdamW")))')
full=$("$bin" hw check test --mode train --batch 4 -c 32 --profile cpu --json |
       /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin)
print(sum(i["bytes"] for i in j["checks"][0]["items"] if i["name"].startswith("AdamW")))')
[ -n "$measured" ] && [ "$measured" = "$planned" ] || fail "ZeRO-1 AdamW bytes: measured '$measured', planned '$planned'"
[ $((2 * measured)) -le $((full + 8)) ] || fail "ZeRO-1 AdamW bytes $measured not half of $full"
echo "ok: ZeRO-1 AdamW state on rank 0 = $measured bytes = planned (one process: $full)"

# 4. a rank killed mid-run; then resume
"$bin" -t 2 "${args[@]}" --steps 60 --checkpoint-every 5 --out s60 -q > /dev/null || fail "60-step reference"
timeout 60 "${mpi[@]}" "$bin" -t 1 "${args[@]}" --steps 60 --checkpoint-every 5 --out k -q > k.txt 2>&1 &
job=$!
for _ in $(seq 1 300); do [ -d k/step-00000010 ] && break; sleep 0.05; done
[ -d k/step-00000010 ] || fail "no checkpoint at step 10 to kill after"
launcher=$(pgrep -P $job -x mpirun || echo $job)  # the mpirun under timeout
victim=$(pgrep -P "$launcher" -f "tritter.*--out k" | tail -1)
[ -n "$victim" ] || fail "found no rank to kill"
t_kill=$(date +%s.%N)
kill -9 "$victim"
wait $job
rc=$?
elapsed=$(/usr/bin/python3 -c "import time; print(f'{time.time() - $t_kill:.1f}')")
[ $rc -ne 0 ] || fail "the job with a killed rank exited 0"
[ $rc -ne 124 ] || fail "the job with a killed rank hung until the 60 s timeout"
grep -q "exited on signal 9" k.txt || { cat k.txt; fail "no message naming the killed rank"; }
[ -d k/step-00000060 ] && fail "the killed job finished anyway (kill came too late)"
echo "ok: killed a rank (pid $victim): the job ended ${elapsed} s later (rc $rc): $(grep -m1 'exited on signal' k.txt | sed 's/^ *//')"
from=$(cat k/latest)
"${mpi[@]}" "$bin" -t 1 train --resume k -q > kr.txt 2>&1 || { cat kr.txt; fail "resume after the kill"; }
for f in model optimizer; do same s60/step-00000060/$f.safetensors k/step-00000060/$f.safetensors; done
echo "ok: resumed from $from and ended bit for bit at the uninterrupted step 60"

# 5. a clean stop of the whole job: mpirun forwards SIGUSR1, the ranks agree on the step and checkpoint it
timeout 60 "${mpi[@]}" "$bin" -t 1 "${args[@]}" --steps 500 --checkpoint-every 5 --out u -q > u.txt 2>&1 &
job=$!
for _ in $(seq 1 300); do [ -d u/step-00000005 ] && break; sleep 0.05; done
launcher=$(pgrep -P $job -x mpirun || echo $job)
kill -USR1 "$launcher"
wait $job || { cat u.txt; fail "the job stopped by SIGUSR1 exited non-zero"; }
stopped=$(sed -n 's/^interrupted at step \([0-9]*\):.*/\1/p' u.txt)
[ -n "$stopped" ] || { cat u.txt; fail "no 'interrupted at step' line"; }
[ "$(cat u/latest)" = "$(printf 'step-%08d' "$stopped")" ] || fail "latest is $(cat u/latest), expected step $stopped"
echo "ok: SIGUSR1 to mpirun stopped both ranks at step $stopped with a checkpoint there"
