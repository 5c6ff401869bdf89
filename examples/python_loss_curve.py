# %% [markdown]
# # Tritter from Python: generate, embed, and train with a live loss curve
# Cells are marked `# %%` (Jupyter, VS Code); as a script:
# `PYTHONPATH=build/python /usr/bin/python3 examples/python_loss_curve.py [--steps N] [--out DIR]`.
# The loss curve is drawn with matplotlib when it is installed, and printed as text otherwise.

# %%
import argparse
import os
import sys
import tempfile

import numpy as np
import tritter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = argparse.ArgumentParser()
args.add_argument("--steps", type=int, default=60)
args.add_argument("--out", default=None, help="checkpoint directory (default: a temporary one)")
args = args.parse_args([] if "ipykernel" in sys.modules else None)

# %% Generate with the shipped model: whole text, then streamed piece by piece.
model = tritter.Model.open(os.path.join(ROOT, "models", "tritter-tiny-py", "model.safetensors"))
print(model.info)
print(model.generate("def fibonacci(n):", max_tokens=48, temperature=0.8, seed=1))
for piece in model.generate("import os\n", max_tokens=48, temperature=0.8, seed=2, stream=True):
    print(piece, end="", flush=True)
print()

# %% Embeddings are unit vectors: a dot product is the cosine similarity.
e = model.embed(["def add(a, b):\n    return a + b", "def plus(x, y):\n    return x + y", "Hello, world!"])
print("cosine similarities:\n", np.round(e @ e.T, 3))

# %% Train a small model from scratch; the callback gets every step's loss, learning rate and tokens/s.
data = os.path.join("/usr/lib/python3.11", "json")  # a few files of Python source
out = args.out or tempfile.mkdtemp(prefix="tritter-run-")
losses = []


def on_step(s: tritter.TrainStep):
    losses.append(s.loss)
    if s.step % 10 == 0 or s.step == s.steps:
        print(f"step {s.step}/{s.steps}  loss {s.loss:.3f}  lr {s.lr:.2e}  {s.tokens_per_s:,.0f} tok/s")


summary = tritter.train("test", data, out, steps=args.steps, batch=4, seq=64, warmup=5, lr=3e-3, eval_every=0,
                        checkpoint_every=1000, val_fraction=0, callback=on_step)
print(f"{summary['steps_done']} steps, last loss {summary['last_loss']:.3f}, checkpoints in {out}")

# %% The loss curve.
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    plt.plot(range(1, len(losses) + 1), losses)
    plt.xlabel("step")
    plt.ylabel("training loss (nats/token)")
    if "ipykernel" in sys.modules:
        plt.show()
    else:
        plt.savefig(os.path.join(out, "loss.png"))
        print("loss curve:", os.path.join(out, "loss.png"))
else:  # text: one row per tenth of the run, a bar as long as the loss
    top = max(losses)
    for i in range(0, len(losses), max(1, len(losses) // 10)):
        print(f"{i + 1:5d} {losses[i]:6.3f} " + "#" * int(50 * losses[i] / top))
