// The Hugging Face reference for Tritter's tokenizer and chat-template tests (tests/text/hf_reference_test.cpp).
//   node hf_reference.mjs encode TOKENIZER_JSON DOCS_JSON OUT_JSON [CONFIG_JSON]
//       DOCS_JSON: [{"text": "...", "add_special": bool}]; OUT_JSON: [[ids...], ...] (transformers.js tokenizers)
//   node hf_reference.mjs render CASES_JSON OUT_JSON
//       CASES_JSON: [{"template": "...", "context": {...}}]; OUT_JSON: [{"text": "..."} | {"error": "..."}]
import { readFileSync, writeFileSync } from "node:fs";

const [mode, ...args] = process.argv.slice(2);
if (mode === "encode") {
  const { TokenizerLoader } = await import("@lenml/tokenizers");
  const [tokPath, docsPath, outPath, configPath] = args;
  const tokenizerJSON = JSON.parse(readFileSync(tokPath, "utf8"));
  const tokenizerConfig = configPath ? JSON.parse(readFileSync(configPath, "utf8")) : {};
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  // Documents travel as base64 of their bytes so invalid UTF-8 reaches the reference the way a caller's UTF-8
  // decoding (TextDecoder, U+FFFD replacement) would hand it over.
  const docs = JSON.parse(readFileSync(docsPath, "utf8"));
  const out = docs.map((d) => {
    const text = new TextDecoder("utf-8").decode(Buffer.from(d.b64, "base64"));
    return Array.from(tok.encode(text, { add_special_tokens: !!d.add_special }));
  });
  writeFileSync(outPath, JSON.stringify(out));
} else if (mode === "render") {
  const { Template } = await import("@huggingface/jinja");
  const [casesPath, outPath] = args;
  const cases = JSON.parse(readFileSync(casesPath, "utf8"));
  const out = cases.map((c) => {
    try {
      return { text: new Template(c.template).render(c.context) };
    } catch (e) {
      return { error: String(e && e.message ? e.message : e) };
    }
  });
  writeFileSync(outPath, JSON.stringify(out));
} else {
  console.error("usage: hf_reference.mjs encode|render ...");
  process.exit(2);
}
