// A dashboard's life through the real server: create, list, get, replace naming the version read, a
// stale replace refused 409, export, delete, and the export imported back to the same document.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, LuminateError, type Dashboard } from "../src/index.js";
import { Server } from "./server.js";

const DOCUMENT: Dashboard = {
  id: "customer_overview",
  title: "Customer overview",
  tags: ["customers", "latency"],
  timeRange: { relative: "6h" },
  variables: [{ name: "customer", type: "custom", options: ["cust_1", "cust_2"], default: "cust_1" }],
  panels: [{
    id: "p95", title: "p95 latency", type: "timeseries", gridPosition: { x: 0, y: 0, w: 12, h: 6 },
    query: { queryType: "aggregate", metricName: "api_latency", aggregation: "p95", filters: { customer_id: "$customer" } },
  }],
};

function refusedWith(status: number, code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof LuminateError, String(e));
    assert.deepEqual([e.status, e.code], [status, code]);
    return true;
  };
}

describe("dashboards", () => {
  let server: Server;
  let client: Client;
  before(async () => {
    server = await Server.start();
    client = new Client(server.url);
  });
  after(() => server.stop());

  test("a round trip with a stale version refused", async () => {
    const created = await client.createDashboard({ dashboard: DOCUMENT });
    assert.equal(created.version, 1);
    for (const [key, value] of Object.entries(DOCUMENT)) assert.deepEqual(created[key as keyof Dashboard], value, key);
    await client.createDashboard({ id: "other", title: "Other", tags: ["ops"] });
    assert.deepEqual(await client.listDashboards(), [
      { id: "customer_overview", title: "Customer overview", tags: ["customers", "latency"], version: 1 },
      { id: "other", title: "Other", tags: ["ops"], version: 1 },
    ]);
    assert.deepEqual((await client.listDashboards("ops")).map((d) => d.id), ["other"]);

    const read = await client.getDashboard("customer_overview");
    assert.deepEqual(read, created);
    const saved = await client.replaceDashboard("customer_overview", { ...read, title: "Customers" });
    assert.deepEqual([saved.title, saved.version], ["Customers", 2]);

    // A second editor still holding version 1 is refused, told the current version.
    const stale = { ...read, title: "Stale" };
    await assert.rejects(client.replaceDashboard("customer_overview", stale), (e: unknown) => {
      refusedWith(409, "CONFLICT")(e);
      assert.equal((e as LuminateError).details.current_version, 2);
      return true;
    });
    // Naming the version explicitly wins over the document's.
    const again = await client.replaceDashboard("customer_overview", stale, 2);
    assert.deepEqual([again.title, again.version], ["Stale", 3]);

    const exported = await client.exportDashboard("customer_overview");
    assert.deepEqual(exported, { dashboard: again });
    await client.deleteDashboard("customer_overview");
    await assert.rejects(client.getDashboard("customer_overview"), refusedWith(404, "NOT_FOUND"));
    await assert.rejects(client.deleteDashboard("customer_overview"), refusedWith(404, "NOT_FOUND"));

    const imported = await client.createDashboard(exported);
    assert.deepEqual({ ...imported, version: 3 }, again);
    assert.equal(imported.version, 1);
  });

  test("an id already taken is a conflict", async () => {
    await client.createDashboard({ ...DOCUMENT, id: "taken" });
    await assert.rejects(client.createDashboard({ ...DOCUMENT, id: "taken" }), refusedWith(409, "CONFLICT"));
  });

  test("an invalid document lists every problem", async () => {
    const broken = structuredClone(DOCUMENT);
    broken.id = "broken";
    broken.panels![0]!.query.aggregation = "p42";
    broken.panels![0]!.gridPosition.w = 30;
    await assert.rejects(client.createDashboard(broken), (e: unknown) => {
      refusedWith(400, "INVALID_REQUEST")(e);
      const problems = (e as LuminateError).details.problems as { path: string }[];
      assert.deepEqual(problems.map((p) => p.path).sort(), ["panels[0].gridPosition", "panels[0].query.aggregation"]);
      assert.match((e as LuminateError).serverMessage, /unknown "p42"/);
      return true;
    });
  });
});
