// A soak of `tritter serve` (not a test): SECONDS of mixed load from CLIENTS concurrent loops — completions and
// chat, streamed and not, streams dropped at a random point, oversized bodies, malformed JSON, bad types,
// embeddings, chats sharing one system prompt (the prefix cache) — while the server's RSS is sampled every 10 s.
// With ADAPTER=DIR the server also loads it as model "a" and a third of the requests name it. Prints the RSS
// series and the answer counts; fails if the server stops answering /health or crashes, or a request that should
// succeed does not.
//   node bench/serve_soak.mjs MODEL [SECONDS=600] [CLIENTS=8]      (TRITTER_CLI=path of the CLI, default build/tritter)
import { readFileSync } from "node:fs";
import { startServer, stopServer } from "../tests/serve/helpers.mjs";

const [model, secs = "600", clients = "8"] = process.argv.slice(2);
if (!model) { console.error("usage: node bench/serve_soak.mjs MODEL [SECONDS] [CLIENTS]"); process.exit(2); }
const adapter = process.env.ADAPTER;
const s = await startServer(model, ["--parallel", "4", "--ctx", "2048", "--queue", "16", "--max-tokens", "256",
                                    "--max-body", "256K", "--timeout", "30",
                                    ...(adapter ? ["--lora", `a=${adapter}`] : [])]);
const rss = () => Number(readFileSync(`/proc/${s.proc.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;
const counts = {};
const note = (k) => { counts[k] = (counts[k] || 0) + 1; };
const end = Date.now() + Number(secs) * 1000;
const rand = (n) => Math.floor(Math.random() * n);
const words = "the quick brown fox jumps over a lazy dog while tritter serves ternary tokens".split(" ");
const text = (n) => Array.from({ length: n }, () => words[rand(words.length)]).join(" ");

const system = "You answer in one short line and never repeat the question. ".repeat(2);
const pick = () => (adapter && rand(3) === 0 ? "a" : undefined);

async function once() {
  const kind = rand(11);
  const headers = { "Content-Type": "application/json" };
  const go = (path, body, signal) => fetch(s.url + path, { method: "POST", headers, body, signal });
  try {
    if (kind <= 2) {
      const r = await go("/v1/completions", JSON.stringify({ model: pick(), prompt: text(1 + rand(60)), max_tokens: 1 + rand(64), temperature: Math.random() }));
      await r.text(); note("completion " + r.status);
    } else if (kind <= 4) {
      const ac = new AbortController();
      const r = await go("/v1/chat/completions", JSON.stringify({ model: pick(), messages: [{ role: "user", content: text(1 + rand(40)) }],
        max_tokens: 32 + rand(200), stream: true, ignore_eos: true }), ac.signal);
      const reader = r.body.getReader();
      const drop = rand(2) === 0 ? rand(20) : Infinity;  // half the streams are dropped early
      for (let i = 0; ; i++) {
        if (i >= drop) { ac.abort(); note("stream dropped"); break; }
        const { done } = await reader.read();
        if (done) { note("stream " + r.status); break; }
      }
    } else if (kind === 5) {
      const r = await go("/v1/completions", JSON.stringify({ prompt: "x".repeat(300000) }));
      await r.text(); note("oversized " + r.status);
    } else if (kind === 6) {
      const r = await go("/v1/chat/completions", "{\"messages\": [" + "{".repeat(rand(50)));
      await r.text(); note("malformed " + r.status);
    } else if (kind === 7) {
      const r = await go("/v1/completions", JSON.stringify({ prompt: [text(3)], max_tokens: "many", temperature: [] }));
      await r.text(); note("bad types " + r.status);
    } else if (kind === 8) {
      const r = await go("/v1/embeddings", JSON.stringify({ input: [text(5), text(30)] }));
      await r.text(); note("embeddings " + r.status);
    } else if (kind === 9) {
      const r = await go("/v1/completions", JSON.stringify({ prompt: "y".repeat(3000) }));  // over the slot context
      await r.text(); note("overflow " + r.status);
    } else {
      const r = await go("/v1/chat/completions", JSON.stringify({ model: pick(), max_tokens: 1 + rand(32),
        messages: [{ role: "system", content: system }, { role: "user", content: text(1 + rand(10)) }] }));
      const j = await r.json(); note("shared system " + r.status);
      note("cached " + (j.usage?.prompt_tokens_details?.cached_tokens >= system.length ? "whole system" : "part"));
    }
  } catch (e) {
    note(e.name === "AbortError" ? "stream dropped" : "client error " + (e.cause?.code || e.message));
  }
}

const samples = [[0, rss()]];
const t0 = Date.now();
const sampler = setInterval(() => samples.push([Math.round((Date.now() - t0) / 1000), rss()]), 10000);
await Promise.all(Array.from({ length: Number(clients) }, async () => { while (Date.now() < end) await once(); }));
clearInterval(sampler);
const health = await fetch(s.url + "/health");
const metrics = await (await fetch(s.url + "/metrics")).text();
for (const name of ["tritter_prompt_tokens_cached_total", "tritter_prompt_tokens_copied_total", "tritter_generated_tokens_total"]) {
  console.log(name, metrics.match(new RegExp(`^${name} (\\d+)`, "m"))?.[1]);
}
samples.push([Math.round((Date.now() - t0) / 1000), rss()]);
console.log("RSS over time (s, MiB):", samples.map(([t, m]) => `${t}:${m.toFixed(0)}`).join(" "));
console.log("answers:", JSON.stringify(counts));
console.log("health at the end:", health.status);
const code = await stopServer(s);
console.log("server exit code on SIGTERM:", code);
// Good requests answer 200 and bad ones their 4xx (413 oversized, 400 malformed / bad types / overflow).
const wrong = Object.keys(counts).filter((k) => /^(completion|stream|embeddings|shared system) (?!200)\d/.test(k) ||
  /^(oversized (?!413)|malformed (?!400)|bad types (?!400)|overflow (?!400)|client error)/.test(k));
if (wrong.length) console.log("unexpected answers:", wrong.join(", "));
process.exit(health.status === 200 && code === 0 && !wrong.length ? 0 : 1);
