// Shared by the server's node tests: make a random packed model with the CLI, start `tritter serve` on a free
// loopback port (it prints the URL), stop it.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const CLI = process.env.TRITTER_CLI || "build/tritter";

export function makeModel(size = "test") {
  const dir = mkdtempSync(path.join(tmpdir(), "tritter-serve-"));
  const file = path.join(dir, `${size}.tpk`);
  execFileSync(CLI, ["init", "--size", size, "--packed", "-o", file], { stdio: "ignore" });
  return file;
}

// Starts the server; resolves to { url, proc, exited (a promise of the exit code), output () => text }.
export function startServer(model, args = []) {
  const proc = spawn(CLI, ["-t", "2", "serve", "-m", model, "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve(code ?? signal)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start: " + out)), 20000);
    const onData = (d) => {
      out += d.toString();
      const m = out.match(/http:\/\/[\d.]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ url: `http://127.0.0.1:${m[1]}`, proc, exited, output: () => out });
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", (d) => { out += d.toString(); });
    proc.on("exit", () => reject(new Error("server exited: " + out)));
  });
}

export async function stopServer(s) {
  if (s.proc.exitCode === null) s.proc.kill("SIGTERM");
  return s.exited;
}

export async function post(url, body, headers = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}
