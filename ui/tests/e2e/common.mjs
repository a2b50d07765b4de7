// What the newer browser scripts share: Debian's chromium through playwright-core, a page that collects
// console errors, the JSON API of the server under test, and waiting for a dashboard's panels.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";

export const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** A headless Chromium and one page (`viewport`) whose console errors are collected in `errors`. */
export async function open(viewport = { width: 1400, height: 1200 }) {
  if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: install Debian's chromium (./scripts/test.sh does)`);
  const browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  return { browser, page, errors };
}

/** A call of the server's JSON API that must succeed. */
export async function api(base, method, path, body) {
  const response = await fetch(`${base}${path}`, { method, headers: { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path} refused: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** Waits until no panel is loading; every panel must have drawn (not a refusal). Their ids, in order. */
export async function panelsDrawn(page) {
  await page.waitForFunction(() => {
    const panels = [...document.querySelectorAll(".dash-panel")];
    return panels.length > 0 && panels.every((p) => p.dataset.state !== "loading");
  });
  const states = await page.locator(".dash-panel").evaluateAll((ps) => ps.map((p) => [p.dataset.panelId, p.dataset.state, p.textContent]));
  for (const [id, state, text] of states) assert.equal(state, "drawn", `panel ${id}: ${text}`);
  return states.map(([id]) => id);
}

/** SCREENSHOT_DIR=dir saves pictures of the steps, for a person to look at. */
export async function picture(page, name) {
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/${name}.png`, fullPage: true });
}
