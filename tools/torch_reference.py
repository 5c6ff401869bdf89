#!/usr/bin/env python3
"""Independent PyTorch implementation of Tritter's training maths (docs/maths.md).

Optional tool (needs `apt-get install python3-torch`, PyTorch 1.13 on Debian 12; not a build or test dependency).
Run it with the system interpreter (`/usr/bin/python3 tools/torch_reference.py ...`) where a pyenv/venv python3
shadows it. numpy (a python3-torch dependency) is used only to serialize tensors.
Safetensors are read and written by hand (8-byte little-endian header length, JSON header, raw data).

    torch_reference.py grads --model CKPT --batch BATCH -o OUT [--steps K --lr 1e-3 --wd 0.1 --clip 1]
                             [--dtype float64|float32]
        Same protocol and output names as `tritter grads`: logits [B,T,V], loss [], grad.<name> (raw gradient
        of the first loss, before clipping), and with --steps K, losses [K] (loss before each of K
        clip + AdamW updates on the same batch). All outputs F32, computed by autograd in --dtype.
    torch_reference.py compare A.safetensors B.safetensors [--tol 1e-4]
        Per-tensor max |A-B|, max |A-B| / max(|A|,|B|) ("rel") and rel-L2; exit 1 if any rel > tol.
    torch_reference.py bench [--threads 1 --interop 1 --blas-threads N --steps 20 --warmup 3 --quant/--no-quant]
        Trains the `tritter bench train` configuration on random tokens with plain idiomatic PyTorch (nn.Module, autograd,
        torch.optim.AdamW) and prints tokens/s (median step) and the BLAS torch uses.
    torch_reference.py variant CKPT -o OUT [--set key=value ...] [--jitter-gains 0.1 --seed 0]
        Copy a checkpoint with config keys changed (e.g. quant=false post_norm=both mlp_act=relu2_glu
        sliding_window=5 tie_word_embeddings=true z_loss=1e-4); tensors the new config needs are added
        (N(0, init_std) weights, unit gains), tensors it no longer has are dropped. --jitter-gains multiplies
        every gain by (1 + jitter·N(0,1)) so that gain gradients are exercised away from g = 1.
    torch_reference.py batch -o BATCH --batch-size B --seq T [--vocab 264 --seed 0 --ignore N]
        Random `tokens` I32 [B, T+1]; --ignore N sets N random targets to -100 (written as input_ids + targets).

Precision notes (docs/maths.md): the weight quantizer is always evaluated in fp32 in Tritter's op order
(β from a double sum, σ = 1.0f/β, rne(w·σ), w̃ = q/σ), so ternary levels are bit-identical to any conforming
implementation; the activation quantizer runs in --dtype (s = 127/max(absmax, eps), q = rne(x·s), x̃ = q/s);
RoPE tables are computed in double and rounded to fp32. With quant=true and fp64, an fp32 implementation
can sit on the other side of a .5 rounding boundary for a few activations: compare with quant=false for
tight checks, or use --dtype float32.
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time

# --------------------------------------------------------------------------------------------------------------
# safetensors by hand

_ST_DTYPES = {  # name -> (struct char, itemsize, torch dtype name)
    "F64": ("d", 8, "float64"), "F32": ("f", 4, "float32"), "I64": ("q", 8, "int64"), "I32": ("i", 4, "int32"),
    "I16": ("h", 2, "int16"), "I8": ("b", 1, "int8"), "U8": ("B", 1, "uint8"), "BOOL": ("?", 1, "bool"),
}


def read_safetensors(path):
    """Returns (tensors: {name: torch.Tensor}, metadata: dict). Tensors are copies (writable)."""
    import torch
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise SystemExit(f"read_safetensors: '{path}': found {len(raw)} bytes, expected at least 8")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise SystemExit(f"read_safetensors: '{path}': header length {n} exceeds file size {len(raw)}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _ST_DTYPES:
            raise SystemExit(f"read_safetensors: '{path}': tensor '{name}': found dtype {dt}, expected one of "
                             f"{sorted(_ST_DTYPES)}")
        _, size, tname = _ST_DTYPES[dt]
        b, e = info["data_offsets"]
        shape = list(info["shape"])
        numel = math.prod(shape)
        if e - b != numel * size:
            raise SystemExit(f"read_safetensors: '{path}': tensor '{name}': found {e - b} bytes, expected "
                             f"{numel * size} for {dt} {shape}")
        buf = bytearray(raw[base + b:base + e])
        t = torch.frombuffer(buf, dtype=getattr(torch, tname)) if numel else torch.empty(0, dtype=getattr(torch, tname))
        out[name] = t.reshape(shape).clone()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, torch.Tensor) written in that order; metadata: {str: str}."""
    rev = {v[2]: k for k, v in _ST_DTYPES.items()}
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        dt = rev[str(t.dtype).replace("torch.", "")]
        data = t.numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------------------
