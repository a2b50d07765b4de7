// Browser test: refusals the server gives under load are shown in words a person reads, in real
// Chromium against two running Luminates (started by crates/luminate/tests/ui.rs): one whose query rate
// limit is tiny (429) and one whose default query timeout is (504), both holding metric `m`.
// Usage: node tests/e2e/errors.mjs RATE_LIMITED_URL TIMING_OUT_URL
// Explore runs a query until the first is refused with 429, and once against the second (504); a
// dashboard panel over the second shows its 504 in its place. Only those refusals may be logged.
import assert from "node:assert/strict";
import { api, open, picture } from "./common.mjs";

const [limited, slow] = process.argv.slice(2);
if (!limited || !slow) throw new Error("usage: errors.mjs RATE_LIMITED_URL TIMING_OUT_URL");

const { browser, page, errors } = await open();
try {
  const alert = page.locator('.explore > [role="alert"] .error-message');
  const run = page.getByRole("button", { name: "Run query" });

  // 429: the bucket runs dry after a few queries; the message says so, when to retry, and the server's words.
  await page.goto(`${limited}/ui/explore?metric=m`);
  await run.waitFor();
  let text = "";
  for (let i = 0; i < 20 && !/\(429\)/.test(text); i++) {
    await run.click();
    await page.waitForFunction(() => !document.querySelector(".query-form button.primary")?.disabled);
    text = (await alert.count()) > 0 ? await alert.textContent() : "";
  }
  assert.match(text, /^Too many requests \(429\) — retry in \d+ s\. RATE_LIMIT_EXCEEDED: /, text);
  await picture(page, "explore-429");

  // 504: the query outlives the server's 1 ms default timeout.
  await page.goto(`${slow}/ui/explore?metric=m&groupBy=series`);
  await page.locator(".group-by input[type=checkbox]").first().waitFor();
  await page.locator('select[name="aggregation"]').selectOption("p99");
  await run.click();
  await alert.waitFor();
  text = await alert.textContent();
  assert.match(text, /^The query timed out \(504\)\. QUERY_TIMEOUT: /, text);
  await picture(page, "explore-504");

  // The same in a dashboard panel: the refusal in its place.
  await api(slow, "POST", "/api/v1/dashboards", { dashboard: { id: "slow", title: "Slow", timeRange: { relative: "2h" }, panels: [
    { id: "p99", title: "p99 by series", type: "table", gridPosition: { x: 0, y: 0, w: 24, h: 4 },
      query: { queryType: "aggregate", metricName: "m", aggregation: "p99", groupBy: ["series"] } },
  ] } });
  await page.goto(`${slow}/ui/dashboards?id=slow`);
  const panel = page.locator('.dash-panel[data-panel-id="p99"]');
  await page.waitForFunction(() => document.querySelector('.dash-panel[data-panel-id="p99"]')?.dataset.state === "error");
  text = await panel.locator(".error-message").textContent();
  assert.match(text, /^The query timed out \(504\)\. QUERY_TIMEOUT: /, text);
  await picture(page, "panel-504");

  assert.deepEqual(errors.filter((e) => !/status of (429|504)/.test(e)), [], "console errors");
  console.log("ok: 429 and 504 shown plainly");
} finally {
  await browser.close();
}
