// Retries against the real server: a 429 of a tight rate limit waited out for exactly its
// Retry-After, a 503 of a full disk (the dashboard's temporary file made a link to /dev/full) retried
// after its Retry-After of 5 s, connections refused until the server listens, and the errors when retries run out.

import assert from "node:assert/strict";
import { lstatSync, mkdirSync, symlinkSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";

import { Client, LuminateConnectionError, LuminateError, type RetryEvent, type WriteResult } from "../src/index.js";
import { backoff, DEFAULT_RETRY, parseRetryAfter } from "../src/transport.js";
import { Server, count, freePort, latencyPoints, minuteAgo, sleep } from "./server.js";

/**
 * Runs `calls` together; resolves to what each resolved to (or rejected with) and the seconds it took.
 * Requests sent together reach the rate limiter together, however long the server then takes to answer
 * each (a write's fsync on a busy machine may take longer than the bucket's refill).
 */
async function atOnce<T>(...calls: (() => Promise<T>)[]): Promise<{ outcome: T | unknown; took: number }[]> {
  return Promise.all(calls.map(async (call) => {
    const started = performance.now();
    let outcome: T | unknown;
    try {
      outcome = await call();
    } catch (e) {
      outcome = e;
    }
    return { outcome, took: (performance.now() - started) / 1000 };
  }));
}

describe("a server allowing one write request and one query a second: of two sent together, one is a 429", () => {
  let server: Server;
  before(async () => {
    server = await Server.start({
      env: { LUMINATE__RATE_LIMITS__WRITE_REQUESTS_PER_SECOND: "1", LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND: "1" },
    });
  });
  after(() => server.stop());
  beforeEach(() => sleep(1100)); // full buckets, whatever ran before

  test("a write refused 429 is retried after its Retry-After", async () => {
    const events: RetryEvent[] = [];
    const client = new Client(server.url, { onRetry: (e) => { events.push(e); } });
    const points = latencyPoints(minuteAgo(3), 2, "limited");
    const outcomes = await atOnce(() => client.writePoints(points.slice(0, 1)), () => client.writePoints(points.slice(1)));
    assert.deepEqual(outcomes.map((o) => (o.outcome as WriteResult).accepted), [1, 1]);
    assert.deepEqual(events.map((e) => [e.status, e.code, e.delay, e.retry, e.path]), [[429, "RATE_LIMIT_EXCEEDED", 1, 1, "/api/v1/write"]]);
    // The one refused waited out its Retry-After before it was admitted.
    assert.ok(Math.max(...outcomes.map((o) => o.took)) >= 1, JSON.stringify(outcomes));
    // The refused attempt stored nothing, the retry stored the point once.
    assert.equal(await count(client, "limited"), 2);
  });

  test("a query refused 429 is retried", async () => {
    const events: RetryEvent[] = [];
    const client = new Client(server.url, { onRetry: (e) => { events.push(e); } });
    const [first, second] = await atOnce(() => client.metrics(), () => client.metrics());
    assert.ok(Array.isArray(first!.outcome));
    assert.deepEqual(first!.outcome, second!.outcome);
    assert.deepEqual(events.map((e) => [e.status, e.code, e.delay]), [[429, "RATE_LIMIT_EXCEEDED", 1]]);
  });

  test("retries exhausted throw the 429 in the server's words", async () => {
    const client = new Client(server.url, { retry: { maxRetries: 0 } });
    const write = () => client.writePoints(latencyPoints(minuteAgo(3), 1, "exhausted"));
    const refused = (await atOnce(write, write)).map((o) => o.outcome).filter((o) => o instanceof LuminateError);
    assert.equal(refused.length, 1);
    const error = refused[0] as LuminateError;
    assert.deepEqual([error.status, error.code, error.retryAfter], [429, "RATE_LIMIT_EXCEEDED", 1]);
    assert.equal(error.details.limit, "write_requests_per_second");
    assert.match(error.serverMessage, /write_requests_per_second/);
  });

  test("a Retry-After longer than allowed is thrown, not waited", async () => {
    const client = new Client(server.url, { retry: { maxRetryAfter: 0.5 } });
    const refused = (await atOnce(() => client.metrics(), () => client.metrics())).filter((o) => o.outcome instanceof LuminateError);
    assert.deepEqual(refused.map((o) => (o.outcome as LuminateError).code), ["RATE_LIMIT_EXCEEDED"]);
    // Answered at once: waiting the 1 s asked would have taken at least that.
    assert.ok(refused[0]!.took < 1);
  });
});

/** Whether `path` names anything, a dangling link included. */
function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

test("a save refused 503 on a full disk is retried once there is room", async () => {
  const server = await Server.start();
  try {
    const tenantDir = join(server.dataDir, "dashboards", "default");
    mkdirSync(tenantDir, { recursive: true });
    const full = join(tenantDir, "ops.json.tmp");
    // Writes to /dev/full fail with ENOSPC, even for root.
    symlinkSync("/dev/full", full);
    const events: RetryEvent[] = [];
    const tempLeft: boolean[] = [];
    const client = new Client(server.url, {
      retry: { backoffBase: 0.05 },
      // The server removed the temporary file it could not write (the link): room again.
      onRetry: (e) => { events.push(e); tempLeft.push(lexists(full)); },
    });
    const saved = await client.createDashboard({ id: "ops", title: "Ops", panels: [] });
    assert.deepEqual([saved.id, saved.version], ["ops", 1]);
    assert.deepEqual(events.map((e) => [e.status, e.code, e.path]), [[503, "STORAGE_UNAVAILABLE", "/api/v1/dashboards"]]);
    assert.match(events[0]!.reason, /No space left on device/);
    assert.deepEqual(tempLeft, [false]);
    // A full disk's refusal asks for Retry-After: 5 (freeing space is an operator's work), honoured
    // instead of the 0.05 s backoff.
    assert.equal(events[0]!.delay, 5);
    assert.deepEqual((await client.listDashboards()).map((d) => d.id), ["ops"]);
  } finally {
    await server.stop();
  }
});

test("refused connections are retried until the server listens", async () => {
  const port = await freePort();
  const events: RetryEvent[] = [];
  const client = new Client(`http://127.0.0.1:${port}`, {
    retry: { maxRetries: 40, backoffBase: 0.2, backoffMax: 1 },
    onRetry: (e) => { events.push(e); },
  });
  const writing = client.writePoints(latencyPoints(minuteAgo(2), 5, "late"));
  await sleep(500);
  const server = await Server.start({ port });
  try {
    assert.equal((await writing).accepted, 5);
    assert.ok(events.length >= 1);
    assert.ok(events.every((e) => e.code === "CONNECTION_ERROR" && e.status === 0), JSON.stringify(events));
    assert.equal(await count(new Client(server.url), "late"), 5);
  } finally {
    await server.stop();
  }
});

/** Bytes from `socket` until `done` says they are complete (or the socket ends). */
function readUntil(socket: Socket, done: (data: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    const finish = () => { socket.off("data", onData); resolve(data); };
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (done(data)) finish();
    };
    socket.on("data", onData);
    socket.once("end", finish);
  });
}