# config and parameter names (spec §2)

DEFAULTS = {
    "vocab_size": 264, "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "quant_eps": 1e-5, "act_bits": 8,
    "quant": True, "qk_norm": True, "sub_norm": True, "post_norm": "ffn", "mlp_act": "relu2",
    "sliding_window": None, "tie_word_embeddings": False, "z_loss": 0.0, "init_std": 0.02,
}


def full_config(cfg):
    c = dict(DEFAULTS)
    c.update(cfg)
    c.setdefault("intermediate_size", 4 * c["hidden_size"])
    c.setdefault("num_key_value_heads", c["num_attention_heads"])
    c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    if c["post_norm"] not in ("ffn", "both", "none"):
        raise SystemExit(f"config: post_norm: found '{c['post_norm']}', expected ffn, both or none")
    if c["mlp_act"] not in ("relu2", "relu2_glu"):
        raise SystemExit(f"config: mlp_act: found '{c['mlp_act']}', expected relu2 or relu2_glu")
    if c["num_attention_heads"] % c["num_key_value_heads"]:
        raise SystemExit("config: num_attention_heads must be a multiple of num_key_value_heads")
    return c


def param_shapes(c):
    """Ordered {name: shape} of every parameter the config has (spec §2 table)."""
    D, F, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    H, K, d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    s = {"model.embed_tokens.weight": [V, D]}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = [D]
        s[p + "self_attn.q_proj.weight"] = [H * d, D]
        s[p + "self_attn.k_proj.weight"] = [K * d, D]
        s[p + "self_attn.v_proj.weight"] = [K * d, D]
        if c["qk_norm"]:
            s[p + "self_attn.q_norm.weight"] = [d]
            s[p + "self_attn.k_norm.weight"] = [d]
        if c["sub_norm"]:
            s[p + "self_attn.attn_sub_norm.weight"] = [H * d]
        s[p + "self_attn.o_proj.weight"] = [D, H * d]
        if c["post_norm"] == "both":
            s[p + "post_attention_layernorm.weight"] = [D]
        s[p + "pre_feedforward_layernorm.weight"] = [D]
        if c["mlp_act"] == "relu2_glu":
            s[p + "mlp.gate_proj.weight"] = [F, D]
        s[p + "mlp.up_proj.weight"] = [F, D]
        if c["sub_norm"]:
            s[p + "mlp.ffn_sub_norm.weight"] = [F]
        s[p + "mlp.down_proj.weight"] = [D, F]
        if c["post_norm"] != "none":
            s[p + "post_feedforward_layernorm.weight"] = [D]
    s["model.norm.weight"] = [D]
    if not c["tie_word_embeddings"]:
        s["lm_head.weight"] = [V, D]
    return s


