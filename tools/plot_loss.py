#!/usr/bin/env python3
"""Draw a loss curve PNG from `tritter train --log-json` files (one JSON object per line).

Uses matplotlib when it is installed; otherwise a small built-in rasterizer (python3 standard library only:
zlib + struct) draws training loss (blue) and validation bits-per-byte·ln2 (orange, i.e. nats, same axis) against
the step. Several logs (e.g. QAT and the FP baseline) are drawn in turn with distinct colours.

    tools/plot_loss.py run/log.jsonl [fp/log.jsonl ...] -o loss.png
"""
import argparse
import json
import math
import struct
import zlib

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def read_log(path):
    steps, loss, vsteps, val = [], [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            j = json.loads(line)
            if "loss" in j and j["loss"] == j["loss"]:
                steps.append(j["step"])
                loss.append(j["loss"])
            if "val_bpb" in j:
                vsteps.append(j["step"])
                val.append(j["val_bpb"] * math.log(2.0))
    return steps, loss, vsteps, val


def write_png(path, width, height, pixels):
    raw = b"".join(b"\x00" + bytes(pixels[y * width * 3:(y + 1) * width * 3]) for y in range(height))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def plot_builtin(series, out, width=900, height=500):
    pix = bytearray([255] * (width * height * 3))
    margin = 50
    xs = [x for s in series for x in s[0]]
    ys = [y for s in series for y in s[1]]
    if not xs:
        raise SystemExit("plot_loss: no points in the logs")
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def put(x, y, c):
        if 0 <= x < width and 0 <= y < height:
            i = (y * width + x) * 3
            pix[i:i + 3] = bytes(c)

    def to_px(x, y):
        px = margin + int((x - x0) / (x1 - x0) * (width - 2 * margin))
        py = height - margin - int((y - y0) / (y1 - y0) * (height - 2 * margin))
        return px, py

    for x in range(margin, width - margin):  # axes
        put(x, height - margin, (0, 0, 0))
    for y in range(margin, height - margin):
        put(margin, y, (0, 0, 0))
    for k in range(11):  # horizontal grid every tenth of the range
        gy = margin + k * (height - 2 * margin) // 10
        for x in range(margin, width - margin, 3):
            put(x, gy, (210, 210, 210))
    for idx, (sx, sy) in enumerate(series):
        c = COLOURS[idx % len(COLOURS)]
        prev = None
        for x, y in zip(sx, sy):
            p = to_px(x, y)
            if prev:
                n = max(abs(p[0] - prev[0]), abs(p[1] - prev[1]), 1)
                for t in range(n + 1):
                    put(prev[0] + (p[0] - prev[0]) * t // n, prev[1] + (p[1] - prev[1]) * t // n, c)
            prev = p
    write_png(out, width, height, pix)
    print(f"{out}: steps {x0}..{x1}, loss (nats) {y0:.3f}..{y1:.3f}; colours in order: train loss, val (nats) "
          "per log")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+")
    ap.add_argument("-o", "--out", default="loss.png")
    a = ap.parse_args()
    series = []
    for path in a.logs:
        steps, loss, vsteps, val = read_log(path)
        series.append((steps, loss))
        if val:
            series.append((vsteps, val))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plot_builtin(series, a.out)
        return
    fig, ax = plt.subplots(figsize=(9, 5))
    k = 0
    for path in a.logs:
        steps, loss, vsteps, val = read_log(path)
        ax.plot(steps, loss, label=f"{path}: train loss")
        if val:
            ax.plot(vsteps, val, "o-", label=f"{path}: val (bpb·ln2)")
        k += 1
    ax.set_xlabel("step")
    ax.set_ylabel("nats / token")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.savefig(a.out, dpi=100)
    print(a.out)


if __name__ == "__main__":
    main()
