// Writes through the real server: the query answer of what was written, batching by count and by
// size, gzip on the wire (checked on the server's own request-size histogram), one key stored once, and
// a batch over the server's limits split until it fits.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, canGzip, type WriteStats } from "../src/index.js";
import { Server, count, latencyPoints, minuteAgo } from "./server.js";

function stats(): WriteStats {
  return { batches: 0, points: 0, jsonBytes: 0, sentBytes: 0, gzipped: 0 };
}

describe("writes", () => {
  let server: Server;
  let client: Client;
  const writeRequests = () => server.sample('luminate_write_requests_total{tenant="default",outcome="accepted"}');

  before(async () => {
    server = await Server.start();
    client = new Client(server.url);
  });
  after(() => server.stop());

  test("written points answer the query exactly", async () => {
    const t0 = minuteAgo(10);
    assert.deepEqual(await client.writePoints(latencyPoints(t0, 8, "exact")), { accepted: 8, rejected: 0, errors: [] });
    await client.write({ name: "exact", value: 100, timestamp: new Date(t0 + 60_000), dimensions: { customer_id: "cust_9" } });
    const answer = await client.query({
      queryType: "aggregate", metricName: "exact", aggregation: "sum", groupBy: ["customer_id"],
      timeRange: { start: t0, end: t0 + 120_000 },
    });
    assert.equal(answer.truncated, false);
    assert.deepEqual(answer.results.map((r) => [r.groupKey, r.value, r.count]), [
      [{ customer_id: "cust_9" }, 100, 1], [{ customer_id: "cust_3" }, 10, 2], [{ customer_id: "cust_2" }, 8, 2],
      [{ customer_id: "cust_1" }, 6, 2], [{ customer_id: "cust_0" }, 4, 2],
    ]);
    const rows = await client.query({
      queryType: "range", metricName: "exact", filters: { customer_id: ["cust_1", "cust_9"] },
      timeRange: { start: t0, end: t0 + 120_000 },
    });
    assert.deepEqual(rows.results, [
      { timestamp: t0 + 1000, value: 1, dimensions: { customer_id: "cust_1", endpoint: "/api/v1/orders" } },
      { timestamp: t0 + 5000, value: 5, dimensions: { customer_id: "cust_1", endpoint: "/api/v1/orders" } },
      { timestamp: t0 + 60_000, value: 100, dimensions: { customer_id: "cust_9" } },
    ]);
  });

  test("the writer sends a batch every maxPoints points, gzip-compressed", async () => {
    const before = await writeRequests();
    const sentBefore = await server.sample('luminate_http_request_size_bytes_sum{method="POST",route="/api/v1/write"}');
    const writer = client.writer({ maxPoints: 100 });
    for (const point of latencyPoints(minuteAgo(30), 250, "batched")) await writer.add(point);
    // Two full batches went out as the points came; the last 50 wait for close().
    assert.equal(writer.stats.batches, 2);
    await writer.close();
    assert.deepEqual(writer.result, { accepted: 250, rejected: 0, errors: [] });
    assert.deepEqual([writer.stats.batches, writer.stats.points, writer.stats.gzipped], [3, 250, 3]);
    assert.equal(await count(client, "batched"), 250);
    // The server saw three write requests, whose bodies as sent (before inflating) are the compressed
    // bytes: the whole JSON was far larger.
    assert.equal((await writeRequests()) - before, 3);
    const received = (await server.sample('luminate_http_request_size_bytes_sum{method="POST",route="/api/v1/write"}')) - sentBefore;
    assert.equal(received, writer.stats.sentBytes);
    assert.ok(received * 5 < writer.stats.jsonBytes, `${received} bytes sent for ${writer.stats.jsonBytes} of JSON`);
  });

  test("without CompressionStream (an older browser) batches go uncompressed", async () => {
    const sentBefore = await server.sample('luminate_http_request_size_bytes_sum{method="POST",route="/api/v1/write"}');
    const saved = globalThis.CompressionStream;
    Reflect.deleteProperty(globalThis, "CompressionStream");
    const sent = stats();
    try {
      assert.equal(canGzip(), false);
      await client.writePoints(latencyPoints(minuteAgo(30), 100, "plain"), { stats: sent });
    } finally {
      globalThis.CompressionStream = saved;
    }
    assert.deepEqual([sent.batches, sent.gzipped], [1, 0]);
    assert.equal(sent.sentBytes, sent.jsonBytes);
    const received = (await server.sample('luminate_http_request_size_bytes_sum{method="POST",route="/api/v1/write"}')) - sentBefore;
    assert.equal(received, sent.jsonBytes);
    assert.equal(await count(client, "plain"), 100);
  });

  test("the writer keeps each batch under maxBytes", async () => {
    const before = await writeRequests();
    const t0 = minuteAgo(30);
    const maxBytes = 4000;
    // Every point encodes to the same length, so the batch sizes are known in advance.
    const points = Array.from({ length: 100 }, (_, i) => ({ name: "sized", timestamp: t0 + i * 1000, value: 1000 + i, dimensions: { k: "v" } }));
    const encoded = JSON.stringify(points[0]).length;
    const perBatch = Math.floor((maxBytes - '{"metrics":[]}'.length + 1) / (encoded + 1));
    const writer = client.writer({ maxPoints: 10_000, maxBytes, gzip: false });
    for (const point of points) await writer.add(point);
    await writer.close();
    const expected = Math.ceil(100 / perBatch);
    assert.deepEqual([writer.stats.batches, writer.stats.gzipped], [expected, 0]);
    assert.equal(writer.stats.jsonBytes, writer.stats.sentBytes);
    assert.ok(writer.stats.jsonBytes <= expected * maxBytes);
    assert.equal((await writeRequests()) - before, expected);
    assert.equal(await count(client, "sized"), 100);
  });

  test("one idempotency key sent twice is stored once", async () => {
    const points = latencyPoints(minuteAgo(5), 3, "keyed");
    const first = await client.writePoints(points, { idempotencyKey: "batch-0001" });
    const again = await client.writePoints(points, { idempotencyKey: "batch-0001" });
    assert.deepEqual(first, { accepted: 3, rejected: 0, errors: [] });
    assert.deepEqual(again, first);
    assert.equal(await count(client, "keyed"), 3);
    // Another key is another batch: points are never deduplicated otherwise.
    await client.writePoints(points, { idempotencyKey: "batch-0002" });
    assert.equal(await count(client, "keyed"), 6);
  });
});

