#!/usr/bin/env python3
"""Exit-head experiment on bytes: the same tiny model trained with a linear cross-entropy head and with the tied
cosine head (+ the auxiliary embedding-prediction term), then evaluated on held-out documents: bits per byte,
top-1 accuracy of the exit, and (cosine) the KNN exit's agreement with the argmax of the logits.

    tools/exit_head_experiment.py --tritter build/tritter --data src --steps 400 --out /tmp/exit-head

Prints a Markdown table (docs/embedding-prediction.md records one run)."""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ARMS = {
    "linear CE": {"head_type": "linear"},
    "cosine_tied, beta 0.1": {"head_type": "cosine_tied", "embed_pred_loss": "cosine", "embed_pred_weight": "0.1"},
    "cosine_tied, beta 0": {"head_type": "cosine_tied"},
}


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tritter", default="build/tritter")
    ap.add_argument("--data", default="src")
    ap.add_argument("--out", default="/tmp/tritter-exit-head")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--arms", default=",".join(ARMS))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for name in a.arms.split(","):
        cfg = {"model_size": "custom", "hidden_size": a.hidden, "num_hidden_layers": a.layers,
               "num_attention_heads": 4, "intermediate_size": 4 * a.hidden, "max_position_embeddings": 256,
               "tie_word_embeddings": True, **ARMS[name]}
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        cfg_path = os.path.join(a.out, slug + ".json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        run_dir = os.path.join(a.out, slug)
        t0 = time.time()
        run([a.tritter, "-q", "train", "--config", cfg_path, "--data", a.data, "--out", run_dir, "--steps",
             str(a.steps), "--batch", "8", "--seq", "128", "--lr", "3e-3", "--seed", str(a.seed), "--eval-every",
             "0", "--checkpoint-every", str(a.steps), "--ext", ".cpp", "--ext", ".h"])
        train_s = time.time() - t0
        out = run([a.tritter, "eval", "-m", run_dir, "--data", a.data, "--ext", ".cpp", "--ext", ".h", "--split",
                   "val", "--seq", "128", "--windows", str(a.windows), "--exits"])
        bpb = float(re.search(r"([0-9.]+) bits/byte", out).group(1))
        m = re.search(r"knn exit: top-1 ([0-9.]+) % \(argmax of the logits ([0-9.]+) %\), agreement ([0-9.]+) %.*"
                      r"mean cos\(h, E_y\) ([-0-9.]+)", out)
        if m:
            knn, top1, agree, cos = m.group(1), m.group(2), m.group(3) + " %", m.group(4)
        else:
            top1 = re.search(r"top-1 \(argmax of the logits\) ([0-9.]+) %", out).group(1)
            knn, agree, cos = "-", "-", "-"
        rows.append((name, bpb, top1, knn, agree, cos, train_s))
        print(f"{name}: {out.strip()}", file=sys.stderr)
    print("| arm | val bits/byte (fp checkpoint) | top-1 argmax % | top-1 KNN % | agreement | mean cos(h, E_y) | train s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.4f} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]:.0f} |")


if __name__ == "__main__":
    main()
