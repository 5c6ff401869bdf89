#!/usr/bin/env python3
"""Every command the docs show runs: the lines of ```sh / ```bash / ```console blocks in README.md and docs/*.md
that start with `tritter`, `build/tritter` or `make` (after an optional `$ ` prompt; a trailing `\\` joins the next
line) run in order, one shell per file, in a fresh temporary directory (models/ linked in) with the build's binary
first on PATH, so
a page's own `tritter init ... -o m.st` makes the file its later commands read. A documented command that fails
breaks the build. Long ones (make demo, 7B runs, data the page does not make) are in SKIP with the reason.
Synopses (`tritter hw check SIZE [--profile P]`) belong in plain ``` or ```text blocks, which are not run.

usage: docs_commands_test.py SOURCE_DIR TRITTER_BINARY
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# (regex on the command, why it is skipped). Keep each one honest: a reason a reader would accept.
SKIP = [
    (r"^make (demo|test|setup|build)\b", "installs packages and builds or trains for minutes (the README's set-up)"),
    (r"\b(7B|8B|13B|30B|70B)\b.*\b(generate|init|bench)\b|\b(generate|init|bench)\b.*\b(7B|8B|13B|30B|70B)\b",
     "a multi-gigabyte model"),
    (r"\bbench (kernels|train|stream)\b(?!.*--quick)", "a full benchmark: minutes"),
    (r"--data (crates|python-stdlib|data)/", "a data set the page does not make"),
    (r"\btrain\b.*--steps (\d{3,})", "a training run of hundreds of steps"),
    (r"\bfinetune --resume rust-lora\b", "continues the fine-tune above, skipped for its data"),
    (r"\bcurate\b", "curation's commands are tested by its own suite"),
]
LANGS = {"sh", "bash", "console", "shell"}
BUDGET_S = 60.0


def commands(path):
    """(line number, command) of the runnable lines of one Markdown file."""
    out, fence, joined, start = [], None, "", 0
    for i, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        m = re.match(r"^\s*```\s*(\w*)", line)
        if m:
            fence = None if fence is not None else m.group(1)
            continue
        if fence not in LANGS:
            continue
        text = line.strip()
        if joined:
            joined += " " + text.rstrip("\\").strip()
            if not text.endswith("\\"):
                out.append((start, joined))
                joined = ""
            continue
        if text.startswith("$ "):
            text = text[2:]
        if not re.match(r"^(tritter|build/tritter|make|printf)\b", text):  # printf: the files a page makes
            continue
        if text.endswith("\\"):
            joined, start = text.rstrip("\\").strip(), i
        else:
            out.append((i, text))
    return out


def skip_reason(cmd):
    for pattern, why in SKIP:
        if re.search(pattern, cmd):
            return why
    return None


def main():
    src, binary = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    files = [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))
    bindir = tempfile.mkdtemp(prefix="tritter-docs-bin-")
    os.symlink(binary, os.path.join(bindir, "tritter"))
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    ran = skipped = 0
    failures = []
    t0 = time.monotonic()
    for path in files:
        cmds = commands(path)
        if not cmds:
            continue
        work = tempfile.mkdtemp(prefix="tritter-docs-")
        os.symlink(os.path.join(src, "models"), os.path.join(work, "models"))  # the shipped model, read-only use
        for line, cmd in cmds:
            where = f"{os.path.relpath(path, src)}:{line}"
            why = skip_reason(cmd)
            if why:
                print(f"skip {where}: {cmd}\n     ({why})")
                skipped += 1
                continue
            run = re.sub(r"^build/tritter\b", "tritter", cmd)
            r = subprocess.run(["bash", "-c", run], cwd=work, env=env, capture_output=True, text=True, errors="replace",
                               timeout=120)
            ran += 1
            status = "ok  " if r.returncode == 0 else "FAIL"
            print(f"{status} {where}: {cmd}")
            if r.returncode != 0:
                failures.append(f"{where}: `{cmd}` exited {r.returncode}:\n{(r.stdout + r.stderr)[-2000:]}")
        shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(bindir, ignore_errors=True)
    elapsed = time.monotonic() - t0
    print(f"{ran} documented commands ran, {skipped} skipped, {len(failures)} failed, {elapsed:.1f} s")
    for f in failures:
        print("\n" + f)
    if ran == 0:
        print("no documented command ran: the extraction is broken")
        return 1
    if elapsed > BUDGET_S:  # a warning: a shared machine can be slow; a reader of the log sees it
        print(f"warning: the documented commands took {elapsed:.0f} s, over the {BUDGET_S:.0f} s aim")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
