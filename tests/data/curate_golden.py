#!/usr/bin/env python3
"""Golden output of `tritter curate` on a fixed corpus: the shards, labels, rejects, duplicates and skips must stay
byte-identical when the pipeline is only made faster.

The corpus is the Python standard library (/usr/lib/python3.11, when present) plus the secret_eval tree (written
from its fixed seed, so it has rejects). The golden digests (tests/data/curate_golden.json) are keyed by a digest of
the corpus itself: on a machine whose standard library differs, the test skips (exit 77) instead of failing.
Runs at 1 and 2 threads and with batches smaller than the corpus must give the same bytes.

usage: curate_golden.py TRITTER_BINARY [--update]   (--update records the current outputs as the golden ones)
"""
import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "curate_golden.json")
STDLIB = "/usr/lib/python3.11"


def write_secret_tree(root):
    spec = importlib.util.spec_from_file_location("score", os.path.join(HERE, "secret_eval", "score.py"))
    score = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score)
    for rel, content in score.positives() + score.negatives():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)


def tree_digest(root):
    h = hashlib.sha256()
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(d, name)
            h.update(os.path.relpath(p, root).encode("utf-8", "surrogateescape") + b"\0")
            if os.path.islink(p):
                h.update(b"link:" + os.readlink(p).encode("utf-8", "surrogateescape"))
            else:
                try:
                    with open(p, "rb") as f:
                        h.update(hashlib.sha256(f.read()).digest())
                except OSError:
                    h.update(b"unreadable")
    return h.hexdigest()


def output_digests(out):
    """sha256 of every output file except the timed ones (report.json, summary.log)."""
    digests = {}
    for d, dirs, files in os.walk(out):
        for name in files:
            rel = os.path.relpath(os.path.join(d, name), out)
            if rel in ("report.json", "summary.log"):
                continue
            with open(os.path.join(d, name), "rb") as f:
                digests[rel] = hashlib.sha256(f.read()).hexdigest()
    return dict(sorted(digests.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tritter")
    ap.add_argument("--update", action="store_true")
    args = ap.parse_args()
    tritter = os.path.abspath(args.tritter)
    with tempfile.TemporaryDirectory(prefix="tritter-golden-") as tmp:
        write_secret_tree(os.path.join(tmp, "secret_eval"))
        inputs = ["secret_eval"]
        key = {"secret_eval": tree_digest(os.path.join(tmp, "secret_eval"))}
        if os.path.isdir(STDLIB):
            inputs.insert(0, STDLIB)
            key[STDLIB] = tree_digest(STDLIB)
        key_s = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"))
        # Batches smaller than the corpus too: the outputs must not depend on where batch boundaries fall.
        small_batches = os.path.join(tmp, "small_batches.json")
        with open(small_batches, "w") as f:
            json.dump({"batch_docs": 61}, f)
        for threads, config in (("1", []), ("2", []), ("2", ["--config", small_batches])):
            out = os.path.join(tmp, "out" + threads + ("small" if config else ""))
            r = subprocess.run([tritter, "curate", *inputs, "-o", out, "--threads", threads, "--quiet", *config],
                               cwd=tmp, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stdout, r.stderr)
                print(f"FAIL: tritter curate exited {r.returncode}")
                return 1
            got = output_digests(os.path.join(tmp, out))
            if threads == "1":
                first = got
            elif got != first:
                print(f"FAIL: the outputs at {threads} threads {' '.join(config)} differ from those at 1 thread")
                return 1
        golden = {}
        if os.path.exists(GOLDEN):
            with open(GOLDEN) as f:
                golden = json.load(f)
        if args.update:
            golden[key_s] = {"inputs": inputs, "outputs": first}
            with open(GOLDEN, "w") as f:
                json.dump(golden, f, indent=1, sort_keys=True)
                f.write("\n")
            print(f"recorded {len(first)} output digests for corpus {key_s[:16]}")
            return 0
        if key_s not in golden:
            print(f"SKIP: no golden outputs for this corpus ({key_s[:16]}; inputs {inputs}); record them with --update")
            return 77
        want = golden[key_s]["outputs"]
        bad = [k for k in sorted(set(want) | set(first)) if want.get(k) != first.get(k)]
        for k in bad:
            print(f"differs: {k}: golden {want.get(k, 'absent')[:16]}, now {first.get(k, 'absent')[:16]}")
        if bad:
            print(f"FAIL: {len(bad)} of {len(want)} outputs differ from the golden run")
            return 1
        print(f"ok: {len(want)} outputs byte-identical to the golden run (corpus {key_s[:16]})")
        return 0


if __name__ == "__main__":
    sys.exit(main())
