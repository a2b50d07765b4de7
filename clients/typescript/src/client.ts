// The client: one method per route of Luminate's JSON API (docs/api.md) that an application calls —
// write, query, discovery, dashboards and health. Bodies are built and answers read here; the
// transport sends them and turns refusals into LuminateError.

import { DEFAULT_RETRY, Transport, type FetchLike, type RetryEvent, type RetryPolicy } from "./transport.js";
import type {
  AnswerOf,
  Dashboard,
  DashboardFile,
  DashboardSummary,
  DimensionValue,
  Health,
  MetricCardinality,
  Point,
  Query,
  WriteResult,
} from "./types.js";
import { BatchWriter, encodePoint, sendBatch, type WriteStats, type WriterOptions } from "./writer.js";

export interface ClientOptions {
  /** A JWT sent as `Authorization: Bearer` (servers with `auth.enabled`). */
  token?: string;
  /** Milliseconds each HTTP exchange may take. Default 60 000. */
  timeoutMs?: number;
  /** When and how long to retry refusals and lost connections (fields left out keep their default). */
  retry?: Partial<RetryPolicy>;
  /** Called (and awaited) before each retry. */
  onRetry?: (event: RetryEvent) => void | Promise<void>;
  /** The fetch to use; default the global one. */
  fetch?: FetchLike;
}

export interface WritePointsOptions {
  /** The batch's key; default a new one. The same batch sent again with the same key within 10
   * minutes is stored once and answered as the first time. */
  idempotencyKey?: string;
  /** Compress with gzip where the runtime can. Default true. */
  gzip?: boolean;
  /** Counts batches and bytes sent into this. */
  stats?: WriteStats;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

/** A client of one Luminate server, e.g. `new Client("http://127.0.0.1:8080")`. */
export class Client {
  private readonly transport: Transport;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    const fetchImpl: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
    this.transport = new Transport(
      baseUrl,
      options.token,
      options.timeoutMs ?? 60_000,
      { ...DEFAULT_RETRY, ...options.retry },
      options.onRetry,
      fetchImpl,
    );
  }

  // Write

  /** Writes one point at once (for many, use `writer()` or `writePoints()`). */
  async write(point: Point): Promise<WriteResult> {
    return sendBatch(this.transport, [encodePoint(point)]);
  }

  /** Writes points as ONE batch (at most 10 000); throws PointsRejectedError when every point was refused. */
  async writePoints(points: Point[], options: WritePointsOptions = {}): Promise<WriteResult> {
    return sendBatch(this.transport, points.map(encodePoint), {
      key: options.idempotencyKey, gzip: options.gzip, stats: options.stats,
    });
  }

  /** A BatchWriter: a batch every `maxPoints` points or `maxBytes` bytes of JSON, whichever comes first. */
  writer(options: WriterOptions = {}): BatchWriter {
    return new BatchWriter(this.transport, options);
  }

  // Query

  /** Runs a query of the JSON query language; the answer's type follows the query's `queryType`. */
  async query<Q extends Query>(query: Q): Promise<AnswerOf<Q>> {
    // Queries only read: safe to resend after a lost answer.
    return (await this.transport.request("POST", "/api/v1/query", { body: JSON.stringify(query), headers: JSON_HEADERS })).body as AnswerOf<Q>;
  }

  // Discovery

  /** The tenant's metric names, sorted. */
  async metrics(): Promise<string[]> {
    return (await this.get<{ metrics: string[] }>("/api/v1/metrics")).metrics;
  }

  /** The dimension keys of `metric`, sorted; an unknown metric throws NOT_FOUND. */
  async dimensions(metric: string): Promise<string[]> {
    return (await this.get<{ dimensions: string[] }>(`/api/v1/metrics/${segment(metric)}/dimensions`)).dimensions;
  }

  /** Values of dimension `key` of `metric`, by stored points descending (ties by value), optionally
   * only those starting with `prefix`; `limit` at most 1000. */
  async dimensionValues(metric: string, key: string, options: { limit?: number; prefix?: string } = {}): Promise<DimensionValue[]> {
    const params = new URLSearchParams({ limit: String(options.limit ?? 100) });
    if (options.prefix) params.set("prefix", options.prefix);
    const path = `/api/v1/metrics/${segment(metric)}/dimensions/${segment(key)}/values?${params}`;
    return (await this.get<{ values: DimensionValue[] }>(path)).values;
  }

  /** Series per metric and distinct values per dimension key, largest first. */
  async cardinality(metric?: string): Promise<MetricCardinality[]> {
    const path = metric === undefined ? "/api/v1/cardinality" : `/api/v1/cardinality?${new URLSearchParams({ metric })}`;
    return (await this.get<{ metrics: MetricCardinality[] }>(path)).metrics;
  }

  // Dashboards

  /** Id, title, tags and version of each dashboard, by id; with `tag`, those carrying it. */
  async listDashboards(tag?: string): Promise<DashboardSummary[]> {
    const path = tag === undefined ? "/api/v1/dashboards" : `/api/v1/dashboards?${new URLSearchParams({ tag })}`;
    return (await this.get<{ dashboards: DashboardSummary[] }>(path)).dashboards;
  }

  /** The dashboard's document (with its current `version`); none throws NOT_FOUND. */
  async getDashboard(id: string): Promise<Dashboard> {
    return (await this.exportDashboard(id)).dashboard;
  }

  /** The dashboard as a file, `{"dashboard": {...}}`, which createDashboard imports back to the same document. */
  exportDashboard(id: string): Promise<DashboardFile> {
    return this.get<DashboardFile>(`/api/v1/dashboards/${segment(id)}`);
  }

  /** Creates (imports) a dashboard from a file or a bare document; resolves to the saved document at
   * version 1. An id already taken throws CONFLICT. */
  async createDashboard(document: Dashboard | DashboardFile): Promise<Dashboard> {
    const answer = await this.transport.request("POST", "/api/v1/dashboards", {
      body: JSON.stringify(document), headers: JSON_HEADERS, idempotent: false,
    });
    return (answer.body as DashboardFile).dashboard;
  }

  /** Replaces the dashboard, naming the version it was read at (`version` here, else the document's
   * own); resolves to the saved document at the next version. A stale version throws CONFLICT whose
   * `details.current_version` is the version to read again. */
  async replaceDashboard(id: string, document: Dashboard | DashboardFile, version?: number): Promise<Dashboard> {
    const body: Dashboard = { ...("dashboard" in document ? document.dashboard : document) };
    if (version !== undefined) body.version = version;
    const answer = await this.transport.request("PUT", `/api/v1/dashboards/${segment(id)}`, {
      body: JSON.stringify(body), headers: JSON_HEADERS, idempotent: false,
    });
    return (answer.body as DashboardFile).dashboard;
  }

  /** Deletes the dashboard; none throws NOT_FOUND. */
  async deleteDashboard(id: string): Promise<void> {
    await this.transport.request("DELETE", `/api/v1/dashboards/${segment(id)}`, { idempotent: false });
  }

  // Health

  /** The server's health. An unhealthy server answers 503 with the same body: that resolves too. */
  async health(): Promise<Health> {
    return (await this.transport.request("GET", "/api/v1/health", { answers: [503] })).body as Health;
  }

  private async get<T>(path: string): Promise<T> {
    return (await this.transport.request("GET", path)).body as T;
  }
}

/** `value` as one path segment (`/` escaped too). */
function segment(value: string): string {
  return encodeURIComponent(value);
}
