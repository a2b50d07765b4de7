// HTTP exchanges with one Luminate server over `fetch`: headers, retries and the decoding of answers
// and errors. Knows nothing of points, queries or dashboards.
//
// Retries (RetryPolicy):
// - 429 RATE_LIMIT_EXCEEDED and 503 STORAGE_UNAVAILABLE are retried for every request: the server
//   refused before doing the work (a 429 stores nothing; a 503 is never remembered under an
//   idempotency key). The wait is the answer's Retry-After when it has one, else the backoff.
// - A connection that could not be opened (refused, no route, no such host) is retried for every
//   request: nothing was sent. Any other network failure (reset, timeout, or a browser's opaque
//   "Failed to fetch") is retried only for requests marked idempotent (reads, queries, writes with an
//   Idempotency-Key), since the server may have acted on it.
// - Anything else (400, 404, 409, 504, ...) throws at once: a retry would get the same answer.

import { LuminateConnectionError, LuminateError } from "./errors.js";

/** When and how long to retry. */
export interface RetryPolicy {
  /** Retries after the first attempt (0: never retry). Default 5. */
  maxRetries: number;
  /** Seconds before the first retry when the server named no wait; doubles each retry. Default 0.2. */
  backoffBase: number;
  /** The longest backoff, in seconds. Default 10. */
  backoffMax: number;
  /** The longest Retry-After honoured, in seconds; an answer asking for longer throws. Default 60. */
  maxRetryAfter: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 5, backoffBase: 0.2, backoffMax: 10, maxRetryAfter: 60 };

/** One retry about to happen, as given to the client's `onRetry`. */
export interface RetryEvent {
  method: string;
  path: string;
  /** Which retry this is, from 1. */
  retry: number;
  /** Seconds it waits first. */
  delay: number;
  /** The refusal's HTTP status, 0 for a connection failure. */
  status: number;
  /** The refusal's error code ("RATE_LIMIT_EXCEEDED"), or "CONNECTION_ERROR". */
  code: string;
  /** The server's message or the connection error. */
  reason: string;
}

/** A response: status, headers and JSON body (null when empty; a string when not JSON). */
export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

export interface RequestOptions {
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Safe to resend after a network failure that may have reached the server. Default true. */
  idempotent?: boolean;
  /** Statuses besides 2xx that are answers, not errors (the health route's 503). */
  answers?: number[];
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Connection failures before anything was sent (Node's fetch names them in `cause.code`). */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);

export class Transport {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly token: string | undefined,
    private readonly timeoutMs: number,
    private readonly retry: RetryPolicy,
    private readonly onRetry: ((event: RetryEvent) => void | Promise<void>) | undefined,
    private readonly fetchImpl: FetchLike,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  /**
   * Sends one request, retrying as the policy allows; resolves to a 2xx answer (or one whose status
   * is in `answers`) and throws LuminateError for any other.
   */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const idempotent = options.idempotent ?? true;
    for (let retry = 0; ; retry++) {
      let failure: LuminateError;
      let retryable: boolean;
      try {
        const answer = await this.exchange(method, path, options);
        if ((answer.status >= 200 && answer.status < 300) || options.answers?.includes(answer.status)) {
          return answer;
        }
        failure = errorOf(answer);
        retryable = answer.status === 429 || answer.status === 503;
      } catch (e) {
        if (!(e instanceof NetworkFailure)) throw e;
        failure = new LuminateConnectionError(e.message);
        retryable = e.notSent || idempotent;
      }
      if (!retryable || retry >= this.retry.maxRetries) throw failure;
      let delay = backoff(this.retry, retry);
      if (failure.retryAfter !== null) {
        if (failure.retryAfter > this.retry.maxRetryAfter) throw failure;
        delay = failure.retryAfter;
      }
      await this.onRetry?.({
        method, path, retry: retry + 1, delay, status: failure.status, code: failure.code, reason: failure.serverMessage,
      });
      await sleep(delay * 1000);
    }
  }

  private async exchange(method: string, path: string, options: RequestOptions): Promise<Answer> {
    const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    try {
      let response: Response;
      try {
        response = await this.fetchImpl(this.baseUrl + path, { method, headers, body: options.body, signal: abort.signal });
      } catch (e) {
        const code = causeCode(e);
        const reason = abort.signal.aborted ? `no answer within ${this.timeoutMs} ms` : describe(e);
        throw new NetworkFailure(`${method} ${path} to ${this.baseUrl}: ${reason}`, code !== null && NOT_SENT.has(code));
      }
      let text: string;
      try {
        text = await response.text();
      } catch (e) {
        throw new NetworkFailure(`${method} ${path}: the answer broke off (${describe(e)})`, false);
      }
      let body: unknown = null;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text; // not JSON (a proxy's error page): kept as text for the error's message
        }
      }
      return { status: response.status, headers: response.headers, body };
    } finally {
      clearTimeout(timer);
    }
  }
}

class NetworkFailure extends Error {
  constructor(message: string, readonly notSent: boolean) {
    super(message);
  }
}

/** The LuminateError of a refusal in the contract's format, or of any other answer. */
export function errorOf(answer: Answer): LuminateError {
  const retryAfter = parseRetryAfter(answer.headers.get("Retry-After"));
  const body = answer.body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null;
  const error = body !== null && typeof body === "object" ? body.error : undefined;
  if (error && typeof error === "object") {
    const details = error.details && typeof error.details === "object" ? (error.details as Record<string, unknown>) : {};
    return new LuminateError(answer.status, String(error.code ?? `HTTP_${answer.status}`), String(error.message ?? ""), details, retryAfter);
  }
  const text = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
  return new LuminateError(answer.status, `HTTP_${answer.status}`, text.slice(0, 500), {}, retryAfter);
}

/** Retry-After as seconds: a number of seconds or an HTTP date; null if absent or unreadable. */
export function parseRetryAfter(value: string | null): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const when = Date.parse(trimmed);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

/** The wait before retry number `retry` (from 0): exponential, capped, with jitter so that many
 * clients refused together do not come back together. */
export function backoff(policy: RetryPolicy, retry: number): number {
  const ceiling = Math.min(policy.backoffMax, policy.backoffBase * 2 ** retry);
  return ceiling * (0.5 + Math.random() * 0.5);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function causeCode(e: unknown): string | null {
  const cause = (e as { cause?: { code?: unknown } } | null)?.cause;
  return typeof cause?.code === "string" ? cause.code : null;
}

function describe(e: unknown): string {
  const cause = (e as { cause?: unknown } | null)?.cause;
  const inner = cause instanceof Error ? ` (${cause.message})` : "";
  return `${e instanceof Error ? e.message : String(e)}${inner}`;
}
