// The dashboard rules ported from luminate-model (lib/dashboard.ts), checked against the same cases as
// the Rust tests (dashboard/interval.rs, variables.rs, resolve.rs), and a panel's number formatting.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Dashboard } from "../../src/lib/dashboard.ts";
import { autoInterval, formatNumber, gridArea, level, panelQuery, parseDuration, reference, selected, substitute } from "../../src/lib/dashboard.ts";

const ms = (d: string) => parseDuration(d) as number;

// interval.rs: common_ranges_get_round_intervals
test("common ranges get the model's round intervals", () => {
  const cases: [string, string][] = [
    ["1m", "1s"], ["5m", "1s"], ["15m", "5s"], ["1h", "15s"], ["3h", "1m"], ["6h", "2m"], ["12h", "5m"], ["24h", "5m"],
    ["2d", "10m"], ["7d", "1h"], ["30d", "3h"], ["90d", "12h"], ["1000d", "1w"], ["3000d", "30d"],
  ];
  for (const [span, interval] of cases) assert.equal(autoInterval(ms(span)), interval, span);
});

// interval.rs: ranges_from_100s_to_300d_get_100_to_300_buckets
test("ranges from 100 s to 300 d get 100 to 300 buckets", () => {
  for (let span = 100_000; span <= 300 * 86_400_000; span = Math.floor((span * 13) / 10) + 7) {
    const buckets = Math.ceil(span / ms(autoInterval(span)));
    assert.ok(buckets >= 100 && buckets <= 300, `${span} ms: ${buckets} buckets of ${autoInterval(span)}`);
  }
});

// variables.rs: references_are_whole_values
test("references are whole values", () => {
  assert.equal(reference("$region"), "region");
  assert.equal(reference("${region}"), "region");
  for (const literal of ["region", "$", "${region", "$region}", "eu-$region", "$1a", "${}", "$a-b"]) {
    assert.equal(reference(literal), null, literal);
  }
});

const bind = (name: string): string[] | null =>
  ({ one: ["a"], many: ["b", "c"], all: [] } as Record<string, string[]>)[name] ?? null;

// variables.rs: one_value_many_values_and_all
test("one value, many values and all", () => {
  assert.deepEqual(
    substitute({ a: "$one", b: "${many}", c: "$all", d: "literal", e: ["x", "$many"], f: ["$all"], g: ["$one"] }, bind),
    { a: "a", b: ["b", "c"], d: "literal", e: ["x", "b", "c"], g: ["a"] },
  );
});

// variables.rs: an_undeclared_variable_is_reported_and_left
test("an undeclared variable is left as written", () => {
  assert.deepEqual(substitute({ r: "$nope", s: ["$one", "${gone}"] }, bind), { r: "$nope", s: ["$one", "${gone}"] });
});

// resolve.rs's dashboard
const dashboard: Dashboard = {
  id: "d", title: "T", timeRange: { relative: "24h" },
  panels: [
    { id: "ts", title: "p95", type: "timeseries", gridPosition: { x: 0, y: 0, w: 12, h: 4 },
      query: { queryType: "aggregate", metricName: "api_latency", aggregation: "p95", filters: { customer_id: "$customer_id", region: "${region}" } } },
    { id: "own", title: "rate", type: "timeseries", gridPosition: { x: 12, y: 0, w: 12, h: 4 },
      query: { queryType: "rate", metricName: "total_requests", timeRange: { relative: "1h" }, interval: "1m" } },
    { id: "tbl", title: "top", type: "table", gridPosition: { x: 0, y: 4, w: 24, h: 4 },
      query: { queryType: "aggregate", metricName: "api_requests", aggregation: "count", groupBy: ["customer_id"], filters: { region: "$region" } } },
  ],
  variables: [
    { name: "customer_id", type: "query", query: { queryType: "listDimensionValues", metricName: "api_latency", dimension: "customer_id" } },
    { name: "region", type: "custom", options: ["us-west-2", "us-east-1", "eu-west-1"], multi: true, default: "us-west-2" },
  ],
};

// resolve.rs: defaults_the_dashboard_range_and_an_auto_interval
test("a panel gets the dashboard's range, the auto interval, defaults, and drops an unset variable's filter", () => {
  assert.deepEqual(panelQuery(dashboard, dashboard.panels[0], {}), {
    queryType: "aggregate", metricName: "api_latency", aggregation: "p95",
    filters: { region: "us-west-2" }, timeRange: { relative: "24h" }, interval: "5m",
  });
});

// resolve.rs: choices_and_the_viewers_range_win
test("the viewer's choices and range win", () => {
  assert.deepEqual(panelQuery(dashboard, dashboard.panels[0], { customer_id: "cust_1", region: ["eu-west-1", "us-east-1"] }, { relative: "1h" }), {
    queryType: "aggregate", metricName: "api_latency", aggregation: "p95",
    filters: { customer_id: "cust_1", region: ["eu-west-1", "us-east-1"] }, timeRange: { relative: "1h" }, interval: "15s",
  });
});

// resolve.rs: a_panels_own_range_and_interval_are_kept_and_tables_get_no_interval
test("a panel's own range and interval are kept, and tables get no interval", () => {
  assert.deepEqual(panelQuery(dashboard, dashboard.panels[1], {}, { relative: "7d" }), {
    queryType: "rate", metricName: "total_requests", timeRange: { relative: "1h" }, interval: "1m",
  });
  assert.deepEqual(panelQuery(dashboard, dashboard.panels[2], {}), {
    queryType: "aggregate", metricName: "api_requests", aggregation: "count", groupBy: ["customer_id"],
    filters: { region: "us-west-2" }, timeRange: { relative: "24h" },
  });
});

test("clearing a variable that has a default means all values: the filter is dropped", () => {
  assert.deepEqual(panelQuery(dashboard, dashboard.panels[2], { region: [] }).filters, {});
  assert.deepEqual(selected(dashboard.variables![1], {}), ["us-west-2"]);
  assert.deepEqual(selected(dashboard.variables![1], { region: [] }), []);
});

test("a panel's numbers carry its decimals and unit", () => {
  assert.equal(formatNumber(1234.5678, { unit: "ms", decimals: 2 }), "1,234.57 ms");
  assert.equal(formatNumber(3, { unit: "req/s", decimals: 2 }), "3.00 req/s");
  assert.equal(formatNumber(0.123456789, {}), "0.1235");
  assert.equal(formatNumber(42, { decimals: 0 }), "42");
  assert.equal(formatNumber(null, { unit: "ms" }), "—");
});

test("thresholds: at or above critical, at or above warning, else ok", () => {
  const threshold = { warning: 200, critical: 500 };
  assert.equal(level(199.99, threshold), "ok");
  assert.equal(level(200, threshold), "warning");
  assert.equal(level(499, threshold), "warning");
  assert.equal(level(500, threshold), "critical");
  assert.equal(level(900, { warning: 200 }), "warning");
  assert.equal(level(900, undefined), "ok");
});

test("a grid position is a CSS grid area on 1-based lines", () => {
  assert.equal(gridArea({ x: 12, y: 4, w: 12, h: 3 }), "5 / 13 / span 3 / span 12");
});

test("a save over a newer version (409) is told plainly", async () => {
  const { describeError } = await import("../../src/api/client.ts");
  assert.equal(
    describeError(409, "CONFLICT", "version 1 is stale; the dashboard is at version 2", null),
    "Conflict (409) — it was changed meanwhile, or the id is taken: reload and edit again. CONFLICT: version 1 is stale; the dashboard is at version 2",
  );
});
