#!/usr/bin/env bash
# Scripted failure scenarios of `tritter train` on the test preset (each a few seconds):
#   kill9       kill -9 at random moments while checkpoints are written: every step-* left is whole, `latest`
#               names one, the killed run's temporaries are removed by the resume, which then finishes.
#   concurrent  a second run on the same --out while the first holds it: refused "locked by pid N" (the first's),
#               nothing of the first's lost; after the first ends, --resume continues it.
#   disk_full   a 2.5 MB tmpfs (mounted here, as root): the run dies with ENOSPC naming the file, leaves no
#               temporaries behind, and once space is back --resume finishes. Skipped (77) where mounting is
#               not allowed.
# Usage: scenarios_test.sh TRITTER_BINARY SCENARIO
set -u
TRITTER=$1
SCENARIO=$2
WORK=$(mktemp -d /tmp/tritter-scenario-XXXXXX)
MNT=""
cleanup() {
  [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL ($SCENARIO): $*"; exit 1; }

python3 -c "import sys; sys.stdout.write(('def f(x):\n    return x * 2\n' * 400))" > "$WORK/d.py" 2>/dev/null ||
  for i in $(seq 400); do printf 'def f(x):\n    return x * 2\n'; done > "$WORK/d.py"
TRAIN=(-q -t 1 train --config test --data "$WORK/d.py" --seq 32 --batch 2 --eval-every 0 --checkpoint-every 1)

# Every step-* directory of $1 holds the three files and a model that loads; `latest` names an existing one.
check_run() {
  local out=$1 d
  for d in "$out"/step-*; do
    [[ "$d" == *.tmp-* ]] && continue
    for f in model.safetensors optimizer.safetensors state.json; do
      [ -s "$d/$f" ] || fail "$d/$f is missing or empty"
    done
    "$TRITTER" inspect "$d/model.safetensors" > /dev/null 2>&1 || fail "$d/model.safetensors does not load"
  done
  if [ -f "$out/latest" ]; then
    [ -d "$out/$(cat "$out/latest")" ] || fail "latest names $(cat "$out/latest"), which does not exist"
  fi
}

case "$SCENARIO" in
kill9)
  for delay in 0.3 0.6 0.9; do
    out="$WORK/k$delay"
    "$TRITTER" "${TRAIN[@]}" --steps 100000 --keep 2 --out "$out" > /dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    # Wait for the first checkpoint (a loaded machine is slow), then kill mid-run.
    for _ in $(seq 100); do [ -f "$out/latest" ] && break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ -f "$out/latest" ] || fail "no checkpoint after ${delay}s"
    check_run "$out"
    step=$(sed 's/step-0*//' "$out/latest")
    "$TRITTER" "${TRAIN[@]}" --resume "$out" --steps $((step + 2)) > "$WORK/resume.log" 2>&1 ||
      fail "resume after kill -9 failed: $(cat "$WORK/resume.log")"
    check_run "$out"
    [ "$(cat "$out/latest")" = "$(printf 'step-%08d' $((step + 2)))" ] || fail "resume ended at $(cat "$out/latest")"
    left=$(find "$out" -name '*.tmp-*' | wc -l)
    [ "$left" -eq 0 ] || fail "temporaries of the killed run left: $(find "$out" -name '*.tmp-*')"
  done
  echo "kill9: 3 kills, every checkpoint whole, resumes finished, no temporaries left"
  ;;
concurrent)
  out="$WORK/run"
  "$TRITTER" "${TRAIN[@]}" --steps 100000 --keep 2 --out "$out" > /dev/null 2>&1 &
  first=$!
  for _ in $(seq 200); do [ -f "$out/latest" ] && break; sleep 0.05; done
  [ -f "$out/latest" ] || fail "the first run wrote no checkpoint"
  second=$("$TRITTER" "${TRAIN[@]}" --steps 3 --out "$out" 2>&1)
  rc=$?
  [ "$rc" -ge 1 ] && [ "$rc" -le 127 ] || fail "second run: exit $rc, expected 1..127: $second"
  [[ "$second" == *"is locked by pid $first"* ]] || fail "second run: expected 'locked by pid $first', got: $second"
  second=$("$TRITTER" "${TRAIN[@]}" --resume "$out" --steps 3 2>&1)
  [[ "$second" == *"is locked by pid $first"* ]] || fail "second --resume: expected 'locked by pid $first', got: $second"
  kill -TERM "$first"
  wait "$first"
  rc=$?
  [ "$rc" -eq 0 ] || fail "the first run, stopped by SIGTERM, exited $rc (expected 0 after its checkpoint)"
  check_run "$out"
  step=$(sed 's/step-0*//' "$out/latest")
  "$TRITTER" "${TRAIN[@]}" --resume "$out" --steps $((step + 1)) > "$WORK/resume.log" 2>&1 ||
    fail "resume after the lock was released failed: $(cat "$WORK/resume.log")"
  echo "concurrent: the second run was refused naming pid $first; the first's checkpoints intact and resumable"
  ;;
disk_full)
  MNT="$WORK/mnt"
  mkdir -p "$MNT"
  if ! mount -t tmpfs -o size=2500k tmpfs "$MNT" 2>/dev/null; then
    MNT=""
    echo "SKIP disk_full: cannot mount a tmpfs here (needs root and mount permission)"
    exit 77
  fi
  out="$MNT/run"
  # Each checkpoint of the test model is ~1.5 MB (weights + two moments): the first fits, the second cannot.
  log=$("$TRITTER" "${TRAIN[@]}" --steps 5 --keep 1 --out "$out" 2>&1)
  rc=$?
  [ "$rc" -ge 1 ] && [ "$rc" -le 127 ] || fail "disk-full run: exit $rc, expected 1..127: $log"
  [[ "$log" == *"No space left on device"* ]] || fail "disk-full run: expected ENOSPC in the message, got: $log"
  left=$(find "$out" -name '*.tmp-*' | wc -l)
  [ "$left" -eq 0 ] || fail "the disk-full run left temporaries: $(find "$out" -name '*.tmp-*' -exec du -sh {} +)"
  check_run "$out"
  [ "$(cat "$out/latest")" = "step-00000001" ] || fail "expected step-00000001 to survive, latest is $(cat "$out/latest")"
  mount -o remount,size=16m "$MNT" || fail "cannot enlarge the tmpfs"
  "$TRITTER" "${TRAIN[@]}" --resume "$out" --steps 5 --keep 1 > "$WORK/resume.log" 2>&1 ||
    fail "resume after space came back failed: $(cat "$WORK/resume.log")"
  [ "$(cat "$out/latest")" = "step-00000005" ] || fail "resume ended at $(cat "$out/latest")"
  check_run "$out"
  echo "disk_full: ENOSPC named, no temporaries left, resume finished once space was back"
  ;;
*)
  fail "unknown scenario"
  ;;
esac
