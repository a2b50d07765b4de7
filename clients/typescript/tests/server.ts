// Starts the real `luminate` binary for the tests: `$LUMINATE_BIN serve` over a temporary data
// directory on a loopback port, its address read from its `luminate listening on` line. The server's
// output is kept and shown when a start fails. Without LUMINATE_BIN every test fails (never skips): CI
// runs these through crates/luminate/tests/clients.rs, which sets it.

import { spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import type { Client, Point } from "../src/index.js";

const LISTEN_PREFIX = "luminate listening on ";
const START_TIMEOUT_MS = 30_000;
export const JWT_SECRET = "client-tests-secret-of-at-least-32-bytes";

function binary(): string {
  const path = process.env.LUMINATE_BIN;
  try {
    if (!path) throw new Error("unset");
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    throw new Error(`LUMINATE_BIN must name the luminate binary (cargo test -p luminate --test clients sets it); got ${JSON.stringify(path)}`);
  }
}

/** A loopback port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** The start of the minute `minutes` before the current one, in Unix ms (within the write window). */
export function minuteAgo(minutes: number): number {
  return (Math.floor(Date.now() / 60_000) - minutes) * 60_000;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `n` points one second apart, customers cust_0..cust_3 in turn, value `i`. */
export function latencyPoints(t0: number, n: number, name = "api_latency"): Point[] {
  return Array.from({ length: n }, (_, i) => ({
    name, timestamp: t0 + i * 1000, value: i, dimensions: { customer_id: `cust_${i % 4}`, endpoint: "/api/v1/orders" },
  }));
}

/** Points stored of `metric` over the last day. */
export async function count(client: Client, metric: string): Promise<number> {
  const answer = await client.query({ queryType: "aggregate", metricName: metric, aggregation: "count", timeRange: { relative: "1d" } });
  return answer.results[0]?.count ?? 0;
}

/** A JWT for `tenant` with `scopes`, HS256 with JWT_SECRET, valid for an hour. */
export function token(tenant: string, scopes: string[]): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ tenant_id: tenant, scopes, iat: now, exp: now + 3600 })}`;
  return `${unsigned}.${createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url")}`;
}

export interface ServerOptions {
  env?: Record<string, string>;
  port?: number;
  auth?: boolean;
}

/** A running `luminate serve`; stop it with stop(). */
export class Server {
  readonly dir = mkdtempSync(join(tmpdir(), "luminate-client-test-"));
  readonly dataDir = join(this.dir, "data");
  readonly output: string[] = [];
  url = "";
  private child: ChildProcess | null = null;

  private constructor(private readonly options: ServerOptions) {}

  /** Starts the binary and waits until it listens. */
  static async start(options: ServerOptions = {}): Promise<Server> {
    const server = new Server(options);
    await server.launch();
    return server;
  }

  private launch(): Promise<void> {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith("LUMINATE") && key !== "RUST_LOG" && value !== undefined) env[key] = value;
    }
    // Side by side with other test servers: no fixed gRPC port, no disk-space floor.
    Object.assign(env, {
      LUMINATE_OTLP_GRPC_PORT: "0",
      LUMINATE_HEALTH_MIN_FREE_DISK_BYTES: "0",
      LUMINATE_HEALTH_MIN_FREE_DISK_RATIO: "0",
    });
    if (this.options.auth) Object.assign(env, { LUMINATE_AUTH_ENABLED: "true", LUMINATE_AUTH_JWT_SECRET: JWT_SECRET });
    Object.assign(env, this.options.env ?? {});
    const listen = `127.0.0.1:${this.options.port ?? 0}`;
    const child = spawn(binary(), ["serve", "--data-dir", this.dataDir, "--listen", listen], {
      env, stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.stop();
        reject(new Error(`luminate did not start; output:\n${this.output.join("\n")}`));
      }, START_TIMEOUT_MS);
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        createInterface({ input: stream }).on("line", (line) => {
          this.output.push(line);
          if (line.startsWith(LISTEN_PREFIX)) {
            const address = line.slice(LISTEN_PREFIX.length).trim();
            this.url = address.startsWith("http") ? address : `http://${address}`;
            clearTimeout(timer);
            resolve();
          }
        });
      }
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`luminate exited (${code}) before listening; output:\n${this.output.join("\n")}`));
      });
    });
  }

  /** SIGTERM (SIGKILL after 10 s); removes the data directory. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The value of one sample of the self-metrics, written in full (`name{label="v",...}`); 0 when absent. */
  async sample(series: string): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    for (const line of text.split("\n")) {
      if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
    }
    return 0;
  }
}
