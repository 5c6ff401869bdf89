#!/usr/bin/python3
"""Independent writer of Hugging Face BitNet b1.58 folders for the tests (standard library only).

Usage: hf_bitnet_writer.py MANIFEST.json WEIGHTS.f32 OUT_DIR MODE   (MODE: packed | bf16 | sharded)
MANIFEST: {"config": {...config.json...}, "tensors": [{"name", "shape", "offset"}]} with offsets in floats into
WEIGHTS (little-endian f32, Tritter's checkpoint names). Follows transformers' integrations/bitnet.py:
pack_weights puts rows i*(out/4)+r of the ternary matrix in bits 2i..2i+1 of packed[r, c] (code w+1), and the
per-matrix weight_scale (BF16, shape [1]) is mean|W| (AutoBitLinear multiplies by it).
"""
import json
import os
import struct
import sys


def bf16_bytes(values):
    out = bytearray()
    for v in values:
        bits = struct.unpack("<I", struct.pack("<f", v))[0]
        assert bits & 0xFFFF == 0, "test weights must be exact in bf16"
        out += struct.pack("<H", bits >> 16)
    return bytes(out)


def pack_ternary(w, rows, cols):
    s = sum(abs(x) for x in w) / len(w)
    q = [max(-1, min(1, round(x / s))) for x in w]
    r4 = rows // 4
    packed = bytearray(r4 * cols)
    for i in range(4):
        for r in range(r4):
            src = (i * r4 + r) * cols
            for c in range(cols):
                packed[r * cols + c] |= (q[src + c] + 1) << (2 * i)
    return bytes(packed), s


def write_safetensors(path, entries):
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, data in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    manifest_path, weights_path, out, mode = sys.argv[1:5]
    manifest = json.load(open(manifest_path))
    raw = open(weights_path, "rb").read()
    floats = struct.unpack("<%df" % (len(raw) // 4), raw)
    os.makedirs(out, exist_ok=True)
    entries = []
    for t in manifest["tensors"]:
        name, shape, off = t["name"], t["shape"], t["offset"]
        n = 1
        for d in shape:
            n *= d
        w = floats[off:off + n]
        # BitNet calls the pre-MLP norm post_attention_layernorm.
        name = name.replace("pre_feedforward_layernorm", "post_attention_layernorm")
        if name.endswith("_proj.weight") and mode != "bf16":
            packed, s = pack_ternary(w, shape[0], shape[1])
            entries.append((name, "U8", [shape[0] // 4, shape[1]], packed))
            entries.append((name[:-len("weight")] + "weight_scale", "BF16", [1], bf16_bytes([s])))
        else:
            entries.append((name, "BF16", shape, bf16_bytes(w)))
    cfg = dict(manifest["config"])
    cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": "autobitlinear",
                                  "quantization_mode": "online" if mode == "bf16" else "offline"}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
    json.dump({"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []}},
              open(os.path.join(out, "tokenizer.json"), "w"))
    json.dump({"add_bos_token": True, "bos_token": "<|begin_of_text|>"},
              open(os.path.join(out, "tokenizer_config.json"), "w"))
    if mode == "sharded":
        half = len(entries) // 2
        shards = [entries[:half], entries[half:]]
        weight_map = {}
        for k, shard in enumerate(shards):
            fname = "model-%05d-of-%05d.safetensors" % (k + 1, len(shards))
            write_safetensors(os.path.join(out, fname), shard)
            for e in shard:
                weight_map[e[0]] = fname
        total = sum(len(e[3]) for e in entries)
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
                  open(os.path.join(out, "model.safetensors.index.json"), "w"), indent=2)
    else:
        write_safetensors(os.path.join(out, "model.safetensors"), entries)


if __name__ == "__main__":
    main()