def init_params(c, seed):
    """Spec §8 init: N(0, std) for matrices, N(0, std/sqrt(2L)) for o_proj/down_proj, gains 1."""
    import torch
    g = torch.Generator().manual_seed(seed)
    std = c["init_std"]
    out = {}
    for name, shape in param_shapes(c).items():
        if len(shape) == 1:
            out[name] = torch.ones(shape, dtype=torch.float32)
        else:
            sd = std / math.sqrt(2 * c["num_hidden_layers"]) if name.endswith(("o_proj.weight", "down_proj.weight")) \
                else std
            out[name] = torch.randn(shape, generator=g, dtype=torch.float32) * sd
    return out


# --------------------------------------------------------------------------------------------------------------
# the model (spec §4-7)

# `grads --probe-ties`: when a dict, every quantizer records how close its inputs came to a rounding boundary
# (activations: x·s to k + 0.5; weights: |w·σ| to 0.5), relative to max(|x·s|, 1). A distance below ~1e-6 is
# within fp32 rounding noise: there an fp32 implementation may legitimately pick the other level (spec §10).
PROBE = None


def _probe(kind, y, boundary_dist):
    if PROBE is None:
        return
    rel = boundary_dist / y.abs().clamp(min=1.0)
    p = PROBE.setdefault(kind, [math.inf, 0, 0])
    if rel.numel():
        p[0] = min(p[0], float(rel.min()))
    p[1] += int((rel < 1e-6).sum())
    p[2] += rel.numel()

