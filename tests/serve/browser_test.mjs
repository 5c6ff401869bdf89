// The chat page in a real browser: Debian's chromium, headless, driven by playwright-core. Types a message, sends
// it and waits for the streamed reply and the tokens/s line to appear.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { makeModel, startServer, stopServer } from "./helpers.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
let s, browser;

before(async () => {
  s = await startServer(makeModel("test"), ["--parallel", "2", "--ctx", "1024"]);
  const profile = mkdtempSync(path.join(tmpdir(), "tritter-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  if (browser) await browser.close();
  if (s) await stopServer(s);
});

test("the chat page streams a reply and shows tokens/s", async () => {
  const page = await browser.newPage();
  await page.goto(s.url + "/");
  assert.equal(await page.title(), "Tritter chat");
  await page.fill("#max", "24");
  await page.fill("#temp", "0");
  await page.fill("#input", "Hello there");
  await page.click("#send");
  await page.waitForSelector(".msg.user");
  assert.equal(await page.textContent(".msg.user"), "Hello there");
  await page.waitForSelector('.msg.assistant[data-done="1"]', { timeout: 20000 });
  const reply = await page.textContent(".msg.assistant");
  assert.ok(!(await page.$(".msg.assistant.error")), "the page reported an error: " + reply);
  assert.match(await page.textContent("#stats"), /tokens/);
  // The same conversation through the API gives the same reply (greedy): the page streamed it all.
  const r = await fetch(s.url + "/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "Hello there" }], max_tokens: 24, temperature: 0 }) });
  assert.equal(reply, (await r.json()).choices[0].message.content);
});
