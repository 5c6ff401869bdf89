#!/usr/bin/python3
"""An independent PyTorch implementation of the causal, mono EnCodec (the architecture of transformers'
EncodecModel for facebook/encodec_24khz: SEANet encoder and decoder with weight-normalized causal convolutions,
reflect padding, a residual LSTM, and a residual vector quantizer), built from torch's own nn.Conv1d,
nn.ConvTranspose1d, nn.LSTM, weight_norm and F.pad. It writes a folder Tritter loads (config.json,
model.safetensors with the transformers tensor names) and the reference outputs for an input signal, so the C++
encoder, quantizer and decoder can be checked against it.

    /usr/bin/python3 tools/encodec_reference.py make --out DIR [--preset tiny|24khz] [--seed 0] [--seconds 0.1]
    /usr/bin/python3 tools/encodec_reference.py load --dir DIR [--seconds 0.1]

`load` reads an existing folder instead (e.g. one `tritter audio train-codec` wrote): torch's modules take its
weight_g / weight_v / bias / LSTM tensors by name and its codebooks (the EMA buffers are not needed), and the reference
outputs are written beside them, so the same C++ test checks that folder.

DIR/reference.safetensors holds: audio (T), latents (hidden, frames), codes (n_q, frames) as int32, decoded (T'),
the decoder's output from those codes. Needs Debian's python3-torch (CPU); CI does not run it: its output for the
tiny preset is committed under tests/audio/data/.
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import read_safetensors, write_safetensors  # noqa: E402

PRESETS = {
    # The published 24 kHz model's architecture (its weights cannot be downloaded here; random ones stand in).
    "24khz": dict(num_filters=32, upsampling_ratios=[8, 5, 4, 2], hidden_size=128, codebook_size=1024,
                  num_lstm_layers=2, target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0]),
    # The same structure, small enough to commit: hop 8, 4 codebooks of 16.
    "tiny": dict(num_filters=4, upsampling_ratios=[4, 2], hidden_size=8, codebook_size=16, num_lstm_layers=2,
                 target_bandwidths=[12.0, 24.0, 48.0]),
}


def config_of(preset, sampling_rate):
    c = dict(model_type="encodec", audio_channels=1, kernel_size=7, last_kernel_size=7, residual_kernel_size=3,
             dilation_growth_rate=2, num_residual_layers=1, compress=2, use_causal_conv=True, pad_mode="reflect",
             norm_type="weight_norm", normalize=False, chunk_length_s=None, trim_right_ratio=1.0,
             use_conv_shortcut=True, sampling_rate=sampling_rate)
    c.update(PRESETS[preset])
    c["codebook_dim"] = c["hidden_size"]
    return c


def build(c):
    import torch
    from torch import nn
    import torch.nn.functional as F

    class CausalConv(nn.Module):
        def __init__(self, cin, cout, k, stride=1, dilation=1):
            super().__init__()
            self.conv = nn.utils.weight_norm(nn.Conv1d(cin, cout, k, stride=stride, dilation=dilation))

        def forward(self, x):
            k, s, d = self.conv.kernel_size[0], self.conv.stride[0], self.conv.dilation[0]
            keff = (k - 1) * d + 1
            pad_total = keff - s
            length = x.shape[-1]
            n_frames = (length - keff + pad_total) / s + 1
            ideal = (math.ceil(n_frames) - 1) * s + (keff - pad_total)
            left, right = pad_total, ideal - length
            max_pad = max(left, right)
            extra = max_pad - length + 1 if length <= max_pad else 0
            if extra:
                x = F.pad(x, (0, extra))
            x = F.pad(x, (left, right), mode="reflect")
            if extra:
                x = x[..., : x.shape[-1] - extra]
            return self.conv(x)

    class CausalConvT(nn.Module):
        def __init__(self, cin, cout, k, stride):
            super().__init__()
            self.conv = nn.utils.weight_norm(nn.ConvTranspose1d(cin, cout, k, stride=stride))

        def forward(self, x):
            k, s = self.conv.kernel_size[0], self.conv.stride[0]
            y = self.conv(x)
            pad_total = k - s
            right = math.ceil(pad_total * c["trim_right_ratio"])
            left = pad_total - right
            return y[..., left: y.shape[-1] - right]

    class ResBlock(nn.Module):
        def __init__(self, dim, dilation):
            super().__init__()
            hidden = dim // c["compress"]
            self.block = nn.ModuleList([nn.ELU(), CausalConv(dim, hidden, c["residual_kernel_size"], dilation=dilation),
                                        nn.ELU(), CausalConv(hidden, dim, 1)])
            self.shortcut = CausalConv(dim, dim, 1)

        def forward(self, x):
            h = x
            for layer in self.block:
                h = layer(h)
            return self.shortcut(x) + h

    class Lstm(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.lstm = nn.LSTM(dim, dim, c["num_lstm_layers"])

        def forward(self, x):
            x = x.permute(2, 0, 1)
            return (self.lstm(x)[0] + x).permute(1, 2, 0)

    nf = c["num_filters"]
    enc = [CausalConv(1, nf, c["kernel_size"])]
    scale = 1
    for ratio in reversed(c["upsampling_ratios"]):
        dim = scale * nf
        for j in range(c["num_residual_layers"]):
            enc.append(ResBlock(dim, c["dilation_growth_rate"] ** j))
        enc += [nn.ELU(), CausalConv(dim, 2 * dim, 2 * ratio, stride=ratio)]
        scale *= 2
    enc += [Lstm(scale * nf), nn.ELU(), CausalConv(scale * nf, c["hidden_size"], c["last_kernel_size"])]
    dec = [CausalConv(c["hidden_size"], scale * nf, c["kernel_size"]), Lstm(scale * nf)]
    for ratio in c["upsampling_ratios"]:
        dim = scale * nf
        dec += [nn.ELU(), CausalConvT(dim, dim // 2, 2 * ratio, ratio)]
        for j in range(c["num_residual_layers"]):
            dec.append(ResBlock(dim // 2, c["dilation_growth_rate"] ** j))
        scale //= 2
    dec += [nn.ELU(), CausalConv(nf, 1, c["last_kernel_size"])]

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Module()
            self.encoder.layers = nn.ModuleList(enc)
            self.decoder = nn.Module()
            self.decoder.layers = nn.ModuleList(dec)
            hop = math.prod(c["upsampling_ratios"])
            frame_rate = math.ceil(c["sampling_rate"] / hop)
            n_q = max(1, int(math.floor(max(c["target_bandwidths"]) * 1000 / (math.log2(c["codebook_size"]) * frame_rate))))
            self.codebooks = nn.ParameterList([nn.Parameter(torch.randn(c["codebook_size"], c["hidden_size"]))
                                               for _ in range(n_q)])

    return Model()


def cmd_make(a):
    import torch
    torch.manual_seed(a.seed)
    sr = 24000
    c = config_of(a.preset, sr)
    m = build(c).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():  # wider than the default init, so every layer moves the signal
            if name.endswith("weight_v"):
                p.normal_(0, 1)
            elif name.endswith("weight_g"):
                p.uniform_(0.5, 1.5)
            elif "lstm" in name:  # torch's own init (±1/√H): larger weights make the recurrence chaotic, and two
                continue          # float implementations then part ways after a few frames
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
            elif name.startswith("codebooks."):  # entries on the latents' scale, so the codes vary
                p.normal_(0, 0.3)
    os.makedirs(a.out, exist_ok=True)
    tensors = []
    for name, p in m.named_parameters():
        if name.startswith("codebooks."):
            q = name.split(".")[1]
            tensors.append((f"quantizer.layers.{q}.codebook.embed", p.detach().float()))
        else:
            tensors.append((name, p.detach().float()))
    write_safetensors(os.path.join(a.out, "model.safetensors"), tensors)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    write_reference(m, c, a.out, a.seconds, {"producer": "tools/encodec_reference.py", "preset": a.preset, "seed": a.seed})


def write_reference(m, c, out, seconds, meta):
    import torch
    sr = c["sampling_rate"]
    T = int(seconds * sr)
    t = torch.arange(T, dtype=torch.float64) / sr
    audio = (0.4 * torch.sin(2 * math.pi * (200 + 3000 * t) * t) + 0.1 * torch.sin(2 * math.pi * 1234 * t)).float()
    with torch.no_grad():
        z = audio.view(1, 1, T)
        for layer in m.encoder.layers:
            z = layer(z)
        latents = z[0]  # (hidden, frames)
        residual = latents.t()  # (frames, hidden)
        codes, quantized = [], torch.zeros_like(residual)
        for cb in m.codebooks:
            dist = -(residual.pow(2).sum(1, keepdim=True) - 2 * residual @ cb.t() + cb.pow(2).sum(1, keepdim=True).t())
            ids = dist.max(dim=-1).indices
            codes.append(ids)
            residual = residual - cb[ids]
            quantized = quantized + cb[ids]
        y = quantized.t().unsqueeze(0)
        for layer in m.decoder.layers:
            y = layer(y)
    codes = torch.stack(codes).int()
    write_safetensors(os.path.join(out, "reference.safetensors"),
                      [("audio", audio), ("latents", latents.contiguous()), ("codes", codes),
                       ("decoded", y[0, 0].contiguous())],
                      meta)
    print(f"{out}: {T} samples -> latents {list(latents.shape)}, codes {list(codes.shape)}, "
          f"decoded {y.shape[-1]} samples")


def cmd_load(a):
    import torch
    with open(os.path.join(a.dir, "config.json")) as f:
        c = json.load(f)
    m = build(c).eval()
    tensors, _ = read_safetensors(os.path.join(a.dir, "model.safetensors"))
    state = {}
    for name in m.state_dict():
        src = f"quantizer.layers.{name.split('.')[1]}.codebook.embed" if name.startswith("codebooks.") else name
        if src not in tensors:
            raise SystemExit(f"encodec_reference load: '{a.dir}': no tensor '{src}'")
        state[name] = tensors[src]
    m.load_state_dict(state)
    write_reference(m, c, a.dir, a.seconds, {"producer": "tools/encodec_reference.py load"})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="a random-weight EnCodec folder and its reference outputs")
    mk.add_argument("--out", required=True)
    mk.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--seconds", type=float, default=0.1)
    mk.set_defaults(fn=cmd_make)
    ld = sub.add_parser("load", help="reference outputs of an existing EnCodec folder, written into it")
    ld.add_argument("--dir", required=True)
    ld.add_argument("--seconds", type=float, default=0.1)
    ld.set_defaults(fn=cmd_load)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
