// `tritter serve` through the official openai client (completions and chat, streamed and not, embeddings, n,
// logprobs, concurrent requests equal to sequential ones) and plain HTTP for auth, llama-server's tokenize
// endpoints, metrics and every error case (malformed JSON, wrong types, unknown model, oversized bodies,
// max_tokens, context overflow, a full queue), a client that disconnects and a SIGTERM mid-stream.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { makeModel, startServer, stopServer, post } from "./helpers.mjs";

const KEY = "k-test-123";
let s, client, model;

before(async () => {
  model = makeModel("test");
  s = await startServer(model, ["--parallel", "4", "--ctx", "2048", "--api-key", KEY, "--max-tokens", "200",
                                "--max-body", "64K"]);
  client = new OpenAI({ apiKey: KEY, baseURL: s.url + "/v1", maxRetries: 0 });
});
after(async () => { if (s) assert.equal(await stopServer(s), 0, s.output()); });

const auth = { Authorization: "Bearer " + KEY };

test("health and models; the key is required and checked", async () => {
  const h = await fetch(s.url + "/health");
  assert.equal(h.status, 200);
  assert.equal((await h.json()).status, "ok");
  for (const headers of [{}, { Authorization: "Bearer wrong" }, { Authorization: "Bearer " + KEY + "x" }]) {
    const r = await fetch(s.url + "/v1/models", { headers });
    assert.equal(r.status, 401);
    const j = await r.json();
    assert.equal(j.error.type, "authentication_error");
  }
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].id, "test");
  assert.equal((await fetch(s.url + "/")).status, 200);  // the chat page needs no key
});

test("completions: greedy is deterministic and streaming gives the same text", async () => {
  const args = { model: "test", prompt: "Hello, ", max_tokens: 12, temperature: 0, ignore_eos: true };
  const a = await client.completions.create(args);
  const b = await client.completions.create(args);
  assert.equal(a.object, "text_completion");
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.equal(a.choices[0].finish_reason, "length");
  assert.equal(a.usage.prompt_tokens, 7);
  assert.equal(a.usage.completion_tokens, 12);
  assert.equal(a.usage.total_tokens, 19);
  const stream = await client.completions.create({ ...args, stream: true });
  let text = "", finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, a.choices[0].text);
  assert.equal(finish, "length");
});

test("chat: non-streaming with usage, streaming with role, deltas and the usage chunk", async () => {
  const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi there" }];
  const r = await client.chat.completions.create({ model: "test", messages, max_tokens: 10, temperature: 0, ignore_eos: true });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.ok(r.usage.prompt_tokens > 20);
  const stream = await client.chat.completions.create({ model: "test", messages, max_tokens: 10, temperature: 0,
    ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  let text = "", role = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const d = chunk.choices[0]?.delta;
    if (d?.role) role = d.role;
    text += d?.content ?? "";
  }
  assert.equal(role, "assistant");
  assert.equal(text, r.choices[0].message.content);
  assert.deepEqual(usage.completion_tokens, r.usage.completion_tokens);
  // The next turn extends this one: the slot's cache is reused.
  const next = await client.chat.completions.create({ model: "test", max_tokens: 4, temperature: 0,
    messages: [...messages, { role: "assistant", content: text }, { role: "user", content: "More" }] });
  assert.ok(next.usage.prompt_tokens_details.cached_tokens > 20, JSON.stringify(next.usage));
});

test("sampling: n choices, a seed reproduces, stop strings are not delivered, logprobs", async () => {
  const r = await client.completions.create({ model: "test", prompt: "abc", max_tokens: 8, temperature: 1, seed: 42, n: 2 });
  assert.equal(r.choices.length, 2);
  assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1]);
  const again = await client.completions.create({ model: "test", prompt: "abc", max_tokens: 8, temperature: 1, seed: 42, n: 2 });
  assert.equal(again.choices[0].text, r.choices[0].text);
  const greedy = await client.completions.create({ model: "test", prompt: "xyz", max_tokens: 16, temperature: 0, ignore_eos: true });
  // A random model emits any bytes (shown as U+FFFD where not UTF-8): stop at a printable ASCII one after the start.
  const t = greedy.choices[0].text;
  const at = [...t].findIndex((ch, i) => i > 0 && ch >= " " && ch <= "~");
  assert.ok(at > 0, "no ASCII byte in " + JSON.stringify(t));
  const stop = [...t][at];
  const cut = await client.completions.create({ model: "test", prompt: "xyz", max_tokens: 16, temperature: 0, ignore_eos: true, stop });
  assert.equal(cut.choices[0].text, t.slice(0, t.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, "stop");
  const lp = await client.completions.create({ model: "test", prompt: "q", max_tokens: 5, temperature: 0, ignore_eos: true, logprobs: 2 });
  const l = lp.choices[0].logprobs;
  assert.equal(l.tokens.length, 5);
  assert.equal(l.token_logprobs.length, 5);
  for (const [i, v] of l.token_logprobs.entries()) {
    assert.ok(v <= 0);
    const alternatives = Object.keys(l.top_logprobs[i]).length;  // two bytes shown as U+FFFD share one key
    assert.ok(alternatives >= 1 && alternatives <= 2, JSON.stringify(l.top_logprobs[i]));
    assert.ok(Math.max(...Object.values(l.top_logprobs[i])) >= v - 1e-9);  // greedy took the most likely
  }
  const clp = await client.chat.completions.create({ model: "test", messages: [{ role: "user", content: "q" }],
    max_tokens: 3, temperature: 0, ignore_eos: true, logprobs: true, top_logprobs: 3 });
  assert.equal(clp.choices[0].logprobs.content.length, 3);
  assert.equal(clp.choices[0].logprobs.content[0].top_logprobs.length, 3);
});

