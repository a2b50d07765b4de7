// Queries and discovery through the real server, over one small data set whose answers are known:
// api_latency has cust_a 6 points (1..6) on /orders, cust_b 3 points (10, 20, 30) on /users, cust_c 1
// point (7) on /orders, one a second from t0; requests_total is a counter of cust_a rising 60 a minute.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, LuminateError, type Point } from "../src/index.js";
import { Server, minuteAgo } from "./server.js";

describe("queries and discovery", () => {
  let server: Server;
  let client: Client;
  const t0 = minuteAgo(20);
  const range = (minutes: number) => ({ start: t0, end: t0 + minutes * 60_000 });

  before(async () => {
    server = await Server.start();
    client = new Client(server.url);
    const points: Point[] = [];
    [1, 2, 3, 4, 5, 6].forEach((value, i) =>
      points.push({ name: "api_latency", timestamp: t0 + i * 1000, value, dimensions: { customer_id: "cust_a", endpoint: "/orders" } }));
    [10, 20, 30].forEach((value, i) =>
      points.push({ name: "api_latency", timestamp: t0 + i * 1000, value, dimensions: { customer_id: "cust_b", endpoint: "/users" } }));
    points.push({ name: "api_latency", timestamp: t0, value: 7, dimensions: { customer_id: "cust_c", endpoint: "/orders" } });
    for (let minute = 0; minute < 4; minute++) {
      points.push({ name: "requests_total", timestamp: t0 + minute * 60_000, value: 60 * minute, dimensions: { customer_id: "cust_a" } });
    }
    assert.equal((await client.writePoints(points)).accepted, 14);
  });
  after(() => server.stop());

  test("aggregate p95 by customer", async () => {
    const answer = await client.query({ queryType: "aggregate", metricName: "api_latency", aggregation: "p95", groupBy: ["customer_id"], timeRange: range(1) });
    assert.equal(answer.queryType, "aggregate");
    assert.deepEqual(answer.results.map((r) => [r.groupKey.customer_id, r.value, r.count]), [["cust_b", 30, 3], ["cust_c", 7, 1], ["cust_a", 6, 6]]);
  });

  test("aggregate with an interval and a list filter", async () => {
    const answer = await client.query({
      queryType: "aggregate", metricName: "api_latency", aggregation: "max", interval: "2s",
      filters: { customer_id: ["cust_a", "cust_c"] }, timeRange: range(1),
    });
    assert.deepEqual(answer.results, [{
      groupKey: {}, value: 7, count: 7,
      points: [{ timestamp: t0, value: 7, count: 3 }, { timestamp: t0 + 2000, value: 4, count: 2 }, { timestamp: t0 + 4000, value: 6, count: 2 }],
    }]);
  });

  test("rate per minute", async () => {
    const answer = await client.query({ queryType: "rate", metricName: "requests_total", interval: "1m", timeRange: range(4) });
    assert.deepEqual(answer.results, [{ groupKey: {}, points: [1, 2, 3].map((m) => ({ timestamp: t0 + m * 60_000, rate: 1 })) }]);
  });

  test("a range query cut by its limit says so", async () => {
    const answer = await client.query({ queryType: "range", metricName: "api_latency", limit: 2, filters: { endpoint: "/users" }, timeRange: range(1) });
    assert.equal(answer.truncated, true);
    assert.deepEqual(answer.results.map((r) => r.value), [10, 20]);
  });

  test("listDimensionValues query", async () => {
    const answer = await client.query({ queryType: "listDimensionValues", metricName: "api_latency", dimension: "customer_id", limit: 2 });
    assert.deepEqual(answer.results, [{ value: "cust_a", points: 6 }, { value: "cust_b", points: 3 }]);
    assert.equal(answer.truncated, true);
  });

  test("discovery of metrics, keys and values", async () => {
    assert.deepEqual(await client.metrics(), ["api_latency", "requests_total"]);
    assert.deepEqual(await client.dimensions("api_latency"), ["customer_id", "endpoint"]);
    assert.deepEqual(await client.dimensionValues("api_latency", "customer_id"), [
      { value: "cust_a", points: 6 }, { value: "cust_b", points: 3 }, { value: "cust_c", points: 1 },
    ]);
    assert.deepEqual(await client.dimensionValues("api_latency", "endpoint", { limit: 1 }), [{ value: "/orders", points: 7 }]);
    assert.deepEqual(await client.dimensionValues("api_latency", "customer_id", { prefix: "cust_c" }), [{ value: "cust_c", points: 1 }]);
  });

  test("cardinality", async () => {
    assert.deepEqual(await client.cardinality("api_latency"), [{
      metric: "api_latency", series: 3,
      dimensions: [{ key: "customer_id", distinct_values: 3 }, { key: "endpoint", distinct_values: 2 }],
    }]);
    assert.deepEqual((await client.cardinality()).map((m) => m.metric), ["api_latency", "requests_total"]);
  });

  test("an unknown metric in discovery is NOT_FOUND", async () => {
    await assert.rejects(client.dimensions("no_such_metric"), (e: unknown) =>
      e instanceof LuminateError && e.status === 404 && e.code === "NOT_FOUND");
  });

  test("health", async () => {
    const health = await client.health();
    assert.deepEqual([health.status, health.storage.backend], ["healthy", "embedded"]);
  });
});
