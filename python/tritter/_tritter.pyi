"""Type stubs of the compiled module tritter._tritter (python/src/tritter_module.cpp); docs/python.md."""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, os.PathLike[str]]
_Prompt = Union[str, bytes, Sequence[int]]

BOS: int  # <bos> token id (1)
EOS: int  # <eos> token id (2)
BYTE_OFFSET: int  # byte b is token id b + BYTE_OFFSET (8)

class Error(RuntimeError):
    """What a user can cause (a missing or malformed file, a bad option, a prompt longer than the context):
    the message names the file or option, what was found and what was expected."""

def parse_size(text: str, what: str = "size") -> int:
    """'512M', '1.5G', '2GiB', '1000000' -> bytes."""

class ModelInfo:
    path: str
    size: str  # the preset it came from ("tiny") or "custom"
    vocab_size: int
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_context: int
    parameters: int
    add_bos: bool
    streaming: bool
    lora_adapters: int
    ternary_layout: str  # "t16" or "t20": the layout the ternary weights run in

class Generation:
    """generate(..., details=True): the text and tokens generated, and where the time went."""
    text: str  # invalid UTF-8 bytes as U+FFFD
    text_bytes: bytes
    tokens: List[int]  # generated ids (<eos> not included)
    prompt_tokens: int
    decode_steps: int
    prompt_s: float
    decode_s: float
    sample_s: float
    stop_reason: str  # "eos", "stop", "length", "context", "callback"
    decode_tokens_per_s: float

class TokenStream(Iterator[str]):
    """generate(..., stream=True): pieces of text (whole UTF-8 characters) as the worker thread makes them.
    Holds its Model alive. Leaving the loop early, close() or garbage collection stops the generation."""
    def __iter__(self) -> TokenStream: ...
    def __next__(self) -> str: ...
    def close(self) -> None: ...
    def __enter__(self) -> TokenStream: ...
    def __exit__(self, *args: Any) -> None: ...
    @property
    def result(self) -> Optional[Generation]:
        """The Generation once the iterator is exhausted, else None."""

class TrainStep:
    """One optimizer step, as the callback of train() / finetune() receives it."""
    step: int  # steps done after this one (1-based)
    steps: int  # the run's total
    loss: float  # mean training loss, nats per token; NaN for a skipped step
    lr: float
    wd: float
    grad_norm: float
    tokens: int  # training tokens seen so far
    tokens_per_s: float
    elapsed_s: float
    val_bpb: Optional[float]  # validation bits per byte when this step ran validation
    skipped: int  # non-finite steps skipped so far
    skipped_step: bool

class Session:
    """A sequence of its own over a Model (a KV cache); used by one thread at a time. Keeps its Model alive."""
    def forward(self, ids: _Prompt, all: bool = False) -> npt.NDArray[np.float32]:
        """Run ids after what the session holds: logits (V,) of the last one, or (n, V) with all=True."""
    def reset(self) -> None: ...
    @property
    def position(self) -> int: ...
    @property
    def context(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Session: ...
    def __exit__(self, *args: Any) -> None: ...

class Model:
    @staticmethod
    def open(path: _Path, *, context: int = 0, threads: int = 0, kv_cache: str = "f32", batch: int = 64,
             kernels: str = "auto", lora: Union[_Path, Sequence[_Path], None] = None, stream: bool = False,
             memory_budget: Union[int, str] = 0, desktop: str = "headless", layer_group_size: int = 0,
             prefetch: bool = True, head: str = "auto", ternary_layout: str = "auto") -> Model:
        """Open a model the way `tritter generate -m PATH` does: a packed file, a full-precision checkpoint or a
        training run directory. context (0: min(max_context, 4096)), threads
        (0: the physical cores this process may use), kv_cache (f32, f16, int8, int4), batch and kernels (auto, reference, scalar, avx2,
        avx512vnni) apply to the sessions its calls use and are checked at the first of them. lora: adapter
        directories ("DIR" or "DIR:weight"). stream/memory_budget/desktop/layer_group_size/prefetch: layer
        streaming (docs/streaming.md). head: the LM head run, as `generate --head`: auto (as the file stores it),
        f32, i8, or i4 (4-bit groups of 32, quantized at load; about half of i8's bytes per token)."""
    @staticmethod
    def random(preset: str = "test", seed: int = 1, *, threads: int = 0) -> Model: ...
    @property
    def info(self) -> ModelInfo: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None:
        """Drop the model; memory is freed once no TokenStream or Session made from it remains."""
    def __enter__(self) -> Model: ...
    def __exit__(self, *args: Any) -> None: ...
    def tokenize(self, text: Union[str, bytes], *, bos: Optional[bool] = None, eos: bool = False) -> List[int]:
        """Byte b is id b + 8; bos defaults to the model file's add_bos."""
    def detokenize(self, ids: Sequence[int], *, show_special: bool = False) -> str: ...
    def detokenize_bytes(self, ids: Sequence[int]) -> bytes: ...
    def token_piece(self, id: int) -> str: ...
    def generate(self, prompt: _Prompt, *, max_tokens: int = 128, temperature: float = 0.0, top_k: int = 40,
                 top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0, repeat_last_n: int = 64,
                 seed: int = 0, stop: Union[str, Sequence[str], None] = None, stop_at_eos: bool = True,
                 bos: Optional[bool] = None, stream: bool = False,
                 details: bool = False) -> Union[str, Generation, TokenStream]:
        """Continue prompt: the text (str); stream=True: a TokenStream; details=True: a Generation.
        temperature 0 is greedy. A str prompt gets <bos> when bos (default: the file's add_bos) says so."""
    def logits(self, ids: _Prompt, *, last: bool = False) -> npt.NDArray[np.float32]:
        """Logits of ids run as one new sequence: (n, V), or (V,) with last=True; the array owns its memory."""
    def embed(self, texts: Union[str, bytes, Sequence[str]]) -> npt.NDArray[np.float32]:
        """Unit vector (hidden_size,) of one text, or (N, hidden_size) of a list."""
    def session(self, *, context: Optional[int] = None, threads: Optional[int] = None,
                kv_cache: Optional[str] = None) -> Session: ...

def _train(config: str, callback: Optional[Callable[[TrainStep], Optional[bool]]] = None,
           log: Optional[Callable[[str], Any]] = None, **options: Any) -> dict: ...
def _finetune(base: Optional[_Path], rank: int = 16, alpha: float = 16.0, dropout: float = 0.0,
              targets: str = "q_proj,k_proj,v_proj,o_proj", init: str = "kaiming",
              callback: Optional[Callable[[TrainStep], Optional[bool]]] = None,
              log: Optional[Callable[[str], Any]] = None, **options: Any) -> dict: ...
def _curate(inputs: List[str], out: str, config: str = "", config_json: str = "", extract_triton: bool = False,
            text_key: str = "", near_dedup: bool = True, threads: int = 0) -> str: ...
