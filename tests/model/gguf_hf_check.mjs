// Parses a GGUF file with @huggingface/gguf (the Hub's reader, pinned in package.json) and prints what it found
// as one JSON line: architecture, tokens, tensor names with their ggml type id, shape and offset. The C++ test
// compares it with Tritter's own reading of the file. Usage: node gguf_hf_check.mjs FILE.gguf
import { gguf } from "@huggingface/gguf";

const file = process.argv[2];
const { metadata, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
const out = {
  version: Number(metadata.version),
  architecture: metadata["general.architecture"],
  alignment: metadata["general.alignment"] === undefined ? 32 : Number(metadata["general.alignment"]),
  tokens: (metadata["tokenizer.ggml.tokens"] || []).length,
  tokenizer: metadata["tokenizer.ggml.model"],
  data_offset: Number(tensorDataOffset),
  tensors: tensorInfos.map((t) => ({ name: t.name, type: Number(t.dtype), ne: t.shape.map(Number), offset: Number(t.offset) })),
};
console.log(JSON.stringify(out));