test("concurrent requests (batched) equal the same requests one at a time", async () => {
  const prompts = ["a", "hello world", "The quick brown fox", "1 2 3 4 5 6 7 8 9 10", "zz", "x".repeat(90), "Q:", "ok"];
  const ask = (p) => client.completions.create({ model: "test", prompt: p, max_tokens: 20, temperature: 0, ignore_eos: true });
  const alone = [];
  for (const p of prompts) alone.push((await ask(p)).choices[0].text);
  const together = await Promise.all(prompts.map(ask));
  assert.deepEqual(together.map((r) => r.choices[0].text), alone);
});

test("embeddings: one unit vector per input, the same text gives the same vector", async () => {
  const r = await client.embeddings.create({ model: "test", input: ["hello", "world", "hello"], encoding_format: "float" });
  assert.equal(r.data.length, 3);
  assert.equal(r.data[0].embedding.length, 64);
  for (const d of r.data) {
    const n = Math.sqrt(d.embedding.reduce((a, x) => a + x * x, 0));
    assert.ok(Math.abs(n - 1) < 1e-4, String(n));
  }
  assert.deepEqual(r.data[0].embedding, r.data[2].embedding);
  assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
  assert.equal(r.usage.prompt_tokens, 15);
});

test("tokenize and detokenize as llama-server has them; metrics", async () => {
  const t = await post(s.url + "/tokenize", { content: "hé" }, auth);
  assert.equal(t.status, 200);
  assert.deepEqual(t.json.tokens, [104 + 8, 0xc3 + 8, 0xa9 + 8]);
  const d = await post(s.url + "/detokenize", { tokens: t.json.tokens }, auth);
  assert.equal(d.json.content, "hé");
  const m = await (await fetch(s.url + "/metrics", { headers: auth })).text();
  assert.match(m, /tritter_requests_total\{endpoint="\/v1\/completions",status="200"\} \d+/);
  assert.match(m, /tritter_generated_tokens_total \d+/);
  assert.match(m, /tritter_queue_depth 0/);
  assert.match(m, /tritter_request_seconds_bucket\{le="\+Inf"\} \d+/);
});

