"""Tritter from Python: open a packed ternary model, tokenize, generate, get logits and embeddings as numpy
arrays, train, fine-tune with LoRA and curate data. A thin layer over Tritter's C++ API (tritter.h); the guide is
docs/python.md.

    import tritter
    with tritter.Model.open("models/tritter-tiny-py/model.safetensors") as model:
        print(model.generate("def fibonacci(n):", max_tokens=64))
        for piece in model.generate("import os\\n", max_tokens=64, stream=True):
            print(piece, end="", flush=True)
        logits = model.logits(model.tokenize("def f"))   # float32 (n, V), no copy

Errors a user can cause raise tritter.Error (a RuntimeError) with the engine's message; bad argument values raise
ValueError and wrong types TypeError. Every long call releases the GIL, and Ctrl-C stops it cleanly
(KeyboardInterrupt; a training run writes its checkpoint first).
"""
from __future__ import annotations

import json as _json
import os as _os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

# OpenMP's threads spin only briefly (a few microseconds) before they sleep between parallel regions, unless the
# user chose otherwise: the runtime's default spin costs ~10x in decode speed on a machine whose cores are busy,
# sleeping at once a quarter on an idle one. The runtime reads this once, when the extension module below loads
# it, so it is set here, before the import (the tritter command sets the same).
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "300"

from ._tritter import (  # noqa: F401  (re-exported)
    BOS,
    BYTE_OFFSET,
    EOS,
    Error,
    Generation,
    Model,
    ModelInfo,
    Session,
    TokenStream,
    TrainStep,
    parse_size,
)
from . import _tritter

__all__ = [
    "Error", "Model", "ModelInfo", "Session", "Generation", "TokenStream", "TrainStep",
    "train", "finetune", "curate", "parse_size", "BOS", "EOS", "BYTE_OFFSET",
]
__version__ = "0.1.0"

_PathLike = Union[str, "_os.PathLike[str]"]
StepCallback = Callable[[TrainStep], Optional[bool]]
LogCallback = Callable[[str], Any]


def _paths(data: Union[_PathLike, Iterable[_PathLike]]) -> list:
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        return [_os.fspath(data)]
    return [_os.fspath(d) for d in data]


def train(config: _PathLike = "tiny", data: Union[_PathLike, Iterable[_PathLike], None] = None,
          out: Optional[_PathLike] = None, *, callback: Optional[StepCallback] = None,
          log: Optional[LogCallback] = None, **options: Any) -> dict:
    """Quantization-aware training from scratch, as `tritter train` does; checkpoints go to `out`.

    config: a preset ("test", "tiny", "small", ...) or a config JSON file. data: files or directories
    (.py .jsonl .jsonl.zst .txt .md by default). callback(step: TrainStep) is called after every optimizer step
    with step.step, .loss, .lr, .tokens_per_s, .val_bpb (None unless that step ran validation), ...; returning
    False stops the run after that step with a checkpoint (the summary then says interrupted=True). log(line)
    receives the progress lines `tritter train` prints. Options (the CLI's flags): steps, batch, seq, accum,
    schedule, lr, wd, min_lr_ratio, clip, warmup, seed, eval_every, eval_windows, checkpoint_every, keep,
    log_every, max_bad_steps, val_fraction, extensions, resume, log_json, recompute, threads. An unknown one is a
    TypeError.

    Returns a dict: steps_done, skipped, interrupted, last_loss, last_val_bpb, losses (one per step), tokens_per_s.
    An exception raised by a callback (or Ctrl-C) stops the run after its step, with a checkpoint, and is raised.
    """
    if data is not None:
        options["data"] = _paths(data)
    if out is not None:
        options["out"] = _os.fspath(out)
    return _tritter._train(_os.fspath(config), callback, log, **options)


def finetune(base: Optional[_PathLike] = None, data: Union[_PathLike, Iterable[_PathLike], None] = None,
             out: Optional[_PathLike] = None, *, rank: int = 16, alpha: float = 16.0, dropout: float = 0.0,
             targets: str = "q_proj,k_proj,v_proj,o_proj", init: str = "kaiming",
             callback: Optional[StepCallback] = None, log: Optional[LogCallback] = None, **options: Any) -> dict:
    """LoRA fine-tuning of a frozen packed model (`base`), as `tritter finetune` does; the adapter goes to `out`
    (open it with Model.open(base, lora=[out])). callback, log and options as for train(); the summary also holds
    base_val_bpb (None without validation data) and adapter_params."""
    if data is not None:
        options["data"] = _paths(data)
    if out is not None:
        options["out"] = _os.fspath(out)
    return _tritter._finetune(base, rank, alpha, dropout, targets, init, callback, log, **options)


def curate(inputs: Union[_PathLike, Iterable[_PathLike]], out: _PathLike, *,
           config: Union[_PathLike, Mapping[str, Any], None] = None, extract_triton: bool = False,
           text_key: Optional[str] = None, near_dedup: bool = True, threads: int = 0) -> dict:
    """The curation pipeline of `tritter curate` (docs/curation.md): secret gate, labels, dedup, JSONL.zst shards
    in `out` (built beside it and renamed into place). config: a .json/.toml file or a dict of the same keys.
    Returns the report (report.json's content) as a dict. Ctrl-C takes effect when the run has finished (the
    pipeline has no point at which to stop early)."""
    config_file, config_json = "", ""
    if isinstance(config, Mapping):
        config_json = _json.dumps(dict(config))
    elif config is not None:
        config_file = _os.fspath(config)
    report = _tritter._curate(_paths(inputs), _os.fspath(out), config_file, config_json, extract_triton,
                              text_key or "", near_dedup, threads)
    return _json.loads(report)