/** Whether `data` holds a whole HTTP request (head and Content-Length body). */
function wholeRequest(data: Buffer): boolean {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = /^content-length:\s*(\d+)/im.exec(data.subarray(0, end).toString())?.[1];
  return data.length >= end + 4 + Number(length ?? 0);
}

/** `Connection: close` in place of any Connection header of a message head, so that each side's
 * message ends with its connection. */
function closing(message: Buffer): Buffer {
  const end = message.indexOf("\r\n\r\n");
  const head = message.subarray(0, end).toString().split("\r\n").filter((l) => !/^connection:/i.test(l));
  return Buffer.concat([Buffer.from([...head, "Connection: close"].join("\r\n")), message.subarray(end)]);
}

/**
 * A relay in front of the real server that passes each request on and, for the first `drop` of them,
 * hangs up instead of passing the server's answer back: an answer lost on the way, after the server
 * acted on the request.
 */
async function answerDropper(upstream: string, drop: number): Promise<{ url: string; relayed: string[]; peer: NetServer }> {
  const { hostname, port } = new URL(upstream);
  const relayed: string[] = [];
  const peer = createServer(async (client) => {
    const request = closing(await readUntil(client, wholeRequest));
    const server = connect(Number(port), hostname);
    server.write(request);
    const answer = await readUntil(server, () => false);
    const status = answer.subarray(0, answer.indexOf("\r\n")).toString();
    if (drop > 0) {
      drop -= 1;
      relayed.push(`dropped ${status}`);
      client.destroy();
    } else {
      relayed.push(`passed ${status}`);
      client.end(closing(answer));
    }
  });
  await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(peer.address() as AddressInfo).port}`, relayed, peer };
}

test("a write whose answer was lost is retried and stored once", async () => {
  const server = await Server.start();
  const relay = await answerDropper(server.url, 1);
  try {
    const events: RetryEvent[] = [];
    const client = new Client(relay.url, { retry: { backoffBase: 0.05 }, onRetry: (e) => { events.push(e); } });
    const result = await client.writePoints(latencyPoints(minuteAgo(2), 20, "lost"));
    // The server stored the batch and answered; the answer was lost; the retry, with the same
    // Idempotency-Key, got the first answer back and stored nothing.
    assert.deepEqual([result.accepted, result.rejected], [20, 0]);
    assert.deepEqual(relay.relayed, ["dropped HTTP/1.1 200 OK", "passed HTTP/1.1 200 OK"]);
    assert.deepEqual(events.map((e) => [e.status, e.code]), [[0, "CONNECTION_ERROR"]]);
    assert.equal(await count(new Client(server.url), "lost"), 20);
  } finally {
    relay.peer.close();
    await server.stop();
  }
});

test("an answer lost after sending is retried only when safe", async () => {
  // A peer that reads each request and hangs up without answering: what a server dying mid-request
  // looks like to its client.
  const requests: string[] = [];
  const peer = createServer((socket) => {
    socket.once("data", (data) => {
      requests.push(data.toString().split("\r\n", 1)[0]!);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
  try {
    const events: RetryEvent[] = [];
    const client = new Client(`http://127.0.0.1:${(peer.address() as AddressInfo).port}`, {
      retry: { maxRetries: 2, backoffBase: 0.01 },
      onRetry: (e) => { events.push(e); },
    });
    // A dashboard change may have been saved before the answer was lost: not resent.
    await assert.rejects(client.createDashboard({ id: "x", title: "X" }), LuminateConnectionError);
    assert.deepEqual([events, requests], [[], ["POST /api/v1/dashboards HTTP/1.1"]]);
    // A query only reads: resent until the retries run out.
    await assert.rejects(client.query({ queryType: "range", metricName: "m", timeRange: { relative: "1h" } }), LuminateConnectionError);
    assert.deepEqual(events.map((e) => e.retry), [1, 2]);
    assert.deepEqual(requests.slice(1), Array(3).fill("POST /api/v1/query HTTP/1.1"));
  } finally {
    peer.close();
  }
});

