#!/usr/bin/env python3
"""Embedding retrieval (docs/embedding-prediction.md): can a model's embedding tell which file a chunk came from?

From each of N source files (default 1000, a seeded sample of the .py files in the Python standard library's
subfolders and in /usr/lib/python3/dist-packages, so none of the top-level stdlib modules the exit-head
experiment trains on) two disjoint chunks of `--chunk`
bytes are cut at seeded offsets. Chunk A is the query, the N B chunks are the candidates; Recall@1 is the share of
queries whose most similar candidate is the chunk of the same file (chance 1/N), with Recall@5 and the mean
reciprocal rank beside it. Embeddings come from `tritter embed` (mean pooling, causal and bidirectional
attention); the baseline is the cosine of byte-bigram TF-IDF vectors (tf = count, idf = ln((1 + N)/(1 + df)) + 1).

    /usr/bin/python3 bench/embed_retrieval.py --tritter build/tritter --model RUN_OR_FILE [--model ...] --out /tmp/b3
"""
import argparse
import glob
import os
import random
import subprocess
import sys
import sysconfig
import time

import numpy as np


def pick_chunks(files, n, chunk, seed):
    rng = random.Random(seed)
    rng.shuffle(files)
    pairs = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < 2 * chunk + 64:
            continue
        a = rng.randrange(0, len(data) - 2 * chunk + 1)
        b = rng.randrange(a + chunk, len(data) - chunk + 1)  # disjoint, after A
        if rng.random() < 0.5:  # either order
            a, b = b, a
        pairs.append((path, data[a:a + chunk], data[b:b + chunk]))
        if len(pairs) == n:
            break
    if len(pairs) < n:
        sys.exit(f"only {len(pairs)} files of at least {2 * chunk + 64} bytes, expected {n}")
    return pairs


def tfidf(texts):
    counts = []
    for t in texts:
        a = np.frombuffer(t, dtype=np.uint8).astype(np.int64)
        counts.append(np.bincount(a[:-1] * 256 + a[1:], minlength=65536))
    m = np.stack(counts).astype(np.float64)
    keep = m.sum(0) > 0
    m = m[:, keep]
    df = (m > 0).sum(0)
    m *= np.log((1 + len(texts)) / (1 + df)) + 1
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def scores(q, c):
    sim = q @ c.T  # (N, N); row i's right answer is column i
    own = np.diag(sim)
    rank = (sim > own[:, None]).sum(1) + 1  # ties count for the right answer
    return {"recall@1": float((rank == 1).mean()), "recall@5": float((rank <= 5).mean()),
            "mrr": float((1.0 / rank).mean())}


def embed(a, model, files, attention, out):
    t0 = time.time()
    r = subprocess.run(["nice", "-n", "10", a.tritter, "-t", str(a.threads), "embed", "-m", model, "--pooling", "mean",
                        "--attention", attention, "-o", out] + files, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"tritter embed failed:\n{r.stdout}\n{r.stderr}")
    return np.load(out).astype(np.float64), time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tritter", default="build/tritter")
    ap.add_argument("--model", action="append", default=[], help="a model for tritter embed (repeatable)")
    ap.add_argument("--out", default="/tmp/tritter-embed-retrieval")
    ap.add_argument("--files", action="append", default=[],
                    help="a folder of .py files, repeatable (default: the stdlib's subfolders and dist-packages)")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attention", default="causal,bidirectional")
    a = ap.parse_args()
    if a.files:
        files = sorted(p for d in a.files for p in glob.glob(os.path.join(d, "**", "*.py"), recursive=True))
    else:
        root = sysconfig.get_paths()["stdlib"]
        files = sorted(p for p in glob.glob(os.path.join(root, "*", "**", "*.py"), recursive=True)
                       if "site-packages" not in p and "dist-packages" not in p)
        files += sorted(glob.glob("/usr/lib/python3/dist-packages/**/*.py", recursive=True))
    pairs = pick_chunks(files, a.n, a.chunk, a.seed)
    os.makedirs(os.path.join(a.out, "chunks"), exist_ok=True)
    qa, cb = [], []
    for i, (_, x, y) in enumerate(pairs):
        for side, data, lst in (("a", x, qa), ("b", y, cb)):
            p = os.path.join(a.out, "chunks", f"{i:05d}{side}.txt")
            with open(p, "wb") as f:
                f.write(data)
            lst.append(p)
    rows = []
    m = tfidf([x for _, x, _ in pairs] + [y for _, _, y in pairs])
    rows.append(("byte-bigram TF-IDF", "-", scores(m[:a.n], m[a.n:]), 0.0))
    for model in a.model:
        for attention in a.attention.split(","):
            e, s = embed(a, model, qa + cb, attention, os.path.join(a.out, "emb.npy"))
            rows.append((model, attention, scores(e[:a.n], e[a.n:]), s))
    print(f"{a.n} files, chunks of {a.chunk} bytes, seed {a.seed}; chance Recall@1 {1 / a.n:.4f}")
    print("| embedding | attention | Recall@1 | Recall@5 | MRR | embed s |")
    print("|---|---|---|---|---|---|")
    for name, att, r, s in rows:
        print(f"| {name} | {att} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['mrr']:.3f} | {s:.0f} |")


if __name__ == "__main__":
    main()
