// Explore's logic and the API client, without a browser (node --test, after esbuild bundles this file).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, Client } from "../../src/api/client.ts";
import type { AggregateAnswer, QueryAnswer } from "../../src/api/types.ts";
import type { ExploreForm } from "../../src/lib/query.ts";
import { autoInterval, barLabels, buildPanelQuery, buildQuery, capSeries, hasRows, chartData, curlFor, effectiveInterval, formOf, parseDuration, tableRows } from "../../src/lib/query.ts";

const form = (patch: Partial<ExploreForm> = {}): ExploreForm => ({
  metric: "api_latency", queryType: "aggregate", aggregation: "p95", filters: [], groupBy: [], interval: "", limit: "", range: "1h", ...patch,
});

test("an aggregate with an any-of filter and a single-value filter builds the contract's query", () => {
  const q = buildQuery(form({
    filters: [{ key: "customer_id", values: ["cust_1", "cust_3"] }, { key: "region", values: ["eu"] }, { key: "host", values: [] }],
    groupBy: ["customer_id"], limit: "10",
  }));
  assert.deepEqual(q, {
    queryType: "aggregate", metricName: "api_latency", timeRange: { relative: "1h" },
    filters: { customer_id: ["cust_1", "cust_3"], region: "eu" },
    aggregation: "p95", groupBy: ["customer_id"], interval: "15s", limit: 10,
  });
});

test("an absolute range sends UTC bounds in Unix ms and sizes the auto interval from them", () => {
  const q = buildQuery(form({ range: "absolute", start: "2026-12-04T00:00", end: "2026-12-05T00:00" }));
  assert.deepEqual(q.timeRange, { start: Date.UTC(2026, 11, 4), end: Date.UTC(2026, 11, 5) });
  assert.equal(q.interval, "5m");
  assert.deepEqual(buildQuery(form({ range: "absolute", start: "", end: "2026-12-05T00:00" })).timeRange, { start: "", end: Date.UTC(2026, 11, 5) });
});

test("a range query carries neither aggregation, groupBy nor interval", () => {
  assert.deepEqual(buildQuery(form({ queryType: "range", groupBy: ["a"], interval: "5m" })), {
    queryType: "range", metricName: "api_latency", timeRange: { relative: "1h" },
  });
});

test("interval none gives an aggregate one value per group, but a rate still gets the auto interval", () => {
  assert.equal(buildQuery(form({ interval: "none" })).interval, undefined);
  assert.equal(buildQuery(form({ queryType: "rate", interval: "none" })).interval, "15s");
  assert.equal(buildQuery(form({ interval: "2m" })).interval, "2m");
});

test("the auto interval is the smallest round width giving at most 300 buckets", () => {
  assert.equal(autoInterval(5 * 60_000), "1s");
  assert.equal(autoInterval(15 * 60_000), "5s");
  assert.equal(autoInterval(3_600_000), "15s");
  assert.equal(autoInterval(24 * 3_600_000), "5m");
  assert.equal(autoInterval(7 * 86_400_000), "1h");
  assert.equal(autoInterval(30 * 86_400_000), "3h");
  assert.equal(effectiveInterval(form({ range: "24h" })), "5m");
  assert.equal(parseDuration("2w"), 1_209_600_000);
  assert.equal(parseDuration("soon"), null);
});

test("curl quotes the query for a shell and refers to the token without writing it", () => {
  const q = buildQuery(form({ filters: [{ key: "name", values: ["it's"] }] }));
  const curl = curlFor("http://127.0.0.1:8080", q, true);
  assert.equal(curl, [
    "curl -sS -X POST 'http://127.0.0.1:8080/api/v1/query'",
    "-H 'Content-Type: application/json'",
    `-H "Authorization: Bearer $LUMINATE_TOKEN"`,
    `-d '{"queryType":"aggregate","metricName":"api_latency","timeRange":{"relative":"1h"},"filters":{"name":"it'\\''s"},"aggregation":"p95","interval":"15s"}'`,
  ].join(" \\\n  "));
  assert.ok(!curlFor("http://h", q, false).includes("Authorization"));
});

