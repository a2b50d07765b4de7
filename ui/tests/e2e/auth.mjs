// Browser test of the UI's auth flow in real Chromium against a Luminate with auth on (started by
// crates/luminate/tests/ui.rs). Usage: node tests/e2e/auth.mjs BASE_URL READ_TOKEN
// The first 401 asks for a token; once given, it is kept in sessionStorage, sent as a bearer token and
// the page works; a page that needs a scope the token lacks says 403 plainly.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";

const [base, token] = process.argv.slice(2);
if (!base || !token) throw new Error("usage: auth.mjs BASE_URL READ_TOKEN");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: install Debian's chromium (./scripts/test.sh does)`);

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const consoleErrors = [];
try {
  const page = await browser.newPage();
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const authorizations = [];
  page.on("request", (r) => { if (r.url().includes("/api/v1/")) authorizations.push(r.headers().authorization ?? null); });

  // No token yet: the metric list is refused and the page asks.
  await page.goto(`${base}/ui/explore`);
  const dialog = page.locator("form.dialog");
  await dialog.waitFor();
  assert.match(await page.locator('[role="alert"]').first().textContent(), /Not signed in \(401\).*UNAUTHORIZED/);

  await dialog.locator('textarea[name="token"]').fill(token);
  await dialog.getByRole("button", { name: "Use token" }).click();
  await page.locator('input[name="metric"]').and(page.locator('[placeholder^="search 1 metric"]')).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("luminate.token")), token);
  await page.getByRole("button", { name: "Run query" }).click();
  await page.locator(".answer .chart canvas").waitFor();
  assert.equal(authorizations.at(-1), `Bearer ${token}`);

  // A read token may not see the overview (admin): said plainly, while health still shows.
  await page.goto(`${base}/ui/status`);
  const refusal = page.locator('[role="alert"]', { hasText: "403" });
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /^Not allowed \(403\) — the token lacks the scope this needs\. FORBIDDEN: /);
  await page.locator(".badge", { hasText: "healthy" }).first().waitFor();

  const unexpected = consoleErrors.filter((e) => !/status of 40[13]/.test(e));
  assert.deepEqual(unexpected, [], "console errors");
  console.log("ok: asked for a token on 401, used it as a bearer token, showed 403 plainly");
} finally {
  await browser.close();
}
