#!/usr/bin/python3
"""Independent writer of llama.cpp-style BitNet GGUF files for the tests (standard library only).

Usage: gguf_bitnet_writer.py MANIFEST.json WEIGHTS.f32 OUT.gguf [OPTIONS]   (OPTIONS: no-tokenizer, no-act, i2s, i2s-bad,
rope-longrope; config.rope_scaling, when set, is written as llama.cpp's rope.scaling.* keys)
Follows ggml's docs/gguf.md (v3, little-endian, 32-byte alignment, ne[0] innermost) and llama.cpp's BitNet
conversion: every master W is absmean-ternarized (W~ = round(W/s).clamp(-1,1)·s, s = mean|W|), then quantized per 256-block by quantize_row_tq2_0_ref (d = max|x| of the
block, q = round(x/d) + 1, element 128h+32l+m in bits 2l of qs[32h+m], then f16 d), norms and token_embd F32.
i2s: the matrices as bitnet.cpp's I2_S instead, following microsoft/BitNet's utils/convert-hf-to-gguf-bitnet.py
(quantize_to_i2_s): codes -1/0/+1 stored as 0/1/2, blocks of 128 values, value j of a block in byte j % 32 at bits
6 - 2*(j // 32), then a 32-byte tail holding the f32 scale. i2s-bad: every byte 0xFF (code 3, which none means).
"""
import json
import struct
import sys

NAMES = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
         "self_attn.v_proj": "attn_v", "self_attn.attn_sub_norm": "attn_sub_norm",
         "self_attn.o_proj": "attn_output", "pre_feedforward_layernorm": "ffn_norm",
         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.ffn_sub_norm": "ffn_sub_norm",
         "mlp.down_proj": "ffn_down"}


def gguf_name(name):
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    parts = name.split(".")
    layer, kind = parts[2], ".".join(parts[3:-1])
    return "blk.%s.%s.weight" % (layer, NAMES[kind])


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def tq2_0(w):
    out = bytearray()
    for b0 in range(0, len(w), 256):
        x = w[b0:b0 + 256]
        d = max(abs(v) for v in x)
        idd = 1.0 / d if d else 0.0
        qs = bytearray(64)
        for e in range(256):
            q = int(round(x[e] * idd)) + 1
            h, l, m = e // 128, (e % 128) // 32, e % 32
            qs[32 * h + m] |= q << (2 * l)
        out += qs + struct.pack("<e", d)
    return bytes(out)


def i2_s(q, scale):
    out = bytearray(len(q) // 4 + 32)
    for b in range(len(q) // 128):
        for j in range(128):
            out[b * 32 + j % 32] |= (q[b * 128 + j] + 1) << (6 - 2 * (j // 32))
    out[len(q) // 4:len(q) // 4 + 4] = struct.pack("<f", scale)
    return bytes(out)


def main():
    manifest_path, weights_path, out = sys.argv[1:4]
    opts = set(sys.argv[4:])
    manifest = json.load(open(manifest_path))
    cfg = manifest["config"]
    raw = open(weights_path, "rb").read()
    floats = struct.unpack("<%df" % (len(raw) // 4), raw)
    a = "bitnet."
    kvs = [kv("general.architecture", 8, s("bitnet")), kv("general.name", 8, s("test")),
           kv(a + "context_length", 4, struct.pack("<I", cfg["max_position_embeddings"])),
           kv(a + "embedding_length", 4, struct.pack("<I", cfg["hidden_size"])),
           kv(a + "feed_forward_length", 4, struct.pack("<I", cfg["intermediate_size"])),
           kv(a + "block_count", 4, struct.pack("<I", cfg["num_hidden_layers"])),
           kv(a + "attention.head_count", 4, struct.pack("<I", cfg["num_attention_heads"])),
           kv(a + "attention.head_count_kv", 4, struct.pack("<I", cfg["num_key_value_heads"])),
           kv(a + "attention.layer_norm_rms_epsilon", 6, struct.pack("<f", cfg["rms_norm_eps"])),
           kv(a + "rope.freq_base", 6, struct.pack("<f", cfg["rope_theta"])),
           kv(a + "vocab_size", 4, struct.pack("<I", cfg["vocab_size"]))]
    if "no-act" not in opts:
        kvs.append(kv(a + "hidden_act", 8, s("relu2")))
    # RoPE scaling as llama.cpp's convert_hf_to_gguf.py writes it: rope.scaling.type/factor, and for yarn the
    # original context length (and attn_factor when the config gives attention_factor).
    rs = cfg.get("rope_scaling")
    if rs:
        kvs.append(kv(a + "rope.scaling.type", 8, s(rs["rope_type"])))
        kvs.append(kv(a + "rope.scaling.factor", 6, struct.pack("<f", rs["factor"])))
        if "original_max_position_embeddings" in rs:
            kvs.append(kv(a + "rope.scaling.original_context_length", 4,
                          struct.pack("<I", rs["original_max_position_embeddings"])))
        if "attention_factor" in rs:
            kvs.append(kv(a + "rope.scaling.attn_factor", 6, struct.pack("<f", rs["attention_factor"])))
    if "rope-longrope" in opts:
        kvs.append(kv(a + "rope.scaling.type", 8, s("longrope")))
    if "no-tokenizer" not in opts:
        toks = ["<t%d>" % i for i in range(cfg["vocab_size"])]
        kvs.append(kv("tokenizer.ggml.model", 8, s("gpt2")))
        kvs.append(kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(toks)) + b"".join(s(t) for t in toks)))
        kvs.append(kv("tokenizer.ggml.add_bos_token", 7, b"\x01"))
    infos, blobs, offset = [], [], 0
    for t in manifest["tensors"]:
        name, shape, off = t["name"], t["shape"], t["offset"]
        n = 1
        for d in shape:
            n *= d
        w = floats[off:off + n]
        if name.endswith("_proj.weight"):
            if "i2s-bad" in opts:
                data, ttype = b"\xff" * (n // 4 + 32), 36
            elif "i2s" in opts:
                sc = sum(abs(v) for v in w) / n
                data, ttype = i2_s([max(-1, min(1, round(v / sc))) for v in w], sc), 36
            else:  # as llama.cpp's converter: absmean-ternarize the master (W~ = T·s), then TQ2_0
                sc = sum(abs(v) for v in w) / n
                data, ttype = tq2_0([max(-1, min(1, round(v / sc))) * sc for v in w]), 35
        else:
            data, ttype = struct.pack("<%df" % n, *w), 0
        ne = list(reversed(shape))
        infos.append(s(gguf_name(name)) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
                     + struct.pack("<IQ", ttype, offset))
        data += bytes((32 - len(data) % 32) % 32)
        blobs.append(data)
        offset += len(data)
    head = struct.pack("<IIQQ", 0x46554747, 3, len(infos), len(kvs)) + b"".join(kvs) + b"".join(infos)
    head += bytes((32 - len(head) % 32) % 32)
    with open(out, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
