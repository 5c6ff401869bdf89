#!/usr/bin/env python3
"""Synthetic long-range retrieval (docs/long-context.md): a key planted early, asked for at the end.

A question is `@KEY` (--key-length characters of [A-Z0-9], letters the filler never has), then lines of random
filler words (never '@' or '?'), then `?KEY`: the characters after '?' can only be predicted by finding the '@'
line, d bytes back. A tiny ternary model is trained with `tritter train` on documents that chain several such
questions (distances log-uniform in 8 .. seq − 16, so that short ones teach the look-up and long ones its reach; the
window sampler cuts documents anywhere, and a question whose key lies before the window cannot be learned, so one
question per document left most of a window's text without one), exported, and asked with greedy decoding
(`tritter generate --temp 0`) on fresh documents of one question each: accuracy of the whole key, of its first
character and of its characters in place, against the distance d. A 1-character key measures the look-up alone;
longer keys also need the characters copied in order.
Training is bounded in wall time too: after --train-minutes it is sent SIGTERM, which makes `tritter train` write a
checkpoint at the step it reached and stop; the steps done are recorded with the results. --skip-train evaluates
the run already in --out.

    /usr/bin/python3 bench/retrieval.py --tritter build/tritter --out /tmp/retrieval --seq 512 --steps 6000 \
        --threads 2 --key-length 1
"""
import argparse
import json
import math
import os
import random
import re
import signal
import subprocess
import time

# Keys use characters the filler never has, so a key character's earlier occurrences are the key's own.
ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
WORDS = ["the", "of", "and", "to", "in", "is", "it", "that", "for", "on", "as", "with", "was", "at", "by", "be",
         "this", "from", "or", "an", "are", "not", "but", "had", "his", "they", "you", "were", "her", "all"]


def filler(rng, n):
    out = []
    size = 0
    while size < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + "\n"
        out.append(line)
        size += len(line)
    return "".join(out)[:n]


def key(rng, length):
    return "".join(rng.choice(ALPHA) for _ in range(length))


def document(rng, distance, length):
    k = key(rng, length)
    # "@KEY\n" + filler + "\n?" + KEY: distance = bytes from the key's first character to the answer's.
    return "@" + k + "\n" + filler(rng, max(0, distance - length - 3)) + "\n?" + k + "\n", k


def training_document(rng, seq, questions, length):
    """`questions` questions in a row, each at a distance drawn log-uniformly in 8 .. seq − 16."""
    parts = []
    for _ in range(questions):
        d = int(round(math.exp(rng.uniform(math.log(8), math.log(seq - 16)))))
        parts.append(document(rng, d, length)[0])
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tritter", default="build/tritter")
    ap.add_argument("--out", default="/tmp/tritter-retrieval")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--questions", type=int, default=8, help="questions per training document")
    ap.add_argument("--per-distance", type=int, default=40)
    ap.add_argument("--train-minutes", type=float, default=30.0)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--key-length", type=int, default=1, help="characters per key")
    ap.add_argument("--no-quant", action="store_true", help="train in full precision (quant=false) instead of ternary")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(1)
    with open(os.path.join(a.out, "train.jsonl"), "w", encoding="utf-8") as f:
        for _ in range(a.docs):
            f.write(json.dumps({"text": training_document(rng, a.seq, a.questions, a.key_length)}) + "\n")
    cfg = {"model_size": "custom", "hidden_size": a.width, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
           "num_key_value_heads": a.heads, "intermediate_size": 4 * a.width, "max_position_embeddings": a.seq}
    with open(os.path.join(a.out, "cfg.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f)
    run = os.path.join(a.out, "run")
    log = os.path.join(a.out, "log.jsonl")
    train_out = os.path.join(a.out, "train.out")
    t0 = time.time()
    if not a.skip_train:
        p = subprocess.Popen([a.tritter, "-t", str(a.threads), "train", "--config", os.path.join(a.out, "cfg.json"),
                              "--data", os.path.join(a.out, "train.jsonl"), "--steps", str(a.steps), "--batch",
                              str(a.batch), "--seq", str(a.seq), "--schedule", "cosine", "--lr", str(a.lr), "--warmup",
                              "50", "--eval-every", "0", "--checkpoint-every", "100000", "--keep", "1",
                              "--log-every", "50", "--out", run, "--log-json", log] + (["--no-quant"] if a.no_quant else []),
                             stdout=open(train_out, "w", encoding="utf-8"))
        try:
            p.wait(timeout=a.train_minutes * 60)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)  # a checkpoint at the step reached, then exit
            p.wait()
        if p.returncode != 0:
            raise SystemExit(f"tritter train exited with {p.returncode}")
    train_s = time.time() - t0
    # "done at step N: loss (nats) L, ..." or "interrupted at step N: ..." (the step of the checkpoint written).
    m = None
    if os.path.exists(train_out):
        with open(train_out, encoding="utf-8") as f:
            m = re.search(r"(done|interrupted) at step (\d+): loss \(nats\) ([0-9.]+)", f.read())
    if m:
        steps_done, final_loss = int(m.group(2)), float(m.group(3))
    else:  # a run trained outside this script: its last logged step
        with open(log, encoding="utf-8") as f:
            last = [json.loads(line) for line in f if line.strip()][-1]
        steps_done, final_loss = last["step"], last["loss"]
    packed = os.path.join(a.out, "model.safetensors")
    if os.path.exists(packed):
        os.remove(packed)
    subprocess.run([a.tritter, "export", run, "-o", packed], check=True, stdout=subprocess.DEVNULL)
    erng = random.Random(7)
    distances = [d for d in (8, 16, 32, 64, 128, 256, 384, 448, a.seq - 16) if d <= a.seq - 16]
    results, first, chars = {}, {}, {}
    L = a.key_length
    for d in sorted(set(distances)):
        hit = hit1 = hitc = 0
        for _ in range(a.per_distance):
            doc, k = document(erng, d, L)
            prompt = doc[: doc.rindex("?") + 1]
            r = subprocess.run([a.tritter, "-t", "1", "generate", "-m", packed, "-p", prompt, "--temp", "0", "-n",
                                str(L), "--no-bos", "--json"], capture_output=True, text=True, check=True)
            text = json.loads(r.stdout)["text"]
            hit += text[:L] == k
            hit1 += text[:1] == k[0]
            hitc += sum(x == y for x, y in zip(text[:L], k))
        results[d], first[d] = hit / a.per_distance, hit1 / a.per_distance
        chars[d] = hitc / (L * a.per_distance)
        print(f"distance {d}: key accuracy {results[d]:.3f}, first character {first[d]:.3f}, "
              f"characters in place {chars[d]:.3f}", flush=True)
    chance = 1.0 / len(ALPHA) ** L
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"accuracy_by_distance": results, "first_char_accuracy_by_distance": first,
                   "chars_in_place_by_distance": chars, "key_length": L, "chance": chance,
                   "first_char_chance": 1.0 / len(ALPHA), "train_s": None if a.skip_train else train_s,
                   "config": cfg, "steps": a.steps, "steps_done": steps_done, "final_loss": final_loss,
                   "batch": a.batch, "seq": a.seq, "lr": a.lr, "questions": a.questions, "quant": not a.no_quant,
                   "per_distance": a.per_distance}, f, indent=1)
    print(f"steps done {steps_done} of {a.steps}, final loss {final_loss:.4f} nats; chance {chance:.2e}")


if __name__ == "__main__":
    main()
