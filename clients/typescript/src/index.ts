// A thin client of Luminate's HTTP API on `fetch` alone (Node 18+, browsers), without runtime
// dependencies: batched, gzip-compressed writes that retry safely (an Idempotency-Key per batch),
// queries, discovery and dashboards.

export { Client, type ClientOptions, type WritePointsOptions } from "./client.js";
export { LuminateConnectionError, LuminateError, PointsRejectedError } from "./errors.js";
export { DEFAULT_RETRY, type RetryEvent, type RetryPolicy } from "./transport.js";
export { BatchWriter, canGzip, type WriteStats, type WriterOptions } from "./writer.js";
export type * from "./types.js";
