// Bad input through the real server becomes a LuminateError with the contract's code, the server's
// message and the HTTP status; partly invalid writes are answered, not thrown; auth refusals keep
// their codes.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, LuminateError, PointsRejectedError, type Query } from "../src/index.js";
import { Server, minuteAgo, token } from "./server.js";

describe("bad input", () => {
  let server: Server;
  let client: Client;
  before(async () => {
    server = await Server.start();
    client = new Client(server.url);
  });
  after(() => server.stop());

  test("an unknown aggregation is INVALID_QUERY", async () => {
    const query = { queryType: "aggregate", metricName: "m", aggregation: "p42", timeRange: { relative: "1h" } } as unknown as Query;
    await assert.rejects(client.query(query), (e: unknown) => {
      assert.ok(e instanceof LuminateError);
      assert.deepEqual([e.status, e.code], [400, "INVALID_QUERY"]);
      assert.match(e.serverMessage, /^aggregation/);
      return true;
    });
  });

  test("a range over the limit is QUERY_LIMIT_EXCEEDED", async () => {
    await assert.rejects(client.query({ queryType: "range", metricName: "m", timeRange: { relative: "91d" } }),
      (e: unknown) => e instanceof LuminateError && e.status === 400 && e.code === "QUERY_LIMIT_EXCEEDED");
  });

  test("every point invalid throws with each point", async () => {
    await assert.rejects(client.writePoints([{ name: "9bad", value: 1 }, { name: "also bad", value: 2 }]), (e: unknown) => {
      assert.ok(e instanceof PointsRejectedError && e instanceof LuminateError);
      assert.deepEqual([e.status, e.code], [400, "INVALID_METRIC_NAME"]);
      assert.deepEqual(e.errors.map((p) => [p.index, p.code]), [[0, "INVALID_METRIC_NAME"], [1, "INVALID_METRIC_NAME"]]);
      return true;
    });
  });

  test("some points invalid are answered with the rest stored", async () => {
    const t = minuteAgo(1);
    const result = await client.writePoints([
      { name: "partial", value: 1, timestamp: t },
      { name: "partial", value: 2, timestamp: t, dimensions: { _tenant_id: "x" } },
      { name: "partial", value: 3, timestamp: 0 },
    ]);
    assert.deepEqual([result.accepted, result.rejected], [1, 2]);
    assert.deepEqual(result.errors.map((e) => [e.index, e.metric, e.code]), [[1, "partial", "INVALID_DIMENSION"], [2, "partial", "INVALID_TIMESTAMP"]]);
  });

  test("a value JSON cannot carry is refused before sending", async () => {
    await assert.rejects(client.write({ name: "m", value: Number.NaN }), RangeError);
    assert.throws(() => client.writer({ maxPoints: 10_001 }), RangeError);
  });
});

describe("auth", () => {
  let server: Server;
  before(async () => {
    server = await Server.start({ auth: true });
  });
  after(() => server.stop());

  test("no token is UNAUTHORIZED", async () => {
    await assert.rejects(new Client(server.url).metrics(), (e: unknown) => e instanceof LuminateError && e.status === 401 && e.code === "UNAUTHORIZED");
  });

  test("a missing scope is FORBIDDEN, naming it", async () => {
    const reader = new Client(server.url, { token: token("acme", ["read"]) });
    await assert.rejects(reader.write({ name: "m", value: 1 }), (e: unknown) => {
      assert.ok(e instanceof LuminateError);
      assert.deepEqual([e.status, e.code, e.details.required_scope], [403, "FORBIDDEN", "write"]);
      return true;
    });
  });

  test("a token scopes reads and writes to its tenant", async () => {
    const acme = new Client(server.url, { token: token("acme", ["read", "write"]) });
    const globex = new Client(server.url, { token: token("globex", ["read", "write"]) });
    await acme.write({ name: "acme_only", value: 1, timestamp: minuteAgo(1) });
    assert.deepEqual(await acme.metrics(), ["acme_only"]);
    assert.deepEqual(await globex.metrics(), []);
  });
});
