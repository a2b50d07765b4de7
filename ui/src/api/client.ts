// The one client of Luminate's JSON API that every page uses: same origin, the session's bearer token
// when one is set, and every refusal turned into an ApiError that keeps the server's own words.

import type { Dashboard } from "../lib/dashboard.ts";
import type { Cardinality, DashboardSummary, DimensionValue, Health, Overview, Query, QueryAnswer } from "./types.ts";

/** A refused or failed call: the HTTP status and the contract's `{"error": {code, message, details}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly details: unknown,
    readonly retryAfter: string | null = null,
  ) {
    super(describeError(status, code, serverMessage, retryAfter));
    this.name = "ApiError";
  }
}

/** What a person reads for a refusal: what it means for them, then the server's own words. */
export function describeError(status: number, code: string, message: string, retryAfter: string | null): string {
  const words = `${code}: ${message}`;
  switch (status) {
    case 401: return `Not signed in (401) — the server wants a valid token. ${words}`;
    case 403: return `Not allowed (403) — the token lacks the scope this needs. ${words}`;
    case 409: return `Conflict (409) — it was changed meanwhile, or the id is taken: reload and edit again. ${words}`;
    case 429: return `Too many requests (429)${retryAfter ? ` — retry in ${retryAfter} s` : ""}. ${words}`;
    case 504: return `The query timed out (504). ${words}`;
    default: return status === 0 ? words : `${status} ${words}`;
  }
}

const TOKEN_KEY = "luminate.token";

/** The token lives for the browser session only (sessionStorage). */
export const tokenStore = {
  get(): string | null { try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; } },
  set(token: string | null): void {
    try { if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage off */ }
  },
};

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export class Client {
  /** Called on every 401, so the shell can ask for a token. */
  onUnauthorized: (() => void) | null = null;

  constructor(private readonly fetchImpl: Fetch = (i, init) => fetch(i, init), private readonly token: () => string | null = tokenStore.get) {}

  query(query: Query, signal?: AbortSignal): Promise<QueryAnswer> {
    return this.call("POST", "/api/v1/query", query, signal);
  }
  /** A panel's resolved query, as the dashboard document holds it (any query type). */
  rawQuery<T = QueryAnswer>(query: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    return this.call("POST", "/api/v1/query", query, signal);
  }
  /** A query variable's choices: its `listDimensionValues` query's values. */
  async variableValues(query: Record<string, unknown>, signal?: AbortSignal): Promise<string[]> {
    const answer = await this.rawQuery<{ results: DimensionValue[] }>(query, signal);
    return answer.results.map((r) => r.value);
  }
  async dashboards(tag?: string): Promise<DashboardSummary[]> {
    const path = `/api/v1/dashboards${tag ? `?tag=${encodeURIComponent(tag)}` : ""}`;
    return (await this.call<{ dashboards: DashboardSummary[] }>("GET", path)).dashboards;
  }
  /** The export: `{"dashboard": {...}}`, a file that imports back to the same dashboard. */
  dashboard(id: string): Promise<{ dashboard: Dashboard }> {
    return this.call("GET", `/api/v1/dashboards/${encodeURIComponent(id)}`);
  }
  /** Replaces it: `document.version` names the version it was read at; a stale one is a 409. */
  saveDashboard(id: string, document: unknown): Promise<{ dashboard: Dashboard }> {
    return this.call("PUT", `/api/v1/dashboards/${encodeURIComponent(id)}`, document);
  }
  /** Creates or imports (`{"dashboard": {...}}` or a bare document). */
  importDashboard(file: unknown): Promise<{ dashboard: Dashboard }> {
    return this.call("POST", "/api/v1/dashboards", file);
  }
  async metrics(): Promise<string[]> {
    return (await this.call<{ metrics: string[] }>("GET", "/api/v1/metrics")).metrics;
  }
  async dimensions(metric: string): Promise<string[]> {
    return (await this.call<{ dimensions: string[] }>("GET", `/api/v1/metrics/${encodeURIComponent(metric)}/dimensions`)).dimensions;
  }
  async values(metric: string, key: string, prefix = "", limit = 20, signal?: AbortSignal): Promise<DimensionValue[]> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (prefix) q.set("prefix", prefix);
    const path = `/api/v1/metrics/${encodeURIComponent(metric)}/dimensions/${encodeURIComponent(key)}/values?${q}`;
    return (await this.call<{ values: DimensionValue[] }>("GET", path, undefined, signal)).values;
  }
  /** Health answers 503 with the same body when unhealthy: that is an answer, not a failure. */
  health(): Promise<Health> {
    return this.call("GET", "/api/v1/health", undefined, undefined, [503]);
  }
  overview(): Promise<Overview> {
    return this.call("GET", "/api/v1/status/overview");
  }
  cardinality(metric?: string): Promise<Cardinality> {
    return this.call("GET", `/api/v1/cardinality${metric ? `?metric=${encodeURIComponent(metric)}` : ""}`);
  }

  private async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal, answers: number[] = []): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      throw new ApiError(0, "NETWORK", `the server did not answer (${(e as Error).message})`, null);
    }
    const text = await response.text();
    let json: unknown = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
    if (response.ok || answers.includes(response.status)) {
      if (json === null) throw new ApiError(response.status, "BAD_RESPONSE", `expected JSON, got: ${text.slice(0, 200)}`, null);
      return json as T;
    }
    const error = (json as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
    if (response.status === 401) this.onUnauthorized?.();
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? (text.slice(0, 200) || response.statusText),
      error?.details ?? null,
      response.headers.get("Retry-After"),
    );
  }
}

export const client = new Client();
