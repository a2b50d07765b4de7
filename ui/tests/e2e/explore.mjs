// Browser test of Explore in real Chromium against a running Luminate (started by the Rust test
// crates/luminate/tests/ui.rs, which writes the data). Usage: node tests/e2e/explore.mjs BASE_URL METRIC
// Drives the page as a person would — picks the metric, adds an any-of filter through the value
// autocomplete, groups by a dimension, runs the query — then checks that what uPlot plotted and what the
// table lists equal what POST /api/v1/query answers for the same query, for a bucketed aggregate
// (lines) and for one value per group (bars), and that the page logged no console error.
// SCREENSHOT=path saves a picture of the page with its chart.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";

const [base, metric] = process.argv.slice(2);
if (!base || !metric) throw new Error("usage: explore.mjs BASE_URL METRIC");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  throw new Error(`no Chromium at ${executablePath}: install Debian's chromium (./scripts/test.sh does)`);
}

const label = (dims) => {
  const keys = Object.keys(dims).sort();
  return keys.length === 0 ? "all" : keys.map((k) => `${k}=${dims[k]}`).join(", ");
};

/** The server's answer to `body`, without its timing. */
async function answer(body) {
  const response = await fetch(`${base}/api/v1/query`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  const text = await response.text();
  assert.equal(response.status, 200, `query refused: ${text}`);
  const { executionTimeMs: _, ...rest } = JSON.parse(text);
  return rest;
}

/** Runs the form's query, returns the request body the page sent and what the page got back. */
async function run(page) {
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith("/api/v1/query") && r.method() === "POST"),
    page.getByRole("button", { name: "Run query" }).click(),
  ]);
  const response = await request.response();
  if (response.status() !== 200) assert.fail(`the page's query was refused: ${await response.text()}`);
  await page.locator(".chart canvas").first().waitFor();
  return request.postData();
}

/** What uPlot holds: series labels and aligned columns. */
const plotted = (page) =>
  page.locator(".chart").evaluate((el) => ({ labels: el.uplot.series.map((s) => s.label), data: el.uplot.data }));

const tableValues = (page) => page.locator("table.results td[data-value]").evaluateAll((tds) => tds.map((td) => Number(td.dataset.value)));

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const consoleErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // GET / leads to the UI.
  await page.goto(`${base}/`);
  assert.match(new URL(page.url()).pathname, /^\/ui\//, "GET / did not lead to the UI");

  await page.goto(`${base}/ui/explore`);
  const metricBox = page.locator('input[name="metric"]');
  await metricBox.click();
  await metricBox.fill(metric.slice(0, 5));
  await page.getByRole("button", { name: metric, exact: true }).click();
  await page.locator('.group-by label', { hasText: "customer_id" }).locator("input").check();

  // An any-of filter, its values picked from the prefix autocomplete.
  await page.getByRole("button", { name: "+ add filter" }).click();
  await page.locator('select[name="filterKey"]').selectOption("customer_id");
  const valueBox = page.locator('input[name="filterValue"]');
  for (const value of ["cust_1", "cust_3"]) {
    await valueBox.click();
    await valueBox.fill(value);
    await page.locator(".value-input .suggestions button", { hasText: value }).first().click();
  }

  // 1. A bucketed aggregate: one line per group.
  const lineQuery = await run(page);
  const sent = JSON.parse(lineQuery);
  assert.deepEqual(sent.filters, { customer_id: ["cust_1", "cust_3"] }, "the any-of filter was not sent");
  assert.ok(sent.interval, "auto interval missing");
  const lines = await answer(lineQuery);
  assert.equal(lines.results.length, 2, `expected two groups: ${JSON.stringify(lines)}`);
  const shown = await plotted(page);
  assert.deepEqual(shown.labels.slice(1), lines.results.map((r) => label(r.groupKey)));
  lines.results.forEach((r, i) => {
    const column = shown.data[i + 1];
    const drawn = shown.data[0].map((x, j) => [x * 1000, column[j]]).filter(([, v]) => v !== null);
    assert.deepEqual(drawn, r.points.map((p) => [p.timestamp, p.value]), `series ${label(r.groupKey)} drawn wrong`);
  });
  assert.deepEqual(await tableValues(page), lines.results.flatMap((r) => r.points.map((p) => p.value)));
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });

  // 2. One value per group: bars.
  await page.locator('select[name="intervalMode"]').selectOption("none");
  const barQuery = await run(page);
  assert.equal(JSON.parse(barQuery).interval, undefined);
  const bars = await answer(barQuery);
  const barShown = await plotted(page);
  assert.deepEqual(barShown.data[1], bars.results.map((r) => r.value), "bars drawn wrong");
  assert.deepEqual(await tableValues(page), bars.results.map((r) => r.value));
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, "-bars.png"), fullPage: true });

  // 3. A contract error in its own words.
  await page.locator('input[name="limit"]').fill("100000");
  await page.getByRole("button", { name: "Run query" }).click();
  const error = await page.locator('[role="alert"]').first().textContent();
  assert.match(error, /QUERY_LIMIT_EXCEEDED|INVALID_QUERY/, `the refusal was not shown: ${error}`);

  // Only the refused query (400) may have logged an error: the browser reports failed fetches.
  const unexpected = consoleErrors.filter((e) => !/status of 400/.test(e));
  assert.deepEqual(unexpected, [], "console errors");
  console.log(`ok: ${lines.results.length} lines and ${bars.results.length} bars equal the /api/v1/query answer`);
} finally {
  await browser.close();
}
