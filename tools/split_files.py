#!/usr/bin/env python3
"""List the files of Tritter's train or validation split, and measure general compressors on them.

Tritter's data loader (src/train/data.cpp) puts a document in the validation split when
FNV-1a-64(bytes) % 1_000_000 < val_fraction * 1e6. This script applies the same rule to files (one file = one
document when directories are walked), so other tools see exactly the held-out files:

  tools/split_files.py /usr/lib/python3.11 --ext .py --split val            # one path per line
  tools/split_files.py /usr/lib/python3.11 --ext .py --split val --compress # bits per byte of xz -9, zstd -19 --long

Compressor figures: the split's files are concatenated in sorted path order, each followed by one byte (Tritter's
<eos> is one symbol per document), and the compressed size in bits is divided by that byte count: the same
denominator as Tritter's bits per byte.
"""
import argparse
import os
import subprocess
import sys


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def walk(paths, exts):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    if any(f.endswith(e) for e in exts):
                        yield os.path.join(root, f)
        elif os.path.isfile(p):
            yield p
        else:
            sys.exit(f"split_files: path '{p}': not found")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--ext", nargs="+", default=[".py", ".jsonl", ".jsonl.zst", ".txt", ".md"])
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--split", choices=["train", "val"], default="val")
    ap.add_argument("--compress", action="store_true", help="print xz -9 and zstd -19 --long bits per byte")
    a = ap.parse_args()
    chosen = []
    for path in sorted(set(walk(a.paths, a.ext))):
        with open(path, "rb") as f:
            data = f.read()
        is_val = fnv1a64(data) % 1_000_000 < a.val_fraction * 1e6
        if is_val == (a.split == "val"):
            chosen.append((path, data))
    if not a.compress:
        for path, _ in chosen:
            print(path)
        return
    blob = b"".join(data + b"\n" for _, data in chosen)  # the "\n" stands for <eos>: one symbol per document
    print(f"{a.split} split: {len(chosen)} files, {len(blob)} symbols (bytes + one <eos> per file)")
    for name, cmd in (("xz -9", ["xz", "-9", "-c"]), ("xz -9e", ["xz", "-9e", "-c"]),
                      ("zstd -19 --long", ["zstd", "-19", "--long", "-c", "-q"]),
                      ("zstd --ultra -22 --long", ["zstd", "--ultra", "-22", "--long", "-c", "-q"])):
        out = subprocess.run(cmd, input=blob, capture_output=True, check=True).stdout
        print(f"{name:>24}: {len(out)} bytes = {8 * len(out) / len(blob):.4f} bits/byte")


if __name__ == "__main__":
    main()