test("no server at all throws a connection error after the retries", async () => {
  const events: RetryEvent[] = [];
  const client = new Client(`http://127.0.0.1:${await freePort()}`, {
    retry: { maxRetries: 2, backoffBase: 0.01 },
    onRetry: (e) => { events.push(e); },
  });
  await assert.rejects(client.metrics(), (e: unknown) => {
    assert.ok(e instanceof LuminateConnectionError);
    assert.deepEqual([e.status, e.code], [0, "CONNECTION_ERROR"]);
    assert.match(e.serverMessage, /ECONNREFUSED/);
    return true;
  });
  assert.deepEqual(events.map((e) => e.retry), [1, 2]);
});

test("Retry-After in seconds or as an HTTP date; backoff doubling up to its cap", () => {
  assert.equal(parseRetryAfter("3"), 3);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter("soon"), null);
  const inTen = parseRetryAfter(new Date(Date.now() + 10_000).toUTCString());
  assert.ok(inTen !== null && Math.abs(inTen - 10) < 1.5, String(inTen));
  assert.equal(parseRetryAfter(new Date(Date.now() - 100_000).toUTCString()), 0);
  const policy = { ...DEFAULT_RETRY, backoffBase: 0.2, backoffMax: 1 };
  for (const [retry, ceiling] of [[0, 0.2], [1, 0.4], [2, 0.8], [3, 1], [10, 1]] as const) {
    const wait = backoff(policy, retry);
    assert.ok(wait >= ceiling / 2 && wait <= ceiling, `${retry}: ${wait}`);
  }
});