test("errors are OpenAI error objects with the right status", async () => {
  const url = s.url + "/v1/completions";
  const cases = [
    [await post(url, "{not json", auth), 400, null],
    [await post(url, "[1,2]", auth), 400, null],
    [await post(url, { prompt: "a", temperature: "hot" }, auth), 400, "temperature"],
    [await post(url, { prompt: "a", max_tokens: 1.5 }, auth), 400, "max_tokens"],
    [await post(url, { prompt: "a", max_tokens: 201 }, auth), 400, "max_tokens"],
    [await post(url, { prompt: "a", n: 0 }, auth), 400, "n"],
    [await post(url, { prompt: "a", stop: ["a", "b", "c", "d", "e"] }, auth), 400, "stop"],
    [await post(url, { prompt: 5 }, auth), 400, "prompt"],
    [await post(url, { prompt: [1e9] }, auth), 400, "prompt"],
    [await post(url, {}, auth), 400, "prompt"],
    [await post(url, { prompt: "x".repeat(600) }, auth), 400, "prompt"],
    [await post(url, { model: "gpt-4", prompt: "a" }, auth), 404, "model"],
    [await post(s.url + "/v1/chat/completions", { messages: "hi" }, auth), 400, "messages"],
    [await post(s.url + "/v1/chat/completions", { messages: [{ content: "x" }] }, auth), 400, "messages"],
    [await post(s.url + "/v1/embeddings", { input: 3 }, auth), 400, "input"],
    [await post(s.url + "/tokenize", { content: 3 }, auth), 400, null],
    [await post(s.url + "/detokenize", { tokens: [-1] }, auth), 400, null],
    [await post(s.url + "/v1/nothing", {}, auth), 404, null],
    [await post(url, JSON.stringify({ prompt: "y".repeat(70000) }), auth), 413, null],
  ];
  for (const [i, [r, status, param]] of cases.entries()) {
    assert.equal(r.status, status, `case ${i}: ${r.text}`);
    assert.equal(typeof r.json?.error?.message, "string", `case ${i}: ${r.text}`);
    if (param) assert.equal(r.json.error.param, param, `case ${i}: ${r.text}`);
  }
  const overflow = await post(url, { prompt: "x".repeat(600) }, auth);
  assert.equal(overflow.json.error.code, "context_length_exceeded");
  assert.match(overflow.json.error.message, /maximum context length is 512/);
  // Still answering after all that.
  assert.equal((await fetch(s.url + "/health")).status, 200);
});

test("a full queue answers 429, a disconnect cancels, SIGTERM finishes in-flight streams", async () => {
  const tiny = makeModel("tiny");
  const t = await startServer(tiny, ["--parallel", "1", "--queue", "1", "--ctx", "1024", "--max-tokens", "1000"]);
  try {
    const long = { prompt: "a", max_tokens: 1000, temperature: 0, ignore_eos: true };
    // A disconnect: read one chunk, abort, the slot frees long before 1000 tokens.
    const ac = new AbortController();
    const res = await fetch(t.url + "/v1/completions", { method: "POST", signal: ac.signal,
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...long, stream: true }) });
    const reader = res.body.getReader();
    await reader.read();
    ac.abort();
    let generated = Infinity;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const h = await (await fetch(t.url + "/health")).json();
      const m = await (await fetch(t.url + "/metrics")).text();
      generated = Number(m.match(/tritter_generated_tokens_total (\d+)/)[1]);
      if (h.slots_active === 0 && generated > 0) break;
    }
    assert.ok(generated < 1000, `generation went on after the disconnect: ${generated} tokens`);
    // Queue of one behind one slot: of 6 at once, some must be refused with 429.
    const rs = await Promise.all(Array.from({ length: 6 }, () => post(t.url + "/v1/completions", { ...long, max_tokens: 100 })));
    const codes = rs.map((r) => r.status);
    assert.ok(codes.includes(429), codes.join(","));
    assert.ok(codes.includes(200), codes.join(","));
    const refused = rs.find((r) => r.status === 429);
    assert.equal(refused.json.error.type, "rate_limit_exceeded");
    // SIGTERM during a stream: the stream still ends properly, then the process exits 0.
    const sres = await fetch(t.url + "/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...long, max_tokens: 60, stream: true }) });
    const sreader = sres.body.getReader();
    await sreader.read();
    t.proc.kill("SIGTERM");
    let body = "";
    for (;;) {
      const { value, done } = await sreader.read();
      if (done) break;
      body += new TextDecoder().decode(value);
    }
    assert.match(body, /data: \[DONE\]/);
    assert.equal(await t.exited, 0, t.output());
  } finally {
    await stopServer(t);
  }
});
