// The one error type of the client: a refusal in the server's own words, or a server that could not
// be reached. Every error Luminate answers has the body {"error": {"code", "message", "details"}}
// (the API contract, §8); LuminateError carries those three with the HTTP status, so a caller branches
// on `error.code` ("INVALID_QUERY", "CONFLICT", ...) rather than on message text.

import type { PointError } from "./types.js";

/** A request Luminate refused, or one that never got an answer. */
export class LuminateError extends Error {
  /**
   * @param status The HTTP status (0 when no answer arrived: see `LuminateConnectionError`).
   * @param code The contract's error code, e.g. "INVALID_QUERY"; "HTTP_<status>" when the answer was
   *   not in the contract's format (a proxy's page, say).
   * @param serverMessage The server's message (`message` is "<status> <code>: <serverMessage>").
   * @param details The error's `details` object ({} when it had none).
   * @param retryAfter Seconds the server asked to wait (`Retry-After`), when it said.
   */
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly details: Record<string, unknown> = {},
    readonly retryAfter: number | null = null,
  ) {
    super(status ? `${status} ${code}: ${serverMessage}` : `${code}: ${serverMessage}`);
    this.name = "LuminateError";
  }
}

/** No answer: the connection was refused, reset or timed out, and retries (if any) ran out. */
export class LuminateConnectionError extends LuminateError {
  constructor(message: string) {
    super(0, "CONNECTION_ERROR", message);
    this.name = "LuminateConnectionError";
  }
}

/**
 * A write whose every point was invalid (`400` with the write's own body, not the error format).
 * `code` is the first rejected point's code ("INVALID_METRIC_NAME", ...); `errors` lists every rejected
 * point as the server did, `index` counting from 0 in the batch that was sent.
 */
export class PointsRejectedError extends LuminateError {
  constructor(readonly errors: PointError[]) {
    const first = errors[0];
    super(
      400,
      first?.code ?? "INVALID_REQUEST",
      `all ${errors.length} points were rejected; the first: ${first?.error ?? ""}`,
      { errors },
    );
    this.name = "PointsRejectedError";
  }
}
