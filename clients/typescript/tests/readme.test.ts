// The README's example, run as it is written against a real server (only its address and the
// package's path changed), with the compiled client.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { Server } from "./server.js";

const here = dirname(fileURLToPath(import.meta.url)); // build/tests
const root = resolve(here, "..", "..");

test("the README's example prints what the README says", async () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(example, "README.md has no ts example");
  assert.ok(example.trim().split("\n").length <= 10);
  const server = await Server.start();
  const dir = mkdtempSync(join(tmpdir(), "luminate-readme-"));
  try {
    const script = join(dir, "example.mjs");
    const client = pathToFileURL(join(root, "build", "src", "index.js")).href;
    writeFileSync(script, example.replace('"luminate-client"', JSON.stringify(client)).replace("http://127.0.0.1:8080", server.url));
    const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 60_000 });
    assert.equal(stdout, "cust_1 102 2\ncust_2 101 1\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});
