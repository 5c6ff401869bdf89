#!/usr/bin/env python3
"""What the Python bindings cost: tokens/s of Model.generate from Python against `tritter generate` on the same
model, prompt, length and threads, and the time of one Model.logits call for one token.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py [--cli build/tritter] [--threads N]

Both sides decode greedily with <eos> ignored, so every run makes the same tokens. The CLI reports its own
in-process prompt and decode seconds (--json); Python is timed around the call, so its figure also includes what
the binding adds (argument conversion, the per-token GIL check for Ctrl-C, the returned str). Runs alternate,
and the median of each side is reported. A figure, not a test: the machine's other load moves both."""
import argparse
import json
import os
import statistics
import subprocess
import time

import tritter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "tritter-tiny-py", "model.safetensors"))
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "tritter"))
    ap.add_argument("--prompt", default="def fibonacci(n):")
    ap.add_argument("-n", "--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--logits-calls", type=int, default=2000)
    a = ap.parse_args()

    model = tritter.Model.open(a.model, threads=a.threads)
    model.generate(a.prompt, max_tokens=16, stop_at_eos=False)  # warm: the session, the page cache
    py_total, py_decode, cli_total, cli_decode = [], [], [], []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        g = model.generate(a.prompt, max_tokens=a.tokens, stop_at_eos=False, details=True)
        wall = time.perf_counter() - t0
        py_total.append(len(g.tokens) / wall)
        py_decode.append(g.decode_steps / g.decode_s)
        out = subprocess.run([a.cli, "-t", str(a.threads), "generate", "-m", a.model, "-p", a.prompt,
                              "-n", str(a.tokens), "--ignore-eos", "--json"],
                             check=True, capture_output=True, text=True).stdout
        j = json.loads(out)
        cli_total.append(j["generated_tokens"] / (j["prompt_seconds"] + j["decode_seconds"]))
        cli_decode.append(j["decode_tokens_per_second"])

    ids = model.tokenize("d", bos=False)
    model.logits(ids, last=True)
    times = []
    for _ in range(a.logits_calls):
        t0 = time.perf_counter()
        model.logits(ids, last=True)
        times.append(time.perf_counter() - t0)
    floor = []
    for _ in range(a.logits_calls):
        t0 = time.perf_counter()
        model.tokenize("d", bos=False)
        floor.append(time.perf_counter() - t0)

    def med(x):
        return statistics.median(x)

    info = model.info
    print(f"model: {a.model} ({info.parameters:,} parameters), prompt {a.prompt!r}, {a.tokens} tokens, "
          f"threads {a.threads or os.cpu_count()}, {a.runs} runs each (median)")
    print(f"generate, prompt + decode: Python {med(py_total):.1f} tok/s (timed around the call), "
          f"CLI {med(cli_total):.1f} tok/s; Python/CLI = {med(py_total) / med(cli_total):.4f}")
    print(f"decode only (the engine's own timer): Python {med(py_decode):.1f} tok/s, CLI {med(cli_decode):.1f} "
          f"tok/s; Python/CLI = {med(py_decode) / med(cli_decode):.4f}")
    print(f"logits of one token (reset + forward + a (V,) array): median {med(times) * 1e6:.1f} us over "
          f"{a.logits_calls} calls; a trivial binding call (tokenize 'd'): {med(floor) * 1e6:.2f} us")


if __name__ == "__main__":
    main()
