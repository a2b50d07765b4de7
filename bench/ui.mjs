// The UI's speed over the benchmark dataset in headless Chromium (run by bench/ui.sh, which starts the
// server and loads the data). Usage: node bench/ui.mjs BASE_URL HOUR_START [RUNS] [--json]
// Writes a 10 000-point single-series metric `ui_bench_range` into the hour (once), imports the
// 12-panel dashboard `ui_bench` over that hour, then opens it RUNS times and reads the UI's own
// performance measures (always on; see docs/ui.md "Speed"):
//   luminate:dashboard            navigation start → every panel drawn
//   luminate:app-start            when the bundle started running
//   luminate:panel-query:<id>     a panel's query, sent → answered (detail.serverMs: the server's own time)
//   luminate:panel-draw:<id>      a panel's answer → drawn (columns built, uPlot's first draw, or DOM)
//   luminate:chart-draw:<id>      a panel's chart: options built → uPlot's first draw (detail: series, x)
// The first load is cold (the server's and the browser's caches empty); the medians are of the others.
// With --cold N, N more browsers are launched, each for one load: cold loads as a median, not one sample.
// Then each panel's query runs alone, one after another, for the server's own floor.
import { createRequire } from "node:module";

const require = createRequire(new URL("../ui/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const argv = process.argv.slice(2);
const coldAt = argv.indexOf("--cold");
const coldBrowsers = coldAt >= 0 ? Math.max(0, Number(argv[coldAt + 1])) : 0;
const args = argv.filter((a, i) => a !== "--json" && i !== coldAt && i !== coldAt + 1);
const asJson = argv.includes("--json");
const [base, hourText, runsText = "5"] = args;
if (!base || !hourText || Number.isNaN(coldBrowsers)) throw new Error("usage: ui.mjs BASE_URL HOUR_START [RUNS] [--cold N] [--json]");
const hour = Number(hourText);
const runs = Math.max(2, Number(runsText));
const HOUR = 3_600_000;

async function api(method, path, body, okStatuses = []) {
  const response = await fetch(`${base}${path}`, { method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok && !okStatuses.includes(response.status)) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// One series of 10 000 points over the hour, for the range chart.
const counted = await api("POST", "/api/v1/query", { queryType: "aggregate", metricName: "ui_bench_range", aggregation: "count", timeRange: { start: hour, end: hour + HOUR } }, [400, 404]);
if (!counted?.results?.[0]?.count) {
  const metrics = Array.from({ length: 10_000 }, (_, i) => ({
    name: "ui_bench_range", timestamp: hour + i * 360, value: Math.round((100 + 40 * Math.sin(i / 300) + (i % 17)) * 10) / 10, dimensions: { probe: "p1" },
  }));
  await api("POST", "/api/v1/write", { metrics });
}

const at = (x, y, w, h) => ({ x, y, w, h });
const latency = (extra) => ({ queryType: "aggregate", metricName: "api_latency", ...extra });
const dashboard = {
  id: "ui_bench", title: "UI benchmark (12 panels)", tags: ["bench"], timeRange: { start: hour, end: hour + HOUR },
  panels: [
    { id: "latency_50x300", title: "avg latency by endpoint, region (50 × 300)", type: "timeseries", gridPosition: at(0, 0, 16, 5),
      query: latency({ aggregation: "avg", groupBy: ["endpoint", "region"], interval: "12s", limit: 50 }), display: { unit: "ms", legend: { show: false } } },
    { id: "p95_eu", title: "p95 latency, eu-west-1", type: "gauge", gridPosition: at(16, 0, 8, 5),
      query: latency({ aggregation: "p95", filters: { region: "eu-west-1" } }), display: { unit: "ms", decimals: 1, threshold: { warning: 300, critical: 600 } } },
    { id: "range_10k", title: "ui_bench_range (10 000 points)", type: "timeseries", gridPosition: at(0, 5, 16, 5),
      query: { queryType: "range", metricName: "ui_bench_range", limit: 10000 } },
    { id: "avg_latency", title: "avg latency", type: "gauge", gridPosition: at(16, 5, 8, 5), query: latency({ aggregation: "avg" }), display: { unit: "ms", decimals: 1 } },
    { id: "p95_by_region", title: "p95 latency by region", type: "timeseries", gridPosition: at(0, 10, 12, 4), query: latency({ aggregation: "p95", groupBy: ["region"] }) },
    { id: "rate_by_region", title: "requests/s by region", type: "timeseries", gridPosition: at(12, 10, 12, 4), query: { queryType: "rate", metricName: "requests_total", groupBy: ["region"] } },
    { id: "count_by_status", title: "points by status code", type: "timeseries", gridPosition: at(0, 14, 12, 4), query: latency({ aggregation: "count", groupBy: ["status_code"] }) },
    { id: "count_by_region", title: "points by region", type: "bar", gridPosition: at(12, 14, 12, 4), query: latency({ aggregation: "count", groupBy: ["region"] }) },
    { id: "avg_by_endpoint", title: "avg latency by endpoint", type: "bar", gridPosition: at(0, 18, 12, 4), query: latency({ aggregation: "avg", groupBy: ["endpoint"] }) },
    { id: "sum_by_region_status", title: "sum by region, status", type: "bar", gridPosition: at(12, 18, 12, 4), query: latency({ aggregation: "sum", groupBy: ["region", "status_code"], limit: 50 }) },
    { id: "p99_endpoint_eu", title: "p99 by endpoint, eu-west-1", type: "table", gridPosition: at(0, 22, 12, 5), query: latency({ aggregation: "p99", groupBy: ["endpoint"], filters: { region: "eu-west-1" } }), display: { unit: "ms", decimals: 1 } },
    { id: "top_customers", title: "top 10 customers by points", type: "table", gridPosition: at(12, 22, 12, 5), query: latency({ aggregation: "count", groupBy: ["customer_id"], limit: 10 }) },
  ],
};
await api("DELETE", "/api/v1/dashboards/ui_bench", undefined, [404]);
await api("POST", "/api/v1/dashboards", { dashboard });

const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
/** Opens the dashboard in `page` and waits until every panel is drawn; navigation → drawn, in ms. */
async function openDashboard(page) {
  await page.goto(`${base}/ui/dashboards?id=ui_bench`);
  await page.waitForFunction(() => performance.getEntriesByName("luminate:dashboard").length > 0, null, { timeout: 120_000 });
  return page.evaluate(() => performance.getEntriesByName("luminate:dashboard")[0].duration);
}
const browser = await launch();
const loads = [];
/** Each panel's resolved query (as the page sent it), for the server's time alone. */
let resolved = [];
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  for (let run = 0; run < runs; run++) {
    const total = await openDashboard(page);
    const entries = await page.evaluate(() => performance.getEntries()
      .filter((e) => e.name.startsWith("luminate:"))
      .map((e) => ({ name: e.name, start: e.startTime, duration: e.duration, detail: e.detail ?? null })));
    const states = await page.locator(".dash-panel").evaluateAll((ps) => ps.map((p) => [p.dataset.panelId, p.dataset.state, p.textContent]));
    const failed = states.filter(([, state]) => state !== "drawn");
    if (states.length !== 12 || failed.length > 0) throw new Error(`panels not drawn: ${JSON.stringify(failed)} ${errors}`);
    if (run === 0) resolved = await page.locator(".dash-panel").evaluateAll((ps) => ps.map((p) => [p.dataset.panelId, JSON.parse(p.dataset.query)]));
    if (run === 0 && process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    const one = (name) => entries.find((e) => e.name === name);
    const byPanel = (prefix) => Object.fromEntries(entries.filter((e) => e.name.startsWith(prefix)).map((e) => [e.name.slice(prefix.length), e]));
    const queries = byPanel("luminate:panel-query:");
    const draws = byPanel("luminate:panel-draw:");
    const chart = (id) => entries.find((e) => e.name === `luminate:chart-draw:${id}`);
    const slowest = Object.entries(queries).sort((a, b) => b[1].start + b[1].duration - (a[1].start + a[1].duration))[0];
    loads.push({
      total,
      appStart: one("luminate:app-start").start,
      firstQuerySent: Math.min(...Object.values(queries).map((q) => q.start)),
      lastAnswer: slowest[1].start + slowest[1].duration,
      lastAnswerPanel: slowest[0],
      maxServerMs: Math.max(...Object.values(queries).map((q) => q.detail.serverMs)),
      sumServerMs: Object.values(queries).reduce((s, q) => s + q.detail.serverMs, 0),
      query: Object.fromEntries(Object.entries(queries).map(([id, q]) => [id, { client: q.duration, server: q.detail.serverMs }])),
      draw: Object.fromEntries(Object.entries(draws).map(([id, d]) => [id, d.duration])),
      maxDraw: Math.max(...Object.values(draws).map((d) => d.duration)),
      chart50x300: { ...chart("latency_50x300").detail, uplot: chart("latency_50x300").duration, panel: draws.latency_50x300.duration },
      chart10k: { ...chart("range_10k").detail, uplot: chart("range_10k").duration, panel: draws.range_10k.duration },
    });
  }
} finally {
  await browser.close();
}

// Cold loads: a browser just launched, one load each.
const coldLoads = [loads[0].total];
for (let b = 0; b < coldBrowsers; b++) {
  const fresh = await launch();
  try {
    coldLoads.push(await openDashboard(await fresh.newPage({ viewport: { width: 1600, height: 1000 } })));
  } finally {
    await fresh.close();
  }
}

// The server's floor: each panel's query alone, one after the other (median of 3 after a warm-up).
const alone = {};
for (const [id, query] of resolved) {
  const times = [];
  for (let i = 0; i < 4; i++) times.push((await api("POST", "/api/v1/query", query)).executionTimeMs);
  alone[id] = times.slice(1).sort((a, b) => a - b)[1];
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const warm = loads.slice(1);
const med = (f) => median(warm.map(f));
const summary = {
  runs: loads.length,
  cold: loads[0],
  median: {
    total: med((l) => l.total), appStart: med((l) => l.appStart), firstQuerySent: med((l) => l.firstQuerySent), lastAnswer: med((l) => l.lastAnswer),
    maxServerMs: med((l) => l.maxServerMs), maxDraw: med((l) => l.maxDraw),
    chart50x300: { panel: med((l) => l.chart50x300.panel), uplot: med((l) => l.chart50x300.uplot), series: loads[0].chart50x300.series, x: loads[0].chart50x300.x },
    chart10k: { panel: med((l) => l.chart10k.panel), uplot: med((l) => l.chart10k.uplot), series: loads[0].chart10k.series, x: loads[0].chart10k.x },
    query: Object.fromEntries(Object.keys(loads[0].query).map((id) => [id, { client: med((l) => l.query[id].client), server: med((l) => l.query[id].server), alone: alone[id], draw: med((l) => l.draw[id]) }])),
  },
  serverAloneSumMs: Object.values(alone).reduce((a, b) => a + b, 0),
  coldLoads,
};
if (asJson) {
  console.log(JSON.stringify(summary, null, 2));
} else {
  const ms = (v) => `${v.toFixed(0)} ms`;
  const m = summary.median;
  console.log(`12-panel dashboard, ${warm.length} warm loads (median; cold first load in brackets):`);
  console.log(`  navigation → every panel drawn   ${ms(m.total)}  [${ms(loads[0].total)}]   target < 1000 ms`);
  if (coldLoads.length > 1) {
    console.log(`  cold loads, ${coldLoads.length} browsers        median ${ms(median(coldLoads))}, ${ms(Math.min(...coldLoads))} – ${ms(Math.max(...coldLoads))}`);
  }
  console.log(`  navigation → bundle running      ${ms(m.appStart)}  [${ms(loads[0].appStart)}]`);
  console.log(`  navigation → first query sent    ${ms(m.firstQuerySent)}  [${ms(loads[0].firstQuerySent)}]`);
  console.log(`  navigation → last answer         ${ms(m.lastAnswer)}  [${ms(loads[0].lastAnswer)}]`);
  console.log(`  slowest query, server's own time ${ms(m.maxServerMs)}  [${ms(loads[0].maxServerMs)}]`);
  console.log(`  slowest panel drawing            ${ms(m.maxDraw)}  [${ms(loads[0].maxDraw)}]`);
  console.log(`  ${m.chart50x300.series} series × ${m.chart50x300.x} buckets: answer → drawn ${ms(m.chart50x300.panel)} (uPlot ${ms(m.chart50x300.uplot)})   target < 100 ms`);
  console.log(`  range chart, ${m.chart10k.x} points: answer → drawn ${ms(m.chart10k.panel)} (uPlot ${ms(m.chart10k.uplot)})   target < 100 ms`);
  console.log(`  the 12 queries alone, one after another: ${ms(summary.serverAloneSumMs)} of server time in all`);
  console.log("  panel                      client ms  server ms  alone ms  draw ms   (client, server: in the page, 12 at once)");
  for (const [id, q] of Object.entries(m.query)) {
    console.log(`  ${id.padEnd(26)} ${q.client.toFixed(0).padStart(9)} ${String(q.server).padStart(10)} ${String(q.alone).padStart(9)} ${q.draw.toFixed(1).padStart(8)}`);
  }
}