test("a bucketed aggregate becomes aligned line columns, a gap where a group has no bucket", () => {
  const data = chartData({
    queryType: "aggregate", truncated: false, executionTimeMs: 1,
    results: [
      { groupKey: { c: "a" }, value: 2, count: 2, points: [{ timestamp: 60_000, value: 1, count: 1 }, { timestamp: 120_000, value: 3, count: 1 }] },
      { groupKey: { c: "b" }, value: 5, count: 1, points: [{ timestamp: 120_000, value: 5, count: 1 }] },
    ],
  });
  assert.deepEqual(data, { kind: "lines", labels: ["c=a", "c=b"], x: [60, 120], series: [[1, 3], [null, 5]] });
});

test("an aggregate without interval becomes bars, one per group in the answer's order", () => {
  const answer: AggregateAnswer = {
    queryType: "aggregate", truncated: true, executionTimeMs: 1,
    results: [{ groupKey: { c: "b" }, value: 9, count: 3 }, { groupKey: {}, value: 4, count: 1 }],
  };
  assert.deepEqual(chartData(answer), { kind: "bars", labels: ["value"], x: [0, 1], series: [[9, 4]], categories: ["c=b", "all"] });
  assert.deepEqual(tableRows(answer), [{ series: "c=b", timestamp: null, value: 9, count: 3 }, { series: "all", timestamp: null, value: 4, count: 1 }]);
});

test("range points group into series by their dimensions; rates plot their rate", () => {
  const range = chartData({
    queryType: "range", truncated: false, executionTimeMs: 1,
    results: [
      { timestamp: 1000, value: 1, dimensions: { h: "x" } },
      { timestamp: 1000, value: 2, dimensions: { h: "y" } },
      { timestamp: 2000, value: 3, dimensions: { h: "x" } },
    ],
  });
  assert.deepEqual(range, { kind: "lines", labels: ["h=x", "h=y"], x: [1, 2], series: [[1, 3], [2, null]] });
  const rate = chartData({ queryType: "rate", truncated: false, executionTimeMs: 1, results: [{ groupKey: {}, points: [{ timestamp: 60_000, rate: 0.5 }] }] });
  assert.deepEqual(rate, { kind: "lines", labels: ["all"], x: [60], series: [[0.5]] });
});

const respond = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  async () => new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers });

test("a contract error keeps the server's code, message and details", async () => {
  const client = new Client(respond(400, { error: { code: "INVALID_QUERY", message: "unknown field `foo`", details: { field: "foo" } } }), () => null);
  const error = await client.metrics().catch((e) => e);
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, "INVALID_QUERY");
  assert.equal(error.message, "400 INVALID_QUERY: unknown field `foo`");
  assert.deepEqual(error.details, { field: "foo" });
});

test("401, 403 and 429 are told plainly, and a 401 asks for a token", async () => {
  let asked = 0;
  const unauthorized = new Client(respond(401, { error: { code: "UNAUTHORIZED", message: "missing bearer token" } }), () => null);
  unauthorized.onUnauthorized = () => { asked++; };
  assert.equal((await unauthorized.metrics().catch((e) => e)).message, "Not signed in (401) — the server wants a valid token. UNAUTHORIZED: missing bearer token");
  assert.equal(asked, 1);
  const forbidden = new Client(respond(403, { error: { code: "FORBIDDEN", message: "needs scope admin" } }), () => "t");
  assert.equal((await forbidden.overview().catch((e) => e)).message, "Not allowed (403) — the token lacks the scope this needs. FORBIDDEN: needs scope admin");
  const limited = new Client(respond(429, { error: { code: "RATE_LIMIT_EXCEEDED", message: "query requests over 10/s" } }, { "Retry-After": "2" }), () => "t");
  assert.equal((await limited.metrics().catch((e) => e)).message, "Too many requests (429) — retry in 2 s. RATE_LIMIT_EXCEEDED: query requests over 10/s");
});

