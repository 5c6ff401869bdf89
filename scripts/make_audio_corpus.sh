#!/usr/bin/env bash
# Audio made on this machine, for training and evaluating the codec (no downloads): speech from espeak-ng (digit
# strings and short words, several voices and speeds; each WAV has its text beside it as .txt) and tones and noise
# from sox. Usage: scripts/make_audio_corpus.sh OUT [UTTERANCES] [SEED]
# Writes OUT/train and OUT/heldout (every tenth item), WAV as the tools make them (espeak-ng: 22.05 kHz mono).
set -euo pipefail
out=${1:?usage: make_audio_corpus.sh OUT [UTTERANCES] [SEED]}
count=${2:-400}
seed=${3:-1}
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make_audio_corpus: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
mkdir -p "$out/train" "$out/heldout"
RANDOM=$seed
digits=(zero one two three four five six seven eight nine)
words=(yes no stop go left right up down on off red green blue open close read write run test code)
voices=(en en-us en-gb en+f3 en+m3 en+f4 en-us+m7 en-gb+f2)
for ((i = 0; i < count; i++)); do
  split=train
  ((i % 10 == 9)) && split=heldout
  base=$(printf '%s/%s/%05d' "$out" "$split" "$i")
  case $((RANDOM % 5)) in
    0 | 1 | 2)  # speech: digits or words
      n=$((3 + RANDOM % 4))
      text=""
      if ((RANDOM % 2)); then
        for ((k = 0; k < n; k++)); do text+="${digits[RANDOM % 10]} "; done
      else
        for ((k = 0; k < n; k++)); do text+="${words[RANDOM % ${#words[@]}]} "; done
      fi
      text=${text% }
      espeak-ng -v "${voices[RANDOM % ${#voices[@]}]}" -s $((110 + RANDOM % 100)) -p $((20 + RANDOM % 60)) \
        -w "$base.wav" "$text"
      printf '%s\n' "$text" > "$base.txt"
      ;;
    3)  # two tones, gliding or steady
      f1=$((80 + RANDOM % 900)) f2=$((200 + RANDOM % 3000)) len=$((1 + RANDOM % 3))
      sox -n -r 24000 -b 16 "$base.wav" synth "$len" sine "$f1-$((f1 + RANDOM % 400))" synth "$len" sine amod "$f2" \
        gain -$((3 + RANDOM % 12)) 2>/dev/null
      ;;
    4)  # coloured noise with a band-pass
      len=$((1 + RANDOM % 2)) kind=(whitenoise pinknoise brownnoise)
      sox -n -r 24000 -b 16 "$base.wav" synth "$len" "${kind[RANDOM % 3]}" band $((300 + RANDOM % 3000)) 500 \
        gain -$((6 + RANDOM % 12)) 2>/dev/null
      ;;
  esac
done
echo "make_audio_corpus: $(ls "$out/train"/*.wav | wc -l) training and $(ls "$out/heldout"/*.wav | wc -l) held-out files in $out"