def build_model_classes():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class STEQuant(torch.autograd.Function):
        """Forward: the quantized tensor (computed outside); backward: identity (spec §4.2 STE, no grad to scales)."""

        @staticmethod
        def forward(ctx, x, xq):
            return xq

        @staticmethod
        def backward(ctx, g):
            return g, None

    def act_quant(x, eps, bits):
        # s = 127 / max(absmax, eps); q = rne(x*s); x~ = q / s (true division). |x*s| <= 127 so the clamp is moot.
        qmax = 2 ** (bits - 1) - 1
        s = qmax / x.detach().abs().amax(dim=-1, keepdim=True).clamp(min=eps)
        if PROBE is not None:
            y = x.detach() * s
            _probe("act", y, ((y - y.floor()) - 0.5).abs())
        return (x.detach() * s).round().clamp(-qmax - 1, qmax) / s

    def weight_quant_fp32(w, eps):
        # β = (float)(Σ|w| in double / numel); β = max(β, eps); σ = 1.0f/β; q = clamp(rne(w·σ), -1, 1); w~ = q/σ
        w32 = w.detach().to(torch.float32)
        beta = (w32.to(torch.float64).abs().sum() / w32.numel()).to(torch.float32)
        beta = torch.clamp(beta, min=torch.tensor(eps, dtype=torch.float32))
        sigma = torch.tensor(1.0, dtype=torch.float32) / beta
        q = (w32 * sigma).round().clamp(-1, 1)
        if PROBE is not None:
            y = (w32 * sigma).double()
            _probe("weight", y, (y.abs() - 0.5).abs())
        return (q / sigma).to(w.dtype)

    class RMSNorm(nn.Module):
        def __init__(self, n, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))
            self.eps = eps

        def forward(self, x):
            r = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # eps inside the rsqrt (§3)
            return x * r * self.weight

    class BitLinear(nn.Module):
        """y = x~ W~ᵀ (quant) or x Wᵀ. `exact`: STE via an autograd.Function and the spec's fp32 weight quantizer;
        otherwise the published BitNet recipe (detach trick, w.abs().mean()) as a PyTorch user writes it."""

        def __init__(self, i, o, c, exact):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(o, i))
            self.quant, self.exact = c["quant"], exact
            self.eps, self.bits = c["quant_eps"], c["act_bits"]

        def quantize_input(self, x):
            if not self.quant:
                return x
            if self.exact:
                return STEQuant.apply(x, act_quant(x, self.eps, self.bits))
            return x + (act_quant(x, self.eps, self.bits) - x).detach()

        def forward(self, x, already_quantized=False):
            w = self.weight
            if self.quant:
                if self.exact:
                    w = STEQuant.apply(w, weight_quant_fp32(w, self.eps))
                else:
                    s = 1.0 / w.detach().abs().mean().clamp(min=self.eps)
                    w = w + ((w.detach() * s).round().clamp(-1, 1) / s - w.detach()).detach()
            if not already_quantized:
                x = self.quantize_input(x)
            return F.linear(x, w)

    def rope_tables(T, d, theta, dtype):
        # inv_j = θ^(-2j/d), φ = t·inv_j in double, then cos/sin rounded to fp32 (§4.4)
        j = torch.arange(d // 2, dtype=torch.float64)
        inv = theta ** (-2.0 * j / d)
        phi = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        return torch.cos(phi).float().to(dtype), torch.sin(phi).float().to(dtype)

    def rope(u, cos, sin):  # u [B, heads, T, d]; rotate-half pairing of j with j + d/2
        h = u.shape[-1] // 2
        u1, u2 = u[..., :h], u[..., h:]
        return torch.cat([u1 * cos - u2 * sin, u2 * cos + u1 * sin], dim=-1)

    class Layer(nn.Module):
        def __init__(self, c, exact):
            super().__init__()
            D, F_, H, K, d = (c["hidden_size"], c["intermediate_size"], c["num_attention_heads"],
                              c["num_key_value_heads"], c["head_dim"])
            eps = c["rms_norm_eps"]
            self.c, self.H, self.K, self.d = c, H, K, d
            self.input_layernorm = RMSNorm(D, eps)
            self.self_attn = nn.Module()
            a = self.self_attn
            a.q_proj, a.k_proj, a.v_proj = BitLinear(D, H * d, c, exact), BitLinear(D, K * d, c, exact), \
                BitLinear(D, K * d, c, exact)
            if c["qk_norm"]:
                a.q_norm, a.k_norm = RMSNorm(d, eps), RMSNorm(d, eps)
            if c["sub_norm"]:
                a.attn_sub_norm = RMSNorm(H * d, eps)
            a.o_proj = BitLinear(H * d, D, c, exact)
            if c["post_norm"] == "both":
                self.post_attention_layernorm = RMSNorm(D, eps)
            self.pre_feedforward_layernorm = RMSNorm(D, eps)
            self.mlp = nn.Module()
            m = self.mlp
            if c["mlp_act"] == "relu2_glu":
                m.gate_proj = BitLinear(D, F_, c, exact)
            m.up_proj = BitLinear(D, F_, c, exact)
            if c["sub_norm"]:
                m.ffn_sub_norm = RMSNorm(F_, eps)
            m.down_proj = BitLinear(F_, D, c, exact)
            if c["post_norm"] != "none":
                self.post_feedforward_layernorm = RMSNorm(D, eps)

        def forward(self, x, cos, sin, mask):
            c, a, m = self.c, self.self_attn, self.mlp
            B, T, _ = x.shape
            H, K, d = self.H, self.K, self.d
            h_in = self.input_layernorm(x)
            aq = a.q_proj.quantize_input(h_in)  # one quantized input for q, k, v (§5)
            q = a.q_proj(aq, True).view(B, T, H, d)
            k = a.k_proj(aq, True).view(B, T, K, d)
            v = a.v_proj(aq, True).view(B, T, K, d)
            if c["qk_norm"]:
                q, k = a.q_norm(q), a.k_norm(k)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, heads, T, d]
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            if K != H:  # query head h reads kv head h // G
                k = k.repeat_interleave(H // K, dim=1)
                v = v.repeat_interleave(H // K, dim=1)
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
            s = s.masked_fill(mask, float("-inf"))
            o = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(B, T, H * d)
            if c["sub_norm"]:
                o = a.attn_sub_norm(o)
            y = a.o_proj(o)
            if c["post_norm"] == "both":
                y = self.post_attention_layernorm(y)
            h = x + y
            mm = self.pre_feedforward_layernorm(h)
            mq = m.up_proj.quantize_input(mm)  # one quantized input for up and gate
            u = m.up_proj(mq, True)
            if c["mlp_act"] == "relu2_glu":
                s2 = torch.relu(m.gate_proj(mq, True)).pow(2) * u
            else:
                s2 = torch.relu(u).pow(2)
            if c["sub_norm"]:
                s2 = m.ffn_sub_norm(s2)
            f = m.down_proj(s2)
            if c["post_norm"] != "none":
                f = self.post_feedforward_layernorm(f)
            return h + f

    class Tritter(nn.Module):
        def __init__(self, c, exact=True):
            super().__init__()
            self.c = c
            D, V = c["hidden_size"], c["vocab_size"]
            self.model = nn.Module()
            self.model.embed_tokens = nn.Embedding(V, D)
            self.model.layers = nn.ModuleList([Layer(c, exact) for _ in range(c["num_hidden_layers"])])
            self.model.norm = RMSNorm(D, c["rms_norm_eps"])
            if not c["tie_word_embeddings"]:
                self.lm_head = nn.Linear(D, V, bias=False)
            self._rope = None

        def forward(self, ids, targets):
            c = self.c
            B, T = ids.shape
            dtype = self.model.norm.weight.dtype
            if self._rope is None or self._rope[0].shape[0] != T or self._rope[0].dtype != dtype:
                i = torch.arange(T)[:, None]
                j = torch.arange(T)[None, :]
                mask = j > i
                if c["sliding_window"]:
                    mask = mask | (i - j >= c["sliding_window"])
                self._rope = rope_tables(T, c["head_dim"], c["rope_theta"], dtype) + (mask,)
            cos, sin, mask = self._rope
            x = self.model.embed_tokens(ids)
            for layer in self.model.layers:
                x = layer(x, cos, sin, mask)
            hn = self.model.norm(x)
            w_lm = self.model.embed_tokens.weight if c["tie_word_embeddings"] else self.lm_head.weight
            z = F.linear(hn, w_lm)  # [B, T, V], fp, not quantized
            zf = z.reshape(B * T, -1)
            tf = targets.reshape(-1)
            valid = tf != -100
            nv = max(int(valid.sum()), 1)
            lse = torch.logsumexp(zf, dim=-1)
            zy = zf.gather(1, tf.clamp(min=0)[:, None])[:, 0]
            loss = ((lse - zy) * valid).sum() / nv
            if c["z_loss"]:
                loss = loss + c["z_loss"] * ((lse * lse) * valid).sum() / nv
            return z, loss

    return Tritter


def load_model(path, dtype, exact=True):
    import torch
    tensors, meta = read_safetensors(path)
    if "config" not in meta:
        raise SystemExit(f"load_model: '{path}': __metadata__ has no 'config' (found keys {sorted(meta)})")
    c = full_config(json.loads(meta["config"]))
    model = build_model_classes()(c, exact)
    own = dict(model.named_parameters())
    want = param_shapes(c)
    if set(own) != set(want):
        raise SystemExit(f"load_model: internal: module names {sorted(set(own) ^ set(want))} differ from Tritter's tensor names (docs/model-files.md)")
    missing = [n for n in want if n not in tensors]
    extra = [n for n in tensors if n not in want]
    if missing or extra:
        raise SystemExit(f"load_model: '{path}': tensors: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for n, shape in want.items():
            t = tensors[n]
            if list(t.shape) != shape:
                raise SystemExit(f"load_model: '{path}': tensor '{n}': found {list(t.shape)}, expected {shape}")
            own[n].copy_(t)
    model.to(dtype)
    return model, c, want


def read_batch(path):
    import torch
    t, _ = read_safetensors(path)
    if "tokens" in t:
        tok = t["tokens"]
        if tok.dtype != torch.int32 or tok.dim() != 2 or tok.shape[1] < 2:
            raise SystemExit(f"batch '{path}': tokens: found {tok.dtype} {list(tok.shape)}, expected I32 [B, T+1]")
        return tok[:, :-1].long(), tok[:, 1:].long()
    if "input_ids" not in t or "targets" not in t:
        raise SystemExit(f"batch '{path}': found neither 'tokens' nor 'input_ids' + 'targets'")
    if list(t["input_ids"].shape) != list(t["targets"].shape):
        raise SystemExit(f"batch '{path}': targets: found {list(t['targets'].shape)}, expected "
                         f"{list(t['input_ids'].shape)}")
    return t["input_ids"].long(), t["targets"].long()


def make_adamw(model, lr, wd):
    import torch
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


# --------------------------------------------------------------------------------------------------------------
# subcommands

def _report_probe(step):
    global PROBE
    if PROBE is not None:
        parts = [f"{k}: closest tie {v[0]:.2e}, {v[1]} of {v[2]} within 1e-6" for k, v in sorted(PROBE.items())]
        print(f"  step {step} quantizer inputs: " + "; ".join(parts))
        PROBE = {}


def cmd_grads(a):
    import torch
    global PROBE
    if a.probe_ties:
        PROBE = {}
    torch.set_num_threads(a.threads)
    dtype = {"float64": torch.float64, "float32": torch.float32}[a.dtype]
    model, c, names = load_model(a.model, dtype, exact=True)
    ids, tg = read_batch(a.batch)
    if int(ids.min()) < 0 or int(ids.max()) >= c["vocab_size"]:
        raise SystemExit(f"batch '{a.batch}': input ids: found range [{int(ids.min())}, {int(ids.max())}], "
                         f"expected [0, {c['vocab_size']})")
    params = dict(model.named_parameters())
    z, loss = model(ids, tg)
    loss.backward()
    _report_probe(0)
    logits = z.detach().float()
    loss0 = loss.detach().float()
    grads = {n: params[n].grad.detach().float().clone() for n in names}
    losses = []
    if a.steps > 0:
        opt = make_adamw(model, a.lr, a.wd)
        for k in range(a.steps):
            if k > 0:
                opt.zero_grad(set_to_none=True)
                _, loss = model(ids, tg)
                loss.backward()
                _report_probe(k)
            losses.append(float(loss))
            if a.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
    out = [("logits", logits), ("loss", loss0.reshape([]))]
    if a.steps > 0:
        out.append(("losses", torch.tensor(losses, dtype=torch.float64).float()))
    out += [("grad." + n, grads[n]) for n in names]
    write_safetensors(a.out, out, {"format": "tritter-grads-v1", "producer": "tools/torch_reference.py",
                                   "dtype": a.dtype, "config": json.dumps(c), "steps": a.steps, "lr": a.lr,
                                   "wd": a.wd, "clip": a.clip})
    tail = f", after {a.steps} AdamW steps {losses[-1]:.6f}" if a.steps > 0 else ""
    print(f"loss {float(loss0):.6f} (B={ids.shape[0]} T={ids.shape[1]}, {a.dtype}){tail} -> {a.out}")


def cmd_compare(a):
    A, _ = read_safetensors(a.a)
    B, _ = read_safetensors(a.b)
    bad = []
    only = sorted(set(A) ^ set(B))
    if only:
        print(f"names in only one file: {only}")
        bad += only
    print(f"{'tensor':56s} {'max|A|':>10s} {'max|A-B|':>10s} {'rel':>10s} {'relL2':>10s} {'#>tol':>7s}")
    worst = 0.0
    for n in [n for n in A if n in B]:
        x, y = A[n].double(), B[n].double()
        if x.shape != y.shape:
            print(f"{n:56s} shape {list(x.shape)} vs {list(y.shape)}")
            bad.append(n)
            continue
        scale = max(float(x.abs().max()) if x.numel() else 0.0, float(y.abs().max()) if y.numel() else 0.0)
        diff = (x - y).abs()
        mad = float(diff.max()) if x.numel() else 0.0
        rel = mad / scale if scale > 0 else (0.0 if mad == 0 else math.inf)
        nrm = max(float(x.norm()), float(y.norm()))
        rl2 = float((x - y).norm()) / nrm if nrm > 0 else 0.0
        nover = int((diff > a.tol * scale).sum()) if scale > 0 else int((diff > 0).sum())
        flag = " <-- FAIL" if rel > a.tol or math.isnan(rel) else ""
        if flag:
            bad.append(n)
        worst = max(worst, rel)
        print(f"{n:56s} {scale:10.3e} {mad:10.3e} {rel:10.3e} {rl2:10.3e} {nover:7d}{flag}")
    print(f"worst rel {worst:.3e} (tol {a.tol:g}): {'FAIL ' + str(len(bad)) + ' tensor(s)' if bad else 'ok'}")
    sys.exit(1 if bad else 0)


def blas_info():
    """The BLAS/LAPACK shared objects actually mapped into this process, plus torch's own build line."""
    import torch
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if any(s in os.path.basename(p) for s in ("blas", "mkl", "lapack", "blis", "gomp", "omp")):
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    return sorted(libs), torch.__config__.show()


def openblas_handle():
    """ctypes handle of the OpenBLAS mapped into this process (None when torch uses another BLAS)."""
    import ctypes
    for p in blas_info()[0]:
        if "openblas" in os.path.basename(p):
            try:
                return ctypes.CDLL(p)
            except OSError:
                return None
    return None


def cmd_bench(a):
    import ctypes
    import torch
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(a.interop)
    ob = openblas_handle()
    if a.blas_threads and ob is not None:
        ob.openblas_set_num_threads(a.blas_threads)
    c = full_config({"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
                     "intermediate_size": 1024, "vocab_size": 264, "sub_norm": True, "qk_norm": True,
                     "post_norm": "ffn", "mlp_act": "relu2", "quant": a.quant})
    B, T = a.batch, a.seq
    torch.manual_seed(a.seed)
    model = build_model_classes()(c, exact=False)  # the published recipe, as a PyTorch user writes it
    with torch.no_grad():
        for n, t in init_params(c, a.seed).items():
            dict(model.named_parameters())[n].copy_(t)
    opt = make_adamw(model, 1.5e-3, 0.1)
    nparam = sum(p.numel() for p in model.parameters())
    times = []
    for step in range(a.warmup + a.steps):
        tok = torch.randint(0, c["vocab_size"], (B, T + 1))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = model(tok[:, :-1], tok[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
        if a.verbose:
            print(f"step {step}: loss {float(loss):.4f} {dt * 1e3:.1f} ms")
    med = statistics.median(times)
    libs, show = blas_info()
    print(show.rstrip())
    print("mapped BLAS/OpenMP libraries: " + (", ".join(libs) if libs else "(none found)"))
    print("env: " + " ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                "OPENBLAS_CORETYPE", "MKL_NUM_THREADS")
                             if k in os.environ))
    if ob is not None:
        ob.openblas_get_config.restype = ctypes.c_char_p
        ob.openblas_get_corename.restype = ctypes.c_char_p
        print(f"OpenBLAS: {ob.openblas_get_config().decode()}, core {ob.openblas_get_corename().decode()}, "
              f"{ob.openblas_get_num_threads()} thread(s)")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, interop {torch.get_num_interop_threads()}")
    print(f"model: D=256 L=4 H=K=4 F=1024 V=264 T={T} B={B} quant={c['quant']}, {nparam} parameters, fp32")
    print(f"median step {med * 1e3:.1f} ms over {len(times)} steps (min {min(times) * 1e3:.1f}, max "
          f"{max(times) * 1e3:.1f}): {B * T / med:,.0f} tokens/s")


def _parse_value(v):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def cmd_variant(a):
    import torch
    tensors, meta = read_safetensors(a.model)
    cfg = json.loads(meta["config"])
    for kv in a.set or []:
        k, _, v = kv.partition("=")
        if k not in cfg and k not in DEFAULTS:
            raise SystemExit(f"variant: --set {kv}: unknown config key '{k}' (known: {sorted(set(cfg) | set(DEFAULTS))})")
        cfg[k] = _parse_value(v)
    c = full_config(cfg)
    fresh = init_params(c, a.seed + 1)
    g = torch.Generator().manual_seed(a.seed)
    out = []
    for n, shape in param_shapes(c).items():
        t = tensors[n] if n in tensors and list(tensors[n].shape) == shape else fresh[n]
        if len(shape) == 1 and a.jitter_gains:
            t = t * (1 + a.jitter_gains * torch.randn(shape, generator=g))
        out.append((n, t.float()))
    meta = dict(meta)
    meta["config"] = json.dumps(cfg, separators=(",", ":"))
    write_safetensors(a.out, out, meta)
    print(f"wrote {a.out}: {meta['config']}")


def cmd_batch(a):
    import torch
    g = torch.Generator().manual_seed(a.seed)
    tok = torch.randint(0, a.vocab, (a.batch_size, a.seq + 1), generator=g, dtype=torch.int64).int()
    if a.ignore:
        tg = tok[:, 1:].clone()
        idx = torch.randperm(tg.numel(), generator=g)[:a.ignore]
        tg.view(-1)[idx] = -100
        write_safetensors(a.out, [("input_ids", tok[:, :-1].contiguous()), ("targets", tg)])
    else:
        write_safetensors(a.out, [("tokens", tok)])
    print(f"wrote {a.out}: B={a.batch_size} T={a.seq}" + (f", {a.ignore} ignored targets" if a.ignore else ""))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grads", help="logits, loss, grad.<name> [, losses] like `tritter grads`")
    g.add_argument("--model", required=True)
    g.add_argument("--batch", required=True)
    g.add_argument("-o", "--out", required=True)
    g.add_argument("--steps", type=int, default=0)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--wd", type=float, default=0.1)
    g.add_argument("--clip", type=float, default=1.0, help="global-norm clip (0 = off)")
    g.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    g.add_argument("--threads", type=int, default=1)
    g.add_argument("--probe-ties", action="store_true",
                   help="per step, report how close quantizer inputs came to a rounding boundary")
    g.set_defaults(fn=cmd_grads)
    c = sub.add_parser("compare", help="per-tensor max abs / relative diff of two safetensors files")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--tol", type=float, default=1e-4, help="fail if max|A-B|/max(|A|,|B|) exceeds this")
    c.set_defaults(fn=cmd_compare)
    b = sub.add_parser("bench", help="training speed of the `tritter bench train` model, idiomatic PyTorch")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--interop", type=int, default=1)
    b.add_argument("--blas-threads", type=int, default=0,
                   help="openblas_set_num_threads(N) after torch's setup (0 = leave as is). With Debian's OpenMP "
                        "OpenBLAS this is omp_set_num_threads(N): torch's intra-op threads follow (printed at the end)")
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--seq", type=int, default=256)
    b.add_argument("--seed", type=int, default=1234)
    b.add_argument("--quant", action=argparse.BooleanOptionalAction, default=True)
    b.add_argument("-v", "--verbose", action="store_true")
    b.set_defaults(fn=cmd_bench)
    v = sub.add_parser("variant", help="copy a checkpoint with config keys changed")
    v.add_argument("model")
    v.add_argument("-o", "--out", required=True)
    v.add_argument("--set", action="append", metavar="KEY=VALUE")
    v.add_argument("--jitter-gains", type=float, default=0.0)
    v.add_argument("--seed", type=int, default=0)
    v.set_defaults(fn=cmd_variant)
    t = sub.add_parser("batch", help="write a random batch file")
    t.add_argument("-o", "--out", required=True)
    t.add_argument("--batch-size", type=int, default=2)
    t.add_argument("--seq", type=int, default=16)
    t.add_argument("--vocab", type=int, default=264)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--ignore", type=int, default=0)
    t.set_defaults(fn=cmd_batch)
    a = p.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit(f"torch_reference.py: PyTorch not found for {sys.executable}: apt-get install python3-torch, "
                         "then run with /usr/bin/python3")
    a.fn(a)


if __name__ == "__main__":
    main()
