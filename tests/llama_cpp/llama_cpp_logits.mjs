// Runs a GGUF file in llama.cpp (node-llama-cpp's prebuilt CPU binaries) and prints, for each token-id prompt,
// the next-token probabilities of its last position (the top 40), as JSON lines: {"top": [[id, p], ...]}.
// Usage: node llama_cpp_logits.mjs MODEL.gguf '[[1, 2, 3], [4, 5]]'
import { getLlama } from "node-llama-cpp";

const [file, prompts] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: file });
for (const ids of JSON.parse(prompts)) {
  const ctx = await model.createContext({ contextSize: 64, threads: 1 });
  const seq = ctx.getSequence();
  const input = [...ids.slice(0, -1), [ids[ids.length - 1], { generateNext: { probabilities: true } }]];
  const res = await seq.controlledEvaluate(input);
  const probs = [...res[res.length - 1].next.probabilities.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40);
  console.log(JSON.stringify({ top: probs }));
  await ctx.dispose();
}
