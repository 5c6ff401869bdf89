#!/usr/bin/env python3
"""Depth up-scaling at equal extra compute (docs/training.md "Growing a model").

Trains a small ternary model (2 layers) on the shipped model's data (the Python standard library), grows it to 4
layers with `tritter expand` and continues, and compares, at the same extra training compute:
  grown:     small → 4 layers (--method interleave, optimizer reset), S more steps;
  small:     the small model continued (expand to its own depth = the same weights, optimizer reset), S·r steps,
             r = (4-layer FLOPs per token) / (2-layer FLOPs per token), so both spend the same extra compute;
  scratch:   the 4-layer model from scratch, S steps (the same extra compute, none of the small's);
  scratch+:  the 4-layer model from scratch for S + S0/r steps (the same total compute as grown, small included).
Every run uses the same schedule, batch, sequence length and seed. Validation bits per byte over the held-out
split is logged every --eval-every steps; the script writes results.json, a markdown table and a PNG of val bpb
against extra compute (in small-model steps) to --out.

    /usr/bin/python3 bench/grow_compare.py --tritter build/tritter --out /tmp/grow
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import plot_loss  # noqa: E402  (the built-in PNG rasterizer)


def config(layers, width):
    return {"model_size": "custom", "hidden_size": width, "num_hidden_layers": layers, "num_attention_heads": 4,
            "num_key_value_heads": 4, "intermediate_size": 4 * width, "max_position_embeddings": 1024}


def flops_per_token(c, seq):
    """Forward+backward FLOPs per token: 6 × matmul weights (layers + head) plus attention scores and values."""
    D, F, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], 264
    per_layer = 4 * D * D + 2 * D * F
    return 6 * (L * per_layer + V * D) + 6 * L * seq * D  # attention: q·k and p·v over seq/2 keys on average


def run(cmd, log):
    t = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}")
    return time.time() - t


def val_curve(path):
    xs, ys = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            if "val_bpb" in j and j["val_bpb"] >= 0:
                xs.append(j["step"])
                ys.append(j["val_bpb"])
    return xs, ys


def eval_bpb(tritter, model, data, seq, windows, log):
    out = subprocess.run([tritter, "-t", "1", "eval", "--model", model, "--data", data, "--ext", ".py", "--split",
                          "val", "--seq", str(seq), "--windows", str(windows)], capture_output=True, text=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(out.stdout + out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"eval failed: {out.stderr}")
    at = out.stdout.find(" bits/byte")
    return float(out.stdout[:at].split()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tritter", default="build/tritter")
    ap.add_argument("--data", default="/usr/lib/python3.11")
    ap.add_argument("--out", default="/tmp/tritter-grow")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--small-steps", type=int, default=600, help="S0: the small model's own training")
    ap.add_argument("--extra-steps", type=int, default=400, help="S: steps of the 4-layer runs")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-windows", type=int, default=32)
    ap.add_argument("--method", default="interleave")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    log = os.path.join(a.out, "commands.log")
    small_c, big_c = config(2, a.width), config(4, a.width)
    for name, c in (("small.json", small_c), ("big.json", big_c)):
        with open(os.path.join(a.out, name), "w", encoding="utf-8") as f:
            json.dump(c, f)
    r = flops_per_token(big_c, a.seq) / flops_per_token(small_c, a.seq)
    S0, S = a.small_steps, a.extra_steps
    common = ["--data", a.data, "--ext", ".py", "--batch", str(a.batch), "--seq", str(a.seq), "--schedule", "cosine",
              "--lr", str(a.lr), "--warmup", "20", "--eval-every", str(a.eval_every), "--eval-windows",
              str(a.eval_windows), "--checkpoint-every", "100000", "--keep", "1", "--log-every", "10", "--seed", "1"]
    T = [a.tritter, "-t", "1"]
    d = lambda *p: os.path.join(a.out, *p)  # noqa: E731
    times = {}
    times["small0"] = run(T + ["train", "--config", d("small.json"), "--steps", str(S0), "--out", d("small0"),
                               "--log-json", d("small0.jsonl")] + common, log)
    # Growth and the equal-compute continuation of the small model (expand to its own depth: weights as they are).
    run(T + ["expand", d("small0"), d("grown"), "--layers", "4", "--method", a.method, "--optimizer", "reset"], log)
    run(T + ["expand", d("small0"), d("small1"), "--layers", "2", "--method", "interleave", "--optimizer", "reset"], log)
    run(T + ["expand", d("small0"), d("solar.safetensors"), "--layers", "4", "--method", "solar"], log)
    bpb = {k: eval_bpb(a.tritter, d(k), a.data, a.seq, 64, log) for k in ("small0", "grown", "solar.safetensors")}
    s_small = int(round(S * r))
    times["grown"] = run(T + ["train", "--resume", d("grown"), "--steps", str(S), "--log-json", d("grown.jsonl")], log)
    times["small"] = run(T + ["train", "--resume", d("small1"), "--steps", str(s_small), "--log-json",
                              d("small.jsonl")], log)
    times["scratch"] = run(T + ["train", "--config", d("big.json"), "--steps", str(S), "--out", d("scratch"),
                                "--log-json", d("scratch.jsonl")] + common, log)
    s_plus = int(round(S + S0 / r))
    times["scratch_plus"] = run(T + ["train", "--config", d("big.json"), "--steps", str(s_plus), "--out",
                                     d("scratch_plus"), "--log-json", d("scratch_plus.jsonl")] + common, log)
    # Extra compute in small-model steps: a 4-layer step costs r of them. scratch+ is shifted by S0 (its x is the
    # total compute minus the small's pretraining, so all curves share the axis of "compute after S0").
    curves = {
        "grown": [(x * r, y) for x, y in zip(*val_curve(d("grown.jsonl")))],
        "small": [(x, y) for x, y in zip(*val_curve(d("small.jsonl")))],
        "scratch": [(x * r, y) for x, y in zip(*val_curve(d("scratch.jsonl")))],
        "scratch_plus": [(x * r - S0, y) for x, y in zip(*val_curve(d("scratch_plus.jsonl")))],
    }
    final = {k: v[-1][1] for k, v in curves.items() if v}
    res = {"ratio_flops_4_to_2_layers": r, "S0": S0, "S": S, "small_steps": s_small, "scratch_plus_steps": s_plus,
           "bpb_after_expansion": bpb, "final_val_bpb": final, "curves": curves, "wall_s": times,
           "config": {"small": small_c, "big": big_c, "batch": a.batch, "seq": a.seq, "lr": a.lr,
                      "method": a.method}}
    with open(d("results.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    series = [([p[0] for p in curves[k]], [p[1] for p in curves[k]]) for k in ("grown", "small", "scratch",
                                                                               "scratch_plus")]
    plot_loss.plot_builtin(series, d("grow.png"))
    print(json.dumps({k: res[k] for k in ("ratio_flops_4_to_2_layers", "bpb_after_expansion", "final_val_bpb",
                                          "wall_s")}, indent=1))


if __name__ == "__main__":
    main()
