// Per-request LoRA adapters and the prefix cache over HTTP: `--lora NAME=DIR` serves each adapter as a model of
// its own (listed by /v1/models, chosen by "model"), requests for different adapters batched together give what
// `tritter generate --lora DIR` gives alone, an unnamed `--lora DIR` applies under every model first; a shared system
// prompt is computed once and copied into the other slots (usage.prompt_tokens_details.cached_tokens) with the
// same tokens as recomputing it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import OpenAI from "openai";
import { CLI, makeModel, startServer, stopServer, post } from "./helpers.mjs";

let s, client, model, dirs;

// A few steps of LoRA fine-tuning at a high rate on a text of the adapter's own (not a repository file, whose
// edits would change what the adapters learn): adapters that change the output, each differently.
function makeAdapter(name, targets, seed, text) {
  const out = path.join(path.dirname(model), name);
  const data = path.join(path.dirname(model), `${name}.txt`);
  writeFileSync(data, text.repeat(Math.ceil(4000 / text.length)));
  execFileSync(CLI, ["-t", "1", "finetune", "-m", model, "--out", out, "--rank", "4", "--targets", targets,
                     "--data", data, "--steps", "3", "--batch", "2", "--seq", "32", "--lr", "0.05",
                     "--warmup", "0", "--eval-every", "0", "--val-fraction", "0",
                     "--seed", String(seed)], { stdio: "ignore" });
  return out;
}

// `tritter generate` alone, greedy: the continuation's text.
function generate(prompt, n, loras) {
  const args = ["-t", "2", "generate", "-m", model, "-p", prompt, "-n", String(n), "--temperature", "0", "--json"];
  for (const l of loras) args.push("--lora", l);
  return JSON.parse(execFileSync(CLI, args, { stdio: ["ignore", "pipe", "ignore"] }).toString()).text;
}

before(async () => {
  model = makeModel("test");
  dirs = { a: makeAdapter("a", "all", 1, "aaaa bbbb "), b: makeAdapter("b", "q_proj,v_proj,down_proj", 2, "0123456789\n"),
           base: makeAdapter("base", "o_proj", 3, "def f(x):\n    return x\n") };
  s = await startServer(model, ["--parallel", "4", "--ctx", "1024", "--lora", dirs.base, "--lora", `a=${dirs.a}`,
                                "--lora", `b=${dirs.b}:0.5`]);
  client = new OpenAI({ apiKey: "none", baseURL: s.url + "/v1", maxRetries: 0 });
});
after(async () => { if (s) assert.equal(await stopServer(s), 0, s.output()); });

test("adapters are models; batched requests for different adapters equal generate --lora alone", async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ["test", "a", "b"]);
  assert.equal(models.data[1].parent, "test");
  const prompts = ["hello", "The quick brown fox", "1 2 3"];
  const jobs = [];
  for (const p of prompts) {
    for (const m of ["test", "a", "b"]) jobs.push({ p, m });
  }
  const ask = ({ p, m }) => client.completions.create({ model: m, prompt: p, max_tokens: 16, temperature: 0 });
  const together = await Promise.all(jobs.map(ask));  // 9 requests on 4 slots: adapters mixed in the steps
  for (let i = 0; i < jobs.length; i++) {
    const { p, m } = jobs[i];
    assert.equal(together[i].model, m);
    // The unnamed adapter first, then the model's: the order generate applies them in.
    const loras = [dirs.base, ...(m === "a" ? [dirs.a] : m === "b" ? [`${dirs.b}:0.5`] : [])];
    assert.equal(together[i].choices[0].text, generate(p, 16, loras), `${m} on '${p}'`);
  }
  // The adapters change the output (else the comparison above proves little).
  const texts = [0, 1, 2].map((k) => together[k].choices[0].text);  // "hello" under test, a, b
  assert.ok(new Set(texts).size >= 2, JSON.stringify(texts));
  assert.notEqual(together[0].choices[0].text, generate("hello", 16, []));  // and so does the unnamed one
  // Chat and embeddings take the adapter too; an unknown model is a 404 naming what is served.
  const c = await client.chat.completions.create({ model: "a", messages: [{ role: "user", content: "hi" }],
                                                   max_tokens: 4, temperature: 0 });
  assert.equal(c.model, "a");
  const e = await client.embeddings.create({ model: "b", input: "hello", encoding_format: "float" });
  const e0 = await client.embeddings.create({ model: "test", input: "hello", encoding_format: "float" });
  assert.equal(e.model, "b");
  assert.notDeepEqual(e.data[0].embedding, e0.data[0].embedding);
  const bad = await post(s.url + "/v1/completions", { model: "c", prompt: "x" });
  assert.equal(bad.status, 404);
  assert.equal(bad.json.error.code, "model_not_found");
  assert.match(bad.json.error.message, /'test', 'a', 'b'/);
});

test("a shared system prompt is copied between slots, with the tokens of recomputing it", async () => {
  const system = "You are a terse assistant who answers in one line. ".repeat(3);
  const ask = (q, m = "test") => client.chat.completions.create({
    model: m, messages: [{ role: "system", content: system }, { role: "user", content: q }],
    max_tokens: 24, temperature: 0, ignore_eos: true });
  const metric = async (name) => Number((await (await fetch(s.url + "/metrics")).text())
    .match(new RegExp(`^${name} (\\d+)`, "m"))[1]);
  const first = await ask("What is 2+2?");
  const copied0 = await metric("tritter_prompt_tokens_copied_total");
  // Four at once with the same system prompt: the slots that did not run the first take its prefix by copy.
  const qs = ["Name a color.", "Why?", "Say hi", "Count to 3"];
  const together = await Promise.all(qs.map((q) => ask(q)));
  const copied = (await metric("tritter_prompt_tokens_copied_total")) - copied0;
  assert.ok(copied >= system.length, `copied ${copied} prompt tokens`);
  for (const r of together) assert.ok(r.usage.prompt_tokens_details.cached_tokens >= system.length);
  // The same requests on a fresh one-slot server (the system prompt computed, not copied) give the same text.
  const fresh = await startServer(model, ["--parallel", "1", "--ctx", "512", "--lora", dirs.base]);
  try {
    const c2 = new OpenAI({ apiKey: "none", baseURL: fresh.url + "/v1", maxRetries: 0 });
    for (let i = 0; i < qs.length; i++) {
      const alone = await c2.chat.completions.create({ model: "test", messages: [{ role: "system", content: system },
        { role: "user", content: qs[i] }], max_tokens: 24, temperature: 0, ignore_eos: true });
      if (i === 0) assert.equal(alone.usage.prompt_tokens_details.cached_tokens, 0);
      assert.equal(together[i].choices[0].message.content, alone.choices[0].message.content, qs[i]);
    }
    // One slot: nothing was copied there (later questions reuse that slot's own computed prefix).
    const m = await (await fetch(fresh.url + "/metrics")).text();
    assert.match(m, /^tritter_prompt_tokens_copied_total 0$/m);
  } finally {
    assert.equal(await stopServer(fresh), 0);
  }
  assert.ok(first.choices[0].message.content.length > 0);
  // Under another adapter the system prompt is not shared: the copy needs the same adapter's keys and values.
  const before = await metric("tritter_prompt_tokens_copied_total");
  const other = await ask("What is 2+2?", "a");
  assert.ok((await metric("tritter_prompt_tokens_copied_total")) - before < system.length);
  assert.ok(other.usage.prompt_tokens_details.cached_tokens < system.length);
});