describe("a server whose limits are below the writer's", () => {
  test("a batch over max_batch_size is split in halves", async () => {
    const server = await Server.start({ env: { LUMINATE__BATCH_WRITE__MAX_BATCH_SIZE: "50" } });
    try {
      const client = new Client(server.url);
      const sent = stats();
      const result = await client.writePoints(latencyPoints(minuteAgo(5), 200), { stats: sent });
      assert.equal(result.accepted, 200);
      // 200 refused, two 100s refused, four 50s stored.
      assert.deepEqual([sent.batches, sent.points], [4, 200]);
      assert.equal(await count(client, "api_latency"), 200);
    } finally {
      await server.stop();
    }
  });

  test("a body over max_request_size_bytes is split until it fits", async () => {
    const server = await Server.start({ env: { LUMINATE__BATCH_WRITE__MAX_REQUEST_SIZE_BYTES: "8192" } });
    try {
      const client = new Client(server.url);
      const sent = stats();
      const result = await client.writePoints(latencyPoints(minuteAgo(10), 400), { stats: sent });
      assert.equal(result.accepted, 400);
      assert.equal(sent.points, 400);
      assert.ok(sent.batches > 1);
      // Each stored batch's JSON fits the server's limit (counted after inflating).
      assert.ok(sent.jsonBytes <= sent.batches * 8192);
      assert.equal(await count(client, "api_latency"), 400);
    } finally {
      await server.stop();
    }
  });
});