test("the token goes as a bearer header; an unhealthy 503 health is an answer", async () => {
  let seen: Headers | null = null;
  const client = new Client(async (_path, init) => {
    seen = new Headers(init?.headers);
    return new Response(JSON.stringify({ status: "unhealthy" }), { status: 503 });
  }, () => "tok");
  assert.equal((await client.health()).status, "unhealthy");
  assert.equal((seen as Headers | null)?.get("Authorization"), "Bearer tok");
});

test("a line chart draws at most the first 50 series; bars are never cut", () => {
  const many = { kind: "lines" as const, labels: Array.from({ length: 60 }, (_, i) => `s${i}`), x: [1], series: Array.from({ length: 60 }, (_, i) => [i]) };
  const drawn = capSeries(many);
  assert.deepEqual(drawn.labels, many.labels.slice(0, 50));
  assert.deepEqual(drawn.series.at(-1), [49]);
  const few = { ...many, labels: ["a"], series: [[1]] };
  assert.equal(capSeries(few), few);
});

test("a panel's query goes through the form and back unchanged, variables and unknown fields kept", () => {
  const queries: Record<string, unknown>[] = [
    { queryType: "aggregate", metricName: "api_latency", filters: { region: "$region", customer_id: ["$customer", "cust_9"] }, aggregation: "p95", groupBy: ["endpoint"], timeout: "5s" },
    { queryType: "rate", metricName: "requests_total", timeRange: { relative: "6h" }, interval: "1m", limit: 20 },
    { queryType: "range", metricName: "api_latency", timeRange: { relative: "45m" } },
    { queryType: "aggregate", metricName: "api_latency", aggregation: "count", timeRange: { start: 1_764_000_000_000, end: 1_764_003_600_000 } },
  ];
  for (const q of queries) assert.deepEqual(buildPanelQuery(formOf(q)), q);
});

test("a panel's form leaves the range to the dashboard and the interval to the panel type unless set", () => {
  const f = formOf({ queryType: "aggregate", metricName: "api_latency", aggregation: "avg" });
  assert.equal(f.range, "");
  assert.equal(f.interval, "");
  assert.deepEqual(buildPanelQuery({ ...f, interval: "none" }), { queryType: "aggregate", metricName: "api_latency", aggregation: "avg" });
  assert.deepEqual(buildPanelQuery({ ...f, range: "24h", interval: "10m" }),
    { queryType: "aggregate", metricName: "api_latency", timeRange: { relative: "24h" }, aggregation: "avg", interval: "10m" });
});

test("hasRows says whether an answer has a table row, for every shape", () => {
  const answers = [
    { queryType: "range", results: [], truncated: false, executionTimeMs: 1 },
    { queryType: "range", results: [{ timestamp: 1, value: 2, dimensions: {} }], truncated: false, executionTimeMs: 1 },
    { queryType: "rate", results: [{ groupKey: {}, points: [] }], truncated: false, executionTimeMs: 1 },
    { queryType: "rate", results: [{ groupKey: {}, points: [{ timestamp: 1, rate: 0.5 }] }], truncated: false, executionTimeMs: 1 },
    { queryType: "aggregate", results: [{ groupKey: {}, value: 1, count: 1, points: [] }], truncated: false, executionTimeMs: 1 },
    { queryType: "aggregate", results: [{ groupKey: {}, value: 1, count: 1 }], truncated: false, executionTimeMs: 1 },
  ] as QueryAnswer[];
  for (const a of answers) assert.equal(hasRows(a), tableRows(a).length > 0, JSON.stringify(a));
});

test("bar labels are cut to a bar's room, and only every n-th is shown when bars are narrow", () => {
  const names = ["region=eu-west-1", "region=us-east-1", "a", "region=ap-southeast-1"];
  assert.deepEqual(barLabels(names, 200), names);
  assert.deepEqual(barLabels(names, 70), ["region=eu…", "region=us…", "a", "region=ap…"]);
  assert.deepEqual(barLabels(names, 14), ["reg…", "", "a", ""]); // 2 characters a bar: every 2nd, with the room of 2
});
