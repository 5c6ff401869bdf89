#!/usr/bin/env python3
"""Exit-head experiment on bytes: one tiny model trained with a linear cross-entropy head and with the tied
cosine head (with and without the auxiliary embedding-prediction term), identical but for the head, on the same
data with the same steps and seed; then `tritter eval` on the held-out documents: bits per byte, top-1 of the
logits' argmax, top-1 of the KNN exit and its agreement with the argmax.

    /usr/bin/python3 tools/exit_head_experiment.py --tritter build/tritter --out /tmp/exit-head --jobs 2

The corpus defaults to the top-level modules of the Python standard library (`--data` to change it); the
held-out split is the trainer's own (5 % of the documents by hash). Each arm runs as `nice -n 10 tritter -t 1`.
Prints a Markdown table, the gates and the machine (docs/embedding-prediction.md records one run)."""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time

ARMS = {
    "linear CE": {"head_type": "linear"},
    "cosine_tied beta 0.1": {"head_type": "cosine_tied", "embed_pred_loss": "cosine", "embed_pred_weight": "0.1"},
    "cosine_tied beta 0": {"head_type": "cosine_tied"},
}


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def stdlib_corpus(out):
    """The standard library's top-level .py files, copied so the document set (and its split) is fixed."""
    d = os.path.join(out, "data")
    if not os.path.isdir(d):
        os.makedirs(d + ".tmp", exist_ok=True)
        for p in sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py"))):
            shutil.copy(p, d + ".tmp")
        os.rename(d + ".tmp", d)
    return d


def arm(a, name, data):
    cfg = {"model_size": "custom", "hidden_size": a.hidden, "num_hidden_layers": a.layers,
           "num_attention_heads": 4, "intermediate_size": 4 * a.hidden, "max_position_embeddings": 256,
           "tie_word_embeddings": True, **ARMS[name]}
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    cfg_path = os.path.join(a.out, slug + ".json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    run_dir = os.path.join(a.out, slug)
    exe = ["nice", "-n", "10", a.tritter, "-t", str(a.threads)]
    t0 = time.time()
    done = os.path.isdir(os.path.join(run_dir, f"step-{a.steps:08d}"))
    if not (a.reuse and done):
        run(exe + ["-q", "train", "--config", cfg_path, "--data", data, "--out", run_dir, "--overwrite", "--steps",
                   str(a.steps), "--batch", str(a.batch), "--seq", str(a.seq), "--lr", str(a.lr), "--seed",
                   str(a.seed), "--eval-every", "0", "--checkpoint-every", str(a.steps), "--ext", ".py"])
    train_s = None if a.reuse and done else time.time() - t0
    ev = ["eval", "-m", run_dir, "--data", data, "--ext", ".py", "--split", "val", "--seq", str(a.seq), "--exits"]
    if a.windows > 0:
        ev += ["--windows", str(a.windows)]
    out = run(exe + ev)
    bpb = float(re.search(r"([0-9.]+) bits/byte", out).group(1))
    m = re.search(r"knn exit: top-1 ([0-9.]+) % \(argmax of the logits ([0-9.]+) %\), agreement ([0-9.]+) % over "
                  r"(\d+) positions \((\d+) with.*mean cos\(h, E_y\) ([-0-9.]+)", out)
    if m:
        r = dict(knn=float(m.group(1)), top1=float(m.group(2)), agree=float(m.group(3)), n=int(m.group(4)),
                 small_margin=int(m.group(5)), cos=m.group(6))
    else:
        m = re.search(r"top-1 \(argmax of the logits\) ([0-9.]+) % over (\d+) positions", out)
        r = dict(knn=None, top1=float(m.group(1)), agree=None, n=int(m.group(2)), small_margin=None, cos="-")
    r.update(name=name, bpb=bpb, train_s=train_s, log=out.strip())
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tritter", default="build/tritter")
    ap.add_argument("--data", default=None, help="files or a directory of .py files (default: the stdlib corpus)")
    ap.add_argument("--out", default="/tmp/tritter-exit-head")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--windows", type=int, default=0, help="held-out windows evaluated (0: all)")
    ap.add_argument("--jobs", type=int, default=1, help="arms trained at the same time")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--reuse", action="store_true", help="evaluate an arm's finished run instead of training it again")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    data = a.data or stdlib_corpus(a.out)
    names = a.arms.split(",")
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(lambda n: arm(a, n, data), names))
    for r in rows:
        print(f"{r['name']}: {r['log']}", file=sys.stderr)
    print(f"D {a.hidden}, L {a.layers}, {a.steps} steps x {a.batch} x {a.seq} bytes, lr {a.lr}, seed {a.seed}, "
          f"-t {a.threads}, {a.jobs} arm(s) at a time; held-out positions {rows[0]['n']}")
    print("| arm | val bits/byte | top-1 argmax % | top-1 KNN % | agreement % | mean cos(h, E_y) | train s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        knn = "-" if r["knn"] is None else f"{r['knn']:.2f}"
        agree = "-" if r["agree"] is None else f"{r['agree']:.4f}"
        train_s = "-" if r["train_s"] is None else f"{r['train_s']:.0f}"
        print(f"| {r['name']} | {r['bpb']:.4f} | {r['top1']:.2f} | {knn} | {agree} | {r['cos']} | {train_s} |")
    base = next((r for r in rows if r["knn"] is None), None)
    if base:
        for r in rows:
            if r["knn"] is None:
                continue
            ok_bpb = r["bpb"] <= 1.03 * base["bpb"]
            ok_top1 = r["knn"] >= base["top1"] - 1.0
            ok_agree = r["agree"] == 100.0
            print(f"{r['name']}: BPB ratio {r['bpb'] / base['bpb']:.4f} ({'pass' if ok_bpb else 'FAIL'} <= 1.03), "
                  f"KNN top-1 {r['knn'] - base['top1']:+.2f} points ({'pass' if ok_top1 else 'FAIL'} >= -1), "
                  f"agreement {r['agree']:.4f} % ({'pass' if ok_agree else 'FAIL'} = 100)")


if __name__ == "__main__":
    main()
